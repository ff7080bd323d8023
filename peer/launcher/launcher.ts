/**
 * `topk-ring run` and `npm start`: an embedded signaling server and N peer
 * processes that join one room and train together over WebRTC on
 * loopback, with a live display, per-step metrics as CSV and a summary.
 *
 * The peers are separate processes (`topk-ring peer --ipc`), exactly what
 * a user starts on other machines; they report to this process over the
 * IPC channel, and to the signaling server (dashboard) over socket.io.
 */
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import {
  parseRoomConfig,
  type RoomConfig,
  type RoomConfigInput,
} from '../../shared/config.ts';
import { startSignalingServer } from '../../signaling/server.ts';
import { browserPeerHandlers } from '../browser/serve.ts';
import type { PeerIpcMessage } from '../cli/peer.ts';
import { startPeerProcess } from './peer-process.ts';
import type { SessionSummary } from '../session/session.ts';
import type { StepRecord } from '../training/trainer.ts';
import { formatBytes } from '../../shared/format.ts';

/** Settings of one launch. */
export interface LaunchOptions {
  readonly peers: number;
  /**
   * Peers the ring waits for before step 0 (the room's `minPeers`):
   * `peers` by default; more leaves room for peers started elsewhere,
   * such as browser tabs opening the join page.
   */
  readonly minPeers?: number;
  /** The room config (model, data set, density, epochs...). */
  readonly config: RoomConfigInput;
  /** Port of the embedded server; 0 picks a free one. */
  readonly port: number;
  readonly host: string;
  readonly room: string;
  /** A shared secret every peer of the room must present. */
  readonly token?: string;
  readonly webrtc: string;
  readonly backend: string;
  /** Use only the first N training / test samples. */
  readonly maxTrain?: number;
  readonly maxTest?: number;
  /** Folder that gets `<id>/summary.json` and the CSV files. */
  readonly runsDir: string;
  /** Shows progress; none by default. */
  readonly display?: ProgressDisplay;
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

/** What the launcher shows while it runs. */
export interface ProgressDisplay {
  update(
    peer: number,
    progress: {
      step: number;
      totalSteps: number;
      loss: number;
      bytesSent: number;
      denseBytes: number;
    },
  ): void;
  /** A line above the bars (or plainly). */
  log(line: string): void;
  stop(): void;
}

const SILENT: ProgressDisplay = { update() {}, log() {}, stop() {} };

/** Runs the job; resolves with its summary once every peer has finished. */
export async function launch(options: LaunchOptions): Promise<RunSummary> {
  const startMs = performance.now();
  const config = parseRoomConfig({
    ...options.config,
    minPeers: options.minPeers ?? options.peers,
    // The room's, so that peers joining from elsewhere and tabs train on
    // the same samples as the local peers.
    ...(options.maxTrain === undefined
      ? {}
      : { trainSamples: options.maxTrain }),
  });
  const id = new Date().toISOString().replace(/[:.]/g, '-');
  const runDir = path.join(options.runsDir, id);
  await mkdir(runDir, { recursive: true });

  const server = await startSignalingServer({
    port: options.port,
    host: options.host,
    rooms: { [options.room]: config },
    ...(options.token === undefined
      ? {}
      : { admission: { sharedToken: options.token } }),
    // Tabs get the join page and the same data the local peers load.
    httpHandlers: browserPeerHandlers({
      roomConfig: (name) => (name === options.room ? config : undefined),
      maxTrain: options.maxTrain,
      maxTest: options.maxTest,
    }),
  });
  const joinUrl =
    `${server.url}/?room=${encodeURIComponent(options.room)}` +
    (options.token === undefined
      ? ''
      : `&token=${encodeURIComponent(options.token)}`);
  const dashboardUrl = `${server.url}/dashboard?room=${encodeURIComponent(options.room)}`;
  const display = options.display ?? SILENT;
  display.log(`signaling server ${server.url}; dashboard ${dashboardUrl}`);
  if (!isLoopbackHost(options.host)) {
    display.log(
      `listening on ${options.host}: other machines use this machine's ` +
        `address with port ${new URL(server.url).port}` +
        (options.token === undefined
          ? '; the room has no token, so anyone who reaches the port can ' +
            'join it (--token sets one)'
          : ''),
    );
  }
  if (config.minPeers > options.peers) {
    display.log(
      `waiting for ${config.minPeers - options.peers} more peer(s): open ` +
        `${joinUrl} in a browser to join from a tab`,
    );
  }
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
        startPeerProcess(peer, server.url, options, (message) =>
          sink.handle(peer, message),
        ).then(async (handle) => {
          children.push(handle.child);
          const summary = await handle.finished;
          // The end-of-run evaluation, after the last epoch's.
          evaluations.write(
            `${peer},${summary.steps},${summary.stopped ? '' : config.epochs},` +
              `${summary.testLoss},` +
              `${summary.testAccuracy ?? ''}\n`,
          );
          return summary;
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

function isLoopbackHost(host: string): boolean {
  return (
    host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
  );
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
      `on ${summary.peers} peer${summary.peers === 1 ? '' : 's'} in ${(summary.wallMs / 1000).toFixed(1)} s`,
    accuracy,
    `all-reduce traffic: ${formatBytes(summary.bytesSent)} sent by all ` +
      `peers, against ${formatBytes(summary.denseBytes)} for dense ring ` +
      `all-reduce (${compared(summary.bytesSent, summary.denseBytes)})`,
    `replicas ${summary.identical ? 'identical' : 'DIFFER'}: ` +
      summary.modelHashes.join(' '),
    `summary and per-step metrics: ${summary.runDir}`,
  ];
}

/** "44.3x less", "about as much", "5% more", or nothing to send (one peer). */
function compared(sent: number, dense: number): string {
  if (dense === 0) return 'nothing to send: one peer';
  const ratio = dense / Math.max(sent, 1);
  if (ratio >= 1.05) return `${ratio.toFixed(1)}x less`;
  if (ratio > 0.95) return 'about as much';
  return `${((sent / dense - 1) * 100).toFixed(0)}% more`;
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
