/**
 * `topk-ring run` and `npm start`: an embedded signaling server and N peer
 * processes that join one room and train together over WebRTC on
 * loopback, with a live display, per-step metrics as CSV and a summary.
 *
 * The peers are separate processes (`topk-ring peer --ipc`), exactly what
 * a user starts on other machines; they report to this process over the
 * IPC channel, and to the signaling server (dashboard) over socket.io.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import createDebug from 'debug';

import {
  parseRoomConfig,
  type RoomConfig,
  type RoomConfigInput,
} from '../../shared/config.ts';
import { topkError } from '../../shared/errors.ts';
import { startSignalingServer } from '../../signaling/server.ts';
import type { PeerIpcMessage } from '../cli/peer.ts';
import type { SessionSummary } from '../session/session.ts';
import type { StepRecord } from '../training/trainer.ts';
import {
  createProgressDisplay,
  formatBytes,
  type ProgressDisplay,
} from './progress.ts';

const log = createDebug('topk:launcher');

const BIN = fileURLToPath(new URL('../cli/bin.mjs', import.meta.url));

/** Settings of one launch. */
export interface LaunchOptions {
  readonly peers: number;
  /** The room config (model, data set, density, epochs...). */
  readonly config: RoomConfigInput;
  /** Port of the embedded server; 0 picks a free one. */
  readonly port: number;
  readonly host: string;
  readonly room: string;
  readonly webrtc: string;
  readonly backend: string;
  /** Use only the first N training / test samples. */
  readonly maxTrain?: number;
  readonly maxTest?: number;
  /** Folder that gets `<id>/summary.json` and the CSV files. */
  readonly runsDir: string;
  /** No live display (JSON output). */
  readonly quiet: boolean;
  /** Stops the run between steps. */
  readonly signal?: AbortSignal;
}

/** What a run produced; `summary.json` holds the same. */
export interface RunSummary {
  readonly id: string;
  readonly runDir: string;
  readonly dashboardUrl: string;
  readonly config: RoomConfig;
  readonly peers: number;
  readonly steps: number;
  readonly n: number;
  readonly k: number;
  readonly testAccuracy?: number;
  readonly testLoss: number;
  /** All peers' all-reduce bytes sent, summed. */
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** What dense ring all-reduce would have sent in the same steps. */
  readonly denseBytes: number;
  /** denseBytes / bytesSent. */
  readonly compressionRatio: number;
  /** One per peer, in peer order. */
  readonly modelHashes: readonly string[];
  /** Every replica ended with the same weights. */
  readonly identical: boolean;
  readonly wallMs: number;
  readonly stopped: boolean;
}

const STEP_COLUMNS: readonly (keyof StepRecord)[] = [
  'step',
  'generation',
  'peers',
  'loss',
  'learningRate',
  'k',
  'n',
  'bytesSent',
  'bytesReceived',
  'denseBytes',
  'algorithm',
  'unionSize',
  'skipped',
  'compressionError',
  'gamma',
  'computeMs',
  'selectMs',
  'communicateMs',
];

/** Runs the job; resolves with its summary once every peer has finished. */
export async function launch(options: LaunchOptions): Promise<RunSummary> {
  const startMs = performance.now();
  const config = parseRoomConfig({
    ...options.config,
    minPeers: options.peers,
  });
  const id = new Date().toISOString().replace(/[:.]/g, '-');
  const runDir = path.join(options.runsDir, id);
  await mkdir(runDir, { recursive: true });

  const server = await startSignalingServer({
    port: options.port,
    host: options.host,
    rooms: { [options.room]: config },
  });
  const dashboardUrl = `${server.url}/dashboard?room=${encodeURIComponent(options.room)}`;
  const display = createProgressDisplay(options.peers, {
    quiet: options.quiet,
  });
  display.log(`signaling server ${server.url}; dashboard ${dashboardUrl}`);
  display.log(
    `${options.peers} peers train ${config.model} on ${config.dataset} at ` +
      `density ${config.density ?? `k=${config.k}`} for ${config.epochs} ` +
      `epoch(s); metrics in ${runDir}`,
  );

  const metrics = createWriteStream(path.join(runDir, 'metrics.csv'));
  metrics.write(['peer', ...STEP_COLUMNS].join(',') + '\n');
  const evaluations = createWriteStream(path.join(runDir, 'evaluations.csv'));
  evaluations.write('peer,step,epoch,loss,accuracy\n');

  const sink = new EventSink(display, metrics, evaluations);
  const children: ChildProcess[] = [];
  const onAbort = (): void => {
    for (const child of children) child.kill('SIGINT');
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let summaries: SessionSummary[];
  try {
    summaries = await Promise.all(
      Array.from({ length: options.peers }, (_, peer) =>
        runChild(peer, server.url, options, children, {
          onEvent: (message) => sink.handle(peer, message),
        }),
      ),
    );
  } catch (error) {
    for (const child of children) child.kill('SIGKILL');
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    display.stop();
    await Promise.all([closeStream(metrics), closeStream(evaluations)]);
    await server.close();
  }

  const first = summaries[0];
  const sum = (pick: (s: SessionSummary) => number): number =>
    summaries.reduce((total, s) => total + pick(s), 0);
  const modelHashes = summaries.map((s) => s.modelHash);
  const bytesSent = sum((s) => s.bytesSent);
  const denseBytes = sum((s) => s.denseBytes);
  const summary: RunSummary = {
    id,
    runDir,
    dashboardUrl,
    config,
    peers: options.peers,
    steps: first.steps,
    n: first.n,
    k: first.k,
    testAccuracy: first.testAccuracy,
    testLoss: first.testLoss,
    bytesSent,
    bytesReceived: sum((s) => s.bytesReceived),
    denseBytes,
    compressionRatio: bytesSent > 0 ? denseBytes / bytesSent : 0,
    modelHashes,
    identical: new Set(modelHashes).size === 1,
    wallMs: performance.now() - startMs,
    stopped: summaries.some((s) => s.stopped),
  };
  await writeFile(
    path.join(runDir, 'summary.json'),
    JSON.stringify({ ...summary, peerSummaries: summaries }, null, 2),
  );
  return summary;
}

/** Human-readable lines of a summary. */
export function describeRun(summary: RunSummary): string[] {
  const accuracy =
    summary.testAccuracy === undefined
      ? `test loss ${summary.testLoss.toFixed(4)}`
      : `test accuracy ${(summary.testAccuracy * 100).toFixed(2)}% ` +
        `(loss ${summary.testLoss.toFixed(4)})`;
  return [
    `${summary.stopped ? 'stopped' : 'finished'}: ${summary.steps} steps ` +
      `on ${summary.peers} peers in ${(summary.wallMs / 1000).toFixed(1)} s`,
    accuracy,
    `all-reduce traffic: ${formatBytes(summary.bytesSent)} sent by all ` +
      `peers, against ${formatBytes(summary.denseBytes)} for dense ring ` +
      `all-reduce (${summary.compressionRatio.toFixed(1)}x less)`,
    `replicas ${summary.identical ? 'identical' : 'DIFFER'}: ` +
      summary.modelHashes.join(' '),
    `summary and per-step metrics: ${summary.runDir}`,
  ];
}

interface ChildHooks {
  onEvent(message: PeerIpcMessage): void;
}

function runChild(
  peer: number,
  serverUrl: string,
  options: LaunchOptions,
  children: ChildProcess[],
  hooks: ChildHooks,
): Promise<SessionSummary> {
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
  const child = fork(BIN, args, {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    execArgv: [],
  });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    let summary: SessionSummary | undefined;
    let failure: { code: string; message: string } | undefined;
    child.on('message', (message: PeerIpcMessage) => {
      if (message.type === 'summary') summary = message.summary;
      else if (message.type === 'failure') failure = message;
      else hooks.onEvent(message);
    });
    child.on('error', (error) =>
      reject(
        topkError(
          'ERR_INTERNAL',
          `peer ${peer} could not start`,
          { peer },
          error,
        ),
      ),
    );
    child.on('exit', (code, signal) => {
      log('peer %d exited with %s', peer, code ?? signal);
      if (summary !== undefined) {
        resolve(summary);
        return;
      }
      reject(
        topkError(
          'ERR_PEER_GONE',
          `peer ${peer} ended without finishing (exit ${code ?? signal})` +
            (failure ? `: ${failure.code}: ${failure.message}` : '') +
            (stderr.trim() ? `\n${stderr.trim()}` : ''),
          { peer, code, signal, failure },
        ),
      );
    });
  });
}

/** Turns the peers' events into the display and the CSV files. */
class EventSink {
  readonly #display: ProgressDisplay;
  readonly #metrics: WriteStream;
  readonly #evaluations: WriteStream;
  readonly #totals = new Map<
    number,
    { totalSteps: number; bytesSent: number; denseBytes: number }
  >();

  constructor(
    display: ProgressDisplay,
    metrics: WriteStream,
    evaluations: WriteStream,
  ) {
    this.#display = display;
    this.#metrics = metrics;
    this.#evaluations = evaluations;
  }

  handle(peer: number, message: PeerIpcMessage): void {
    if (message.type !== 'event') return;
    const event = message.event;
    const totals = this.#totalsOf(peer);
    switch (event.type) {
      case 'ready':
        this.#display.log(
          `peer ${peer} is ${event.peerId} on ${event.backend}: ` +
            `n=${event.n}, K=${event.k}`,
        );
        break;
      case 'generation':
        totals.totalSteps = event.totalSteps;
        break;
      case 'step': {
        const r = event.record;
        totals.bytesSent += r.bytesSent;
        totals.denseBytes += r.denseBytes;
        this.#metrics.write(
          [peer, ...STEP_COLUMNS.map((column) => String(r[column]))].join(',') +
            '\n',
        );
        this.#display.update(peer, {
          step: r.step + 1,
          totalSteps: totals.totalSteps,
          loss: r.loss,
          bytesSent: totals.bytesSent,
          denseBytes: totals.denseBytes,
        });
        break;
      }
      case 'evaluation':
        this.#evaluations.write(
          `${peer},${event.step},${event.epoch},${event.loss},` +
            `${event.accuracy ?? ''}\n`,
        );
        if (peer === 0) {
          this.#display.log(
            `epoch ${event.epoch}: test loss ${event.loss.toFixed(4)}` +
              (event.accuracy === undefined
                ? ''
                : `, accuracy ${(event.accuracy * 100).toFixed(2)}%`),
          );
        }
        break;
    }
  }

  #totalsOf(peer: number) {
    let totals = this.#totals.get(peer);
    if (totals === undefined) {
      totals = { totalSteps: 1, bytesSent: 0, denseBytes: 0 };
      this.#totals.set(peer, totals);
    }
    return totals;
  }
}

function closeStream(stream: WriteStream): Promise<void> {
  return new Promise((resolve) => stream.end(resolve));
}
