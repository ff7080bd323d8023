/**
 * One `topk-ring peer --ipc` child process: started, watched and ended by
 * the launcher and the chaos harness. Its events come over the IPC
 * channel; its summary settles `finished`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import createDebug from 'debug';

import { topkError } from '../../shared/errors.ts';
import type { PeerIpcMessage } from '../cli/peer.ts';
import type { SessionSummary } from '../session/session.ts';

const log = createDebug('topk:launcher');

const BIN = fileURLToPath(new URL('../cli/bin.mjs', import.meta.url));

/** How to start a peer process. */
export interface PeerProcessOptions {
  readonly room: string;
  readonly webrtc: string;
  readonly backend: string;
  readonly maxTrain?: number;
  readonly maxTest?: number;
  /** The room's token, if it needs one. */
  readonly token?: string;
  /** Appends the process's stderr (its debug log) to this file. */
  readonly logFile?: string;
  /** Variables added to the process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** More `topk-ring peer` options, e.g. `--checkpoint-dir DIR`. */
  readonly args?: readonly string[];
}

/** A running peer process. */
export interface PeerProcess {
  readonly child: ChildProcess;
  /**
   * Resolves with the peer's summary when it finished its run; rejects
   * with `ERR_PEER_GONE` (with its last error and stderr) when it ended
   * without one, e.g. when it was killed.
   */
  readonly finished: Promise<SessionSummary>;
}

/** Starts a peer process that joins `serverUrl`'s room. */
export async function startPeerProcess(
  label: number | string,
  serverUrl: string,
  options: PeerProcessOptions,
  onEvent: (message: PeerIpcMessage) => void,
): Promise<PeerProcess> {
  const args = [
    'peer',
    '--server',
    serverUrl,
    '--room',
    options.room,
    '--webrtc',
    options.webrtc,
    '--backend',
    options.backend,
    '--ipc',
  ];
  if (options.maxTrain !== undefined) {
    args.push('--max-train', String(options.maxTrain));
  }
  if (options.maxTest !== undefined) {
    args.push('--max-test', String(options.maxTest));
  }
  if (options.token !== undefined) args.push('--token', options.token);
  args.push(...(options.args ?? []));
  const child = fork(BIN, args, {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    execArgv: [],
    env: { ...process.env, ...options.env },
  });
  let stderr = '';
  let logStream: WriteStream | undefined;
  if (options.logFile !== undefined) {
    const file = options.logFile;
    mkdirSync(path.dirname(file), { recursive: true });
    logStream = createWriteStream(file, { flags: 'a' });
    // A log that cannot be written costs the log, not the run.
    logStream.once('error', (error) => {
      process.emitWarning(
        `peer ${label}: not logging to ${file}: ${error.message}`,
      );
      logStream = undefined;
    });
  }
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
    logStream?.write(chunk);
  });
  child.once('exit', () => logStream?.end());
  const finished = new Promise<SessionSummary>((resolve, reject) => {
    let summary: SessionSummary | undefined;
    let failure: { code: string; message: string } | undefined;
    child.on('message', (message: PeerIpcMessage) => {
      if (message.type === 'summary') summary = message.summary;
      else if (message.type === 'failure') failure = message;
      else onEvent(message);
    });
    child.on('error', (error) =>
      reject(
        topkError(
          'ERR_INTERNAL',
          `peer ${label} could not start`,
          { label },
          error,
        ),
      ),
    );
    child.on('exit', (code, signal) => {
      log('peer %s exited with %s', label, code ?? signal);
      if (summary !== undefined) {
        resolve(summary);
        return;
      }
      reject(
        topkError(
          'ERR_PEER_GONE',
          `peer ${label} ended without finishing (exit ${code ?? signal})` +
            (failure ? `: ${failure.code}: ${failure.message}` : '') +
            (stderr.trim() ? `\n${stderr.trim()}` : ''),
          { label, code, signal, failure },
        ),
      );
    });
  });
  // A caller that stops caring (a killed peer) must not see an
  // unhandled rejection.
  finished.catch(() => {});
  return { child, finished };
}
