/**
 * Option parsers and error reporting shared by the subcommands.
 */
import { readFile } from 'node:fs/promises';

import { InvalidArgumentError } from 'commander';

import { parseRoomConfig, type RoomConfigInput } from '../../shared/config.ts';
import { isTopkError, topkError } from '../../shared/errors.ts';
import { RoomNameSchema } from '../../shared/signaling-protocol.ts';

/** Parses an integer option within [min, max]. */
export function integerOption(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(
        `expected an integer in [${min}, ${max}], got ${value}`,
      );
    }
    return parsed;
  };
}

/** Parses a number option within [min, max]. */
export function numberOption(min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(
        `expected a number in [${min}, ${max}], got ${value}`,
      );
    }
    return parsed;
  };
}

/** Parses an option that must be one of `choices`. */
export function choiceOption(choices: readonly string[]) {
  return (value: string): string => {
    if (!choices.includes(value)) {
      throw new InvalidArgumentError(
        `expected one of ${choices.join(', ')}, got ${value}`,
      );
    }
    return value;
  };
}

/** Parses a room name (1-64 of A-Z a-z 0-9 . _ -). */
export function roomOption(value: string): string {
  if (!RoomNameSchema.safeParse(value).success) {
    throw new InvalidArgumentError(
      'expected 1-64 of A-Z a-z 0-9 . _ - (starting with a letter or ' +
        `digit), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Parses an http(s) URL option, such as a signaling server's. */
export function urlOption(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(
      `expected a URL such as http://127.0.0.1:8080, got ${value}`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(
      `expected an http:// or https:// URL, got ${value}`,
    );
  }
  return value;
}

/**
 * Prints a failure the way a user can act on it (code and message for
 * the project's errors and for the system's, such as a folder that
 * cannot be made; the stack otherwise) and sets a non-zero exit.
 */
export function reportFailure(error: unknown): void {
  if (isTopkError(error)) {
    console.error(`topk-ring: ${error.code}: ${error.message}`);
  } else if (isSystemError(error)) {
    // The system's message starts with its code ("ENOTDIR: not a ...").
    console.error(`topk-ring: ${error.message}`);
  } else {
    console.error('topk-ring: unexpected failure:', error);
  }
  process.exitCode = 1;
}

function isSystemError(error: unknown): error is NodeJS.ErrnoException & {
  code: string;
} {
  return (
    error instanceof Error &&
    typeof (error as NodeJS.ErrnoException).code === 'string' &&
    typeof (error as NodeJS.ErrnoException).syscall === 'string'
  );
}

/** Signals this close to the first are the same request to stop. */
const SAME_STOP_MS = 1000;

/**
 * An AbortSignal that fires on the first SIGINT or SIGTERM, so a command
 * stops between steps and leaves gracefully; a second signal more than a
 * second later exits at once.
 */
export function stopSignal(): {
  signal: AbortSignal;
  abort(reason: string): void;
  dispose(): void;
} {
  const controller = new AbortController();
  let firstAtMs: number | undefined;
  const onSignal = (name: NodeJS.Signals): void => {
    const nowMs = performance.now();
    if (firstAtMs === undefined) {
      firstAtMs = nowMs;
      controller.abort(name);
      return;
    }
    // A signal to the whole process group (a terminal's Ctrl-C, `timeout`,
    // a service manager) reaches `run`'s peers at once and again through
    // `run` itself: one stop, not two. A second one later exits at once.
    if (nowMs - firstAtMs > SAME_STOP_MS) process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    abort(reason) {
      controller.abort(reason);
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/**
 * Reads a room config from the JSON file `file` given with `flag`, and
 * validates it, so a bad file fails before anything starts. Throws
 * `ERR_BAD_CONFIG` naming the file and what is wrong.
 */
export async function readRoomConfig(
  file: string | undefined,
  flag: string,
): Promise<RoomConfigInput> {
  if (file === undefined) return {};
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `${flag}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      { file },
      error,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `${flag}: ${file} is not valid JSON (${(error as Error).message})`,
      { file },
      error,
    );
  }
  try {
    parseRoomConfig(json);
  } catch (error) {
    if (!isTopkError(error)) throw error;
    throw topkError(error.code, `${file}: ${error.message}`, error.context);
  }
  return json as RoomConfigInput;
}
