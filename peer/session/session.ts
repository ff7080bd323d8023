/**
 * One Node peer's training session: join a room through the signaling
 * server, load the room's data set and model, and run the room's ring
 * (ring-session.ts, the same loop a browser tab runs) until the end of the
 * run; then leave. Adds what only Node has: the TensorFlow.js backends of
 * Node, a native WebRTC binding, data from files, and checkpoints.
 */
import path from 'node:path';

import createDebug from 'debug';

import {
  parseRoomConfig,
  trainSamplesFor,
  type RoomConfig,
  type RoomConfigInput,
} from '../../shared/config.ts';
import { topkError } from '../../shared/errors.ts';
import { SignalingClient } from '../../shared/signaling-client.ts';
import type { Dataset } from '../data/dataset.ts';
import { loadDataset } from '../data/registry.ts';
import { initBackend } from '../tf/backend.ts';
import { loadCheckpoint, saveCheckpoint } from '../training/checkpoint.ts';
import { Trainer, type StepRecord } from '../training/trainer.ts';
import { loadBinding, type WebRtcBindingName } from '../webrtc/bindings.ts';
import { fetchRoomConfig, fingerprintFor } from './join-fingerprint.ts';
import { RingSession, ringConnector } from './ring-session.ts';
import { parseTestFault, TEST_FAULT_VARIABLE } from './test-fault.ts';
import type { Placement } from './ring-session-types.ts';

const log = createDebug('topk:session');

/** Settings of {@link runPeerSession}. */
export interface PeerSessionOptions {
  /** The signaling server's URL. */
  readonly server: string;
  readonly room: string;
  readonly token?: string;
  readonly webrtc: WebRtcBindingName;
  /** A `--backend` choice; an unknown one is refused by name. */
  readonly backend: string;
  /** Config to create the room with, where the server lets peers, or
   * the config this peer expects: a room with another one refuses it. */
  readonly config?: RoomConfigInput;
  /** Write checkpoints here (every `checkpointEvery` steps and at the end). */
  readonly checkpointDir?: string;
  /** Continue from the checkpoint in this folder. */
  readonly resume?: string;
  /** Use only the first N training / test samples (quick runs, tests). */
  readonly maxTrain?: number;
  readonly maxTest?: number;
  /** Stops the session between steps, leaving gracefully. */
  readonly signal?: AbortSignal;
  /** Receives progress. Must not throw. */
  readonly onEvent?: (event: SessionEvent) => void;
}

/** What a session tells its owner (the CLI or the launcher). */
export type SessionEvent =
  | {
      readonly type: 'ready';
      readonly peerId: string;
      readonly backend: string;
      readonly n: number;
      readonly k: number;
      readonly config: RoomConfig;
    }
  | {
      readonly type: 'generation';
      readonly generation: number;
      readonly ringIndex: number;
      readonly peers: number;
      readonly totalSteps: number;
    }
  | { readonly type: 'step'; readonly record: StepRecord }
  | { readonly type: 'handing-on'; readonly generation: number }
  | {
      readonly type: 'evaluation';
      readonly step: number;
      readonly epoch: number;
      readonly loss: number;
      readonly accuracy?: number;
    };

/** How a session ended. */
export interface SessionSummary {
  readonly peerId: string;
  readonly backend: string;
  /** Steps completed. */
  readonly steps: number;
  readonly n: number;
  readonly k: number;
  readonly testLoss: number;
  readonly testAccuracy?: number;
  readonly modelHash: string;
  /** Wire bytes of the all-reduce, this peer's. */
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** What a dense ring all-reduce would have sent in the same steps. */
  readonly denseBytes: number;
  readonly generations: number;
  readonly wallMs: number;
  /** True when stopped early through `signal`. */
  readonly stopped: boolean;
}

/** Runs a peer from joining to leaving; see the module comment. */
export async function runPeerSession(
  options: PeerSessionOptions,
): Promise<SessionSummary> {
  const startMs = performance.now();
  const backend = await initBackend(options.backend);
  const load = (config: RoomConfig): Promise<Dataset> =>
    loadDataset(config.dataset, {
      seed: config.seed,
      maxTrain: trainSamplesFor(config, options.room, options.maxTrain),
      maxTest: options.maxTest,
    });
  // The model this peer will train, presented at join: a room that trains
  // another one refuses this peer, naming the difference (issue 6).
  // TODO(#6): the first peer of a room the server makes on demand cannot
  // know the room's config before it joins and presents no fingerprint;
  // the room then takes the next one presented.
  // The room's config when the room exists (a --config may name only a
  // few settings; the server compares those), else this peer's own.
  const expected =
    (await fetchRoomConfig(options.server, options.room)) ??
    (options.config === undefined
      ? undefined
      : parseRoomConfig(options.config));
  const early =
    expected === undefined
      ? undefined
      : { config: expected, dataset: await load(expected) };
  const fingerprint =
    early === undefined
      ? undefined
      : fingerprintFor(early.config, early.dataset);
  // Test only: TOPK_TEST_FAULT (test-fault.ts); refused before connecting.
  const fault = parseTestFault(process.env[TEST_FAULT_VARIABLE]);
  // A resumed peer says which step its weights are from: a room whose run
  // finished later, with nobody left to hand on the final weights, refuses
  // it at join (ERR_RUN_FINISHED) instead of letting it train on alone.
  const resumed =
    options.resume === undefined
      ? undefined
      : await loadCheckpoint(options.resume);
  const binding = await loadBinding(options.webrtc);
  let client;
  try {
    client = await SignalingClient.connect({
      url: options.server,
      room: options.room,
      token: options.token,
      kind: 'node',
      backend,
      config: options.config,
      fingerprint,
      holdsStep: resumed?.state.step,
    });
  } catch (error) {
    binding.shutdown();
    throw error;
  }
  // Listening for the neighbours' offers starts now, before the data set
  // loads: the relay keeps nothing for a peer that does not listen.
  const connector = ringConnector(client, binding, { fault });
  let trainer: Trainer | undefined;
  let session: RingSession | undefined;
  try {
    const config = client.config;
    const dataset =
      early !== undefined &&
      early.config.dataset === config.dataset &&
      early.config.seed === config.seed &&
      early.config.trainSamples === config.trainSamples
        ? early.dataset
        : await load(config);
    trainer = new Trainer({
      config,
      dataset,
      room: options.room,
      peerId: client.peerId,
    });
    let fresh = true;
    if (resumed !== undefined) {
      trainer.restoreState({ ...resumed, step: resumed.state.step });
      fresh = false;
    }
    const emit = (event: SessionEvent): void => {
      try {
        options.onEvent?.(event);
      } catch {
        // A listener's failure is the listener's; training goes on.
      }
    };
    emit({
      type: 'ready',
      peerId: client.peerId,
      backend,
      n: trainer.n,
      k: trainer.compressor.config.totalK,
      config,
    });
    const owned = trainer;
    const perturb = testPerturbation();
    session = new RingSession({
      client,
      trainer: owned,
      connector,
      room: options.room,
      backend,
      fresh,
      signal: options.signal,
      onEvent: (event) => {
        if (
          event.type === 'generation' ||
          event.type === 'evaluation' ||
          event.type === 'handing-on'
        ) {
          emit(event);
        } else if (event.type === 'step') {
          perturb?.(owned);
          emit({ type: 'step', record: event.record });
        }
      },
      checkpoint:
        options.checkpointDir === undefined
          ? undefined
          : (placement) =>
              writeCheckpoint(
                options.checkpointDir as string,
                options.room,
                owned,
                placement,
              ),
    });
    const result = await session.run();
    return {
      peerId: client.peerId,
      backend,
      steps: result.steps,
      n: owned.n,
      k: owned.compressor.config.totalK,
      testLoss: result.testLoss,
      testAccuracy: result.testAccuracy,
      modelHash: result.modelHash,
      bytesSent: result.bytesSent,
      bytesReceived: result.bytesReceived,
      denseBytes: result.denseBytes,
      generations: result.generations,
      wallMs: performance.now() - startMs,
      stopped: result.stopped,
    };
  } finally {
    if (session !== undefined) await session.close();
    else {
      connector.dispose();
      client.close();
    }
    trainer?.dispose();
    binding.shutdown();
  }
}

function writeCheckpoint(
  root: string,
  room: string,
  trainer: Trainer,
  placement: Placement,
): Promise<void> {
  const dir = path.join(root, `step-${String(trainer.step).padStart(7, '0')}`);
  return saveCheckpoint(dir, trainer, { room, ...placement });
}

/** Test only: see {@link testPerturbation}. */
const PERTURB_ENV = 'TOPK_TEST_PERTURB_STEP';

/**
 * Test only (issue 6): with `TOPK_TEST_PERTURB_STEP=N` in the environment,
 * this peer nudges one of its weights once, right after step N, as a
 * memory fault or a backend bug would, so a test can watch the ring find
 * the disagreement and resynchronise the peer. Undefined without it.
 */
function testPerturbation(): ((trainer: Trainer) => void) | undefined {
  const raw = process.env[PERTURB_ENV];
  if (raw === undefined || raw === '') return undefined;
  const atStep = Number(raw);
  if (!Number.isSafeInteger(atStep) || atStep < 1) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `${PERTURB_ENV}: expected a step (an integer >= 1), got ${raw}`,
      { value: raw },
    );
  }
  let done = false;
  return (trainer) => {
    if (done || trainer.step !== atStep) return;
    done = true;
    const weights = trainer.weights.slice();
    weights[0] = (weights[0] ?? 0) + 1e-3;
    trainer.restoreState({ step: trainer.step, weights });
    log('%s set: weight 0 nudged after step %d', PERTURB_ENV, atStep);
  };
}
