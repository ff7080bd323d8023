/**
 * Runs a test scenario in a child process, so that a native crash or a
 * hang inside a WebRTC binding fails one test and not the run (case 7):
 * the child gets a deadline and is killed (its whole process group) when
 * it passes it.
 *
 * As root, the child runs in its own network namespace (`unshare --net`,
 * loopback only), so it can reach nothing outside; where that is not
 * possible it runs on the host's loopback, and {@link isolationNote} says
 * why.
 *
 * Protocol: the child prints one line `RESULT <json>` when it is done and
 * must then exit by itself; the runner measures how long that takes.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import {
  ISOLATED_PREFIX,
  isolationUnavailable,
} from '../../../peer/launcher/isolation.ts';

/** How one child run ended. */
export interface ChildRun<T> {
  /** The parsed `RESULT` line, if the child printed one. */
  readonly result: T | undefined;
  /** Exit code (null when killed by a signal). */
  readonly code: number | null;
  /** The signal that ended the child, e.g. SIGKILL after a timeout. */
  readonly signal: NodeJS.Signals | null;
  /** True when the runner killed the child at its deadline. */
  readonly timedOut: boolean;
  /** Milliseconds from the `RESULT` line to the child's exit. */
  readonly exitAfterResultMs: number | undefined;
  /** Everything the child wrote to stderr (for failure messages). */
  readonly stderr: string;
  /** True when the child ran in its own loopback-only network. */
  readonly isolated: boolean;
}

/** Options of {@link runChild}. */
export interface RunChildOptions {
  /** Kill the child after this long. */
  readonly timeoutMs: number;
  /** Extra flags for node, e.g. `--expose-gc`. */
  readonly nodeFlags?: readonly string[];
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
}

interface Isolation {
  readonly prefix: readonly string[];
  readonly note: string;
}

let isolation: Isolation | undefined;

/** How children are isolated here, in words (for test diagnostics). */
export function isolationNote(): string {
  return detectIsolation().note;
}

/** Resolves a fixture path relative to test/integration/fixtures/. */
export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
}

/**
 * Runs `node --import tsx <script> ...args` under the isolation available
 * and resolves when it has exited or been killed. Never rejects for the
 * child's sake: the caller asserts on the returned run.
 */
export function runChild<T>(
  script: string,
  args: readonly string[],
  options: RunChildOptions,
): Promise<ChildRun<T>> {
  const { prefix } = detectIsolation();
  const node = [
    process.execPath,
    ...(options.nodeFlags ?? []),
    '--import',
    'tsx',
    script,
    ...args,
  ];
  const [command, ...rest] = [...prefix, ...node];
  const child = spawn(command, rest, {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group, so a timeout kills everything the child started.
    detached: true,
    env: { ...process.env, ...options.env },
  });

  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let result: T | undefined;
    let resultAt: number | undefined;
    let timedOut = false;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      stdout += text;
      let newline = stdout.indexOf('\n');
      while (newline >= 0) {
        const line = stdout.slice(0, newline);
        stdout = stdout.slice(newline + 1);
        if (line.startsWith('RESULT ')) {
          result = JSON.parse(line.slice('RESULT '.length)) as T;
          resultAt = performance.now();
        }
        newline = stdout.indexOf('\n');
      }
    });
    child.stderr.on('data', (text: string) => {
      // Keep the tail only: a crashing binding can print a lot.
      stderr = (stderr + text).slice(-20_000);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, options.timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        result,
        code,
        signal,
        timedOut,
        exitAfterResultMs:
          resultAt === undefined ? undefined : performance.now() - resultAt,
        stderr,
        isolated: prefix.length > 0,
      });
    });
  });
}

/** A one-line summary of a run for assertion messages. */
export function describeRun(run: ChildRun<unknown>): string {
  return (
    `code ${run.code}, signal ${run.signal}, timedOut ${run.timedOut}, ` +
    `result ${run.result === undefined ? 'none' : 'printed'}, stderr:\n` +
    run.stderr.slice(-4000)
  );
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function detectIsolation(): Isolation {
  if (isolation !== undefined) return isolation;
  isolation = probeIsolation();
  return isolation;
}

function probeIsolation(): Isolation {
  const unavailable = isolationUnavailable();
  if (unavailable !== null) {
    return { prefix: [], note: `not isolated: ${unavailable}; loopback` };
  }
  return {
    prefix: ISOLATED_PREFIX,
    note: 'isolated: own network namespace with loopback only',
  };
}
