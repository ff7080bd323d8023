/**
 * Runs one fault scenario on a simulated ring: peers whose inputs come
 * from real error-feedback compressors, a clean warm-up step, then the
 * step under test with a fault hook installed, every message on the wire
 * recorded. Also: the same messages carried as chunks through the framing
 * layer (a Framer per sender, a Reassembler per receiver), so that faults
 * can act on chunks.
 */
import assert from 'node:assert/strict';

import {
  allReduce,
  AutoPlanner,
  type AllReduceChoice,
  type AllReduceInput,
  type AllReduceResult,
} from '../../shared/allreduce/index.ts';
import { Compressor } from '../../shared/compressor.ts';
import { isTopkError, topkError } from '../../shared/errors.ts';
import { Framer, Reassembler } from '../../shared/framing.ts';
import {
  RingSimulator,
  type FaultAction,
  type FaultHook,
  type WireEvent,
} from '../../shared/simulator.ts';
import { settleSimulatedStep } from '../../shared/simulator-step.ts';
import type { SparseVector } from '../../shared/sparse.ts';
import { seededRandom } from '../../peer/bench/gradients.ts';

/** The generation the scenarios run in (0 is "an old generation"). */
export const GENERATION = 1;
/** The clean warm-up step, then the step the faults act on. */
export const WARMUP_STEP = 0;
export const FAULT_STEP = 1;
/** Learning rate the compressors scale gradients by. */
const LR = 0.5;

/** One peer of a scenario: its compressor and what it sends each step. */
export interface ScenarioPeer {
  readonly compressor: Compressor;
  /** Sent at the warm-up step and at the fault step. */
  readonly sent: readonly [SparseVector, SparseVector];
  /** `residual + lr * gradient` at the fault step, as float32. */
  readonly accAtFault: Float32Array;
}

/**
 * P peers with compressors of length `n` keeping `k` entries, fed seeded
 * gradients. Peer `loud` (if any) has gradients 1000 times larger, so
 * that anything of it in a sum stands out.
 */
export function makePeers(
  peers: number,
  n: number,
  k: number,
  seed: number,
  loud?: number,
): ScenarioPeer[] {
  const random = seededRandom(seed);
  return Array.from({ length: peers }, (_, p) => {
    const compressor = new Compressor({ n, k, selection: 'exact' });
    const scale = p === loud ? 1000 : 1;
    const gradient = () =>
      Float32Array.from({ length: n }, () => scale * (2 * random() - 1));
    const warmup = compressor.compress(gradient(), LR).sent;
    const before = compressor.residualView().slice();
    const atFault = gradient();
    const accAtFault = Float32Array.from(before, (value, i) =>
      Math.fround(value + LR * atFault[i]),
    );
    const sent = compressor.compress(atFault, LR).sent;
    return { compressor, sent: [warmup, sent], accAtFault };
  });
}

/**
 * Puts back what `peer` sent at the fault step, as a survivor of a failed
 * step does, checks that its residual is then exactly the fault step's
 * `acc` (no gradient lost), and compresses again with a zero gradient:
 * what it sends in the redone step, which must be what it sent before.
 */
export function restoreAndResend(peer: ScenarioPeer): SparseVector {
  const { compressor, sent, accAtFault } = peer;
  compressor.restore(sent[1]);
  assert.deepEqual(
    new Uint32Array(compressor.residualView().slice().buffer),
    new Uint32Array(accAtFault.buffer),
    'after restore the residual is the fault step acc, bit for bit',
  );
  const again = compressor.compress(new Float32Array(compressor.n), LR).sent;
  assert.deepEqual(again.indices, sent[1].indices);
  assert.deepEqual(
    new Uint32Array(again.values.slice().buffer),
    new Uint32Array(sent[1].values.slice().buffer),
  );
  return again;
}

/** Inputs of `step` (0 warm-up, 1 fault step) of these peers. */
export function inputsAt(
  peers: readonly ScenarioPeer[],
  step: 0 | 1,
): AllReduceInput[] {
  return peers.map((peer) => ({ vector: peer.sent[step], skip: false }));
}

/** How to run one scenario. */
export interface ScenarioOptions {
  readonly algorithm: AllReduceChoice;
  readonly peers: readonly ScenarioPeer[];
  /** The room's K, for `auto`. */
  readonly k: number;
  /** Decides each message's fate; installed before the warm-up step. */
  readonly hook?: (ring: RingSimulator) => FaultHook;
  /**
   * A peer that starts the fault step only once a message of that step
   * has reached it: fast peers talk before a slow one listens (case 11).
   */
  readonly lateStarter?: number;
  /** The fault step is aborted after this long (a peer's step deadline). */
  readonly deadlineMs: number;
}

/** What happened in a scenario. */
export interface ScenarioRun {
  readonly ring: RingSimulator;
  /** Each peer's outcome of the fault step. */
  readonly outcomes: PromiseSettledResult<AllReduceResult>[];
  /** Every message of the fault step as it reached the wire's far end. */
  readonly wire: WireEvent[];
  /** True when the deadline aborted the step. */
  readonly timedOut: boolean;
}

/**
 * Runs the warm-up step (which must complete) and the fault step on a
 * fresh simulated ring; moves every mailbox's floor past the fault step.
 * The caller closes the ring.
 */
export async function runScenario(
  options: ScenarioOptions,
): Promise<ScenarioRun> {
  const { algorithm, peers, k } = options;
  const P = peers.length;
  const ring = new RingSimulator({ peers: P });
  const wire: WireEvent[] = [];
  const fault = options.hook?.(ring);
  let opened: (() => void) | undefined;
  const opensLate = new Promise<void>((resolve) => (opened = resolve));
  ring.setFaultHook((event) => {
    const action = fault?.(event) ?? 'deliver';
    if (event.message.step === FAULT_STEP) {
      recordDelivery(wire, event, action);
      // Delivery with no latency is synchronous: once this turn ends, the
      // message sits in the late starter's mailbox.
      if (event.to === options.lateStarter) queueMicrotask(() => opened?.());
    }
    return action;
  });
  const planners = peers.map(() => new AutoPlanner());
  const optionsOf = (p: number) => ({ algorithm, planner: planners[p], k });

  const warmup = await settleSimulatedStep(ring, {
    generation: GENERATION,
    step: WARMUP_STEP,
    inputs: inputsAt(peers, 0),
    options: optionsOf,
  });
  for (const outcome of warmup) assert.equal(outcome.status, 'fulfilled');

  const controller = new AbortController();
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    controller.abort(topkError('ERR_RING_TIMEOUT', 'scenario deadline', {}));
  }, options.deadlineMs);
  const aborted = new Promise<void>((resolve) =>
    controller.signal.addEventListener('abort', () => resolve(), {
      once: true,
    }),
  );
  const inputs = inputsAt(peers, 1);
  try {
    const outcomes = await Promise.allSettled(
      ring.links.map(async (link, ringIndex) => {
        if (ringIndex === options.lateStarter) {
          await Promise.race([opensLate, aborted]);
        }
        try {
          return await allReduce(
            {
              room: 'sim',
              peerId: ring.peerId(ringIndex),
              generation: GENERATION,
              step: FAULT_STEP,
              ringIndex,
              peers: P,
              link,
              signal: controller.signal,
            },
            inputs[ringIndex],
            optionsOf(ringIndex),
          );
        } catch (error) {
          controller.abort(error);
          throw error;
        }
      }),
    );
    return { ring, outcomes, wire, timedOut };
  } finally {
    clearTimeout(deadline);
    ring.advanceFloor(GENERATION, FAULT_STEP + 1);
  }
}

function recordDelivery(
  wire: WireEvent[],
  event: WireEvent,
  action: FaultAction,
): void {
  if (action === 'drop') return;
  if (typeof action === 'object' && 'bytes' in action) {
    wire.push({ ...event, bytes: action.bytes });
  } else {
    wire.push(event);
  }
}

/** What a chunk-level fault may do to one message's chunks. */
export interface ChunkPlan {
  /** The chunks to deliver, in this order. */
  readonly chunks: Uint8Array[];
  /**
   * Runs after `chunks` were fed, before the outcome is decided (the
   * sender dies here, say); `late` chunks are fed after it.
   */
  readonly then?: () => void;
  readonly late?: Uint8Array[];
}

/** The framing layer between every pair of ring neighbours. */
export interface ChunkedWire {
  readonly hook: FaultHook;
  /** The receiving side of each peer, by ring index. */
  readonly reassemblers: readonly Reassembler[];
}

/**
 * Carries every message as chunks of at most `maxChunkBytes`: framed by
 * the sender, reassembled by the receiver (source = the sender's id), and
 * handed on only when whole. `plan` may change a message's chunks. A
 * chunk the reassembler refuses fails the receiver's link with that error,
 * as a data channel's fault does.
 */
export function chunkedWire(
  ring: RingSimulator,
  maxChunkBytes: number,
  plan?: (event: WireEvent, chunks: Uint8Array[]) => ChunkPlan | undefined,
): ChunkedWire {
  const framers = ring.links.map(() => new Framer({ maxChunkBytes }));
  const reassemblers = ring.links.map(() => new Reassembler());
  const hook: FaultHook = (event) => {
    const framed = framers[event.from].frame(event.bytes);
    const chunks = Array.from({ length: framed.chunkCount }, (_, i) =>
      framed.chunkAt(i),
    );
    const {
      chunks: first,
      then,
      late = [],
    } = plan?.(event, chunks) ?? {
      chunks,
    };
    const receiver = reassemblers[event.to];
    const source = ring.peerId(event.from);
    let whole: Uint8Array | undefined;
    const feed = (chunk: Uint8Array): void => {
      const result = receiver.accept(chunk, source);
      if (result.kind === 'message') whole = result.bytes;
    };
    try {
      first.forEach(feed);
      then?.();
      late.forEach(feed);
    } catch (error) {
      ring.links[event.to].mailbox.fail(
        isTopkError(error)
          ? error
          : topkError('ERR_INTERNAL', 'chunk refused', {}, error),
      );
      return 'drop';
    }
    return whole === undefined ? 'drop' : { bytes: whole };
  };
  return { hook, reassemblers };
}
