/**
 * `topk-ring peer`: trains as one peer of a room, with the room's config.
 *
 *   topk-ring peer --server http://10.0.0.5:8080 --room mnist
 *   topk-ring peer --server ... --room mnist --config job.json
 *
 * With `--config` the peer brings the config it expects (or creates the
 * room with it, where the server lets peers); a room with another config
 * or model refuses it at join, naming the difference.
 *
 * With `--ipc` (used by `topk-ring run`) progress goes to the parent
 * process as messages instead of the terminal.
 */
import type { Command } from 'commander';

import { BACKEND_CHOICES } from '../tf/backend.ts';
import {
  runPeerSession,
  type SessionEvent,
  type SessionSummary,
} from '../session/session.ts';
import {
  parseBindingName,
  DEFAULT_WEBRTC_BINDING,
  WEBRTC_BINDINGS,
} from '../webrtc/bindings.ts';
import {
  integerOption,
  readRoomConfig,
  reportFailure,
  choiceOption,
  roomOption,
  stopSignal,
  urlOption,
} from './options.ts';

interface PeerOptions {
  server: string;
  room: string;
  token?: string;
  config?: string;
  webrtc: string;
  backend: string;
  checkpointDir?: string;
  resume?: string;
  maxTrain?: number;
  maxTest?: number;
  ipc?: boolean;
  json?: boolean;
}

/** Messages a peer started with `--ipc` sends its parent. */
export type PeerIpcMessage =
  | { readonly type: 'event'; readonly event: SessionEvent }
  | { readonly type: 'summary'; readonly summary: SessionSummary }
  | {
      readonly type: 'failure';
      readonly code: string;
      readonly message: string;
    };

/** Adds `peer` to `program`. */
export function registerPeerCommand(program: Command): void {
  program
    .command('peer')
    .description('train as one peer of a room on a signaling server')
    .requiredOption('--server <url>', 'signaling server URL', urlOption)
    .requiredOption('--room <name>', 'room (training job) to join', roomOption)
    .option('--token <token>', "the room's token, if it needs one")
    .option(
      '--config <file>',
      'the room config this peer expects (JSON); refused if the room differs',
    )
    .option(
      '--webrtc <binding>',
      'WebRTC binding: roamhq or node-datachannel',
      choiceOption(WEBRTC_BINDINGS),
      DEFAULT_WEBRTC_BINDING,
    )
    .option(
      '--backend <name>',
      `TensorFlow.js backend: ${BACKEND_CHOICES.join(', ')}`,
      choiceOption(BACKEND_CHOICES),
      'auto',
    )
    .option('--checkpoint-dir <dir>', 'write checkpoints into this folder')
    .option('--resume <dir>', 'continue from this checkpoint')
    .option(
      '--max-train <n>',
      'train on the first n training samples; a room with its own ' +
        'trainSamples refuses another value',
      integerOption(1),
    )
    .option(
      '--max-test <n>',
      'use only the first n test samples',
      integerOption(1),
    )
    .option('--ipc', 'report to the parent process (used by `run`)')
    .option('--json', 'print the summary as JSON')
    .action(async (options: PeerOptions) => {
      const stop = stopSignal();
      if (options.ipc === true) stopWithParent(stop);
      try {
        const summary = await runPeer(options, stop.signal);
        if (options.ipc === true) send({ type: 'summary', summary });
        else if (options.json === true) {
          console.log(JSON.stringify(summary, null, 2));
        } else printSummary(summary);
      } catch (error) {
        if (options.ipc === true) {
          const typed = error as { code?: string; message?: string };
          send({
            type: 'failure',
            code: typed.code ?? 'ERR_INTERNAL',
            message: typed.message ?? String(error),
          });
        }
        reportFailure(error);
      } finally {
        stop.dispose();
        process.disconnect?.();
      }
    });
}

async function runPeer(
  options: PeerOptions,
  signal: AbortSignal,
): Promise<SessionSummary> {
  return runPeerSession({
    server: options.server,
    room: options.room,
    token: options.token,
    config:
      options.config === undefined
        ? undefined
        : await readRoomConfig(options.config, '--config'),
    webrtc: parseBindingName(options.webrtc),
    // initBackend refuses an unknown name with the list of known ones.
    backend: options.backend,
    checkpointDir: options.checkpointDir,
    resume: options.resume,
    maxTrain: options.maxTrain,
    maxTest: options.maxTest,
    signal,
    onEvent:
      options.ipc === true
        ? (event: SessionEvent) => send({ type: 'event', event })
        : options.json === true
          ? undefined
          : printEvent,
  });
}

function send(message: PeerIpcMessage): void {
  process.send?.(message);
}

function printEvent(event: SessionEvent): void {
  switch (event.type) {
    case 'ready':
      console.log(
        `joined as ${event.peerId} on ${event.backend}: ${event.config.model} ` +
          `on ${event.config.dataset}, n=${event.n}, K=${event.k}`,
      );
      break;
    case 'generation':
      console.log(
        `ring generation ${event.generation}: index ${event.ringIndex} of ` +
          `${event.peers}, ${event.totalSteps} steps in all`,
      );
      break;
    case 'step':
      if (event.record.step % 50 === 0) {
        const r = event.record;
        console.log(
          `step ${r.step} loss ${r.loss.toFixed(4)} sent ${r.bytesSent} B ` +
            `(dense ${r.denseBytes} B) ${r.algorithm}`,
        );
      }
      break;
    case 'handing-on':
      console.log(
        `run complete; handing the final weights to the ring of generation ` +
          `${event.generation} before leaving`,
      );
      break;
    case 'evaluation':
      console.log(
        `epoch ${event.epoch}: test loss ${event.loss.toFixed(4)}` +
          (event.accuracy === undefined
            ? ''
            : `, accuracy ${(event.accuracy * 100).toFixed(2)}%`),
      );
      break;
  }
}

function printSummary(summary: SessionSummary): void {
  console.log(
    `done: ${summary.steps} steps, test loss ${summary.testLoss.toFixed(4)}` +
      (summary.testAccuracy === undefined
        ? ''
        : `, accuracy ${(summary.testAccuracy * 100).toFixed(2)}%`) +
      `, sent ${summary.bytesSent} B against ${summary.denseBytes} B dense, ` +
      `model ${summary.modelHash}`,
  );
}

/** How long a peer whose parent died may take to leave gracefully. */
const ORPHAN_EXIT_MS = 10_000;

/**
 * A peer started by `run` or `chaos` ends when its parent does: it stops
 * between steps and leaves, and exits at the latest after
 * {@link ORPHAN_EXIT_MS}, so no orphan keeps training.
 */
function stopWithParent(stop: { abort(reason: string): void }): void {
  process.once('disconnect', () => {
    stop.abort('the parent process is gone');
    setTimeout(() => process.exit(1), ORPHAN_EXIT_MS).unref();
  });
}
