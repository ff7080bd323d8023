/**
 * The enumeration of ring faults that test/unit/ring-faults.test.ts runs
 * against every algorithm and ring size: one row per fault, naming how the
 * simulator's hooks inject it and what must happen.
 *
 * fault: injected by -> expected
 *
 * - peer dies before sending: killed at its first send, the message lost
 *   -> ERR_PEER_GONE
 * - peer dies after the first reduce-scatter hop (case 10): killed at its
 *   second send -> ERR_PEER_GONE
 * - peer dies in the middle of a chunked message: half the chunks fed,
 *   then killed and dropped by the receiver, the rest fed late
 *   -> ERR_PEER_GONE, the partial message never completes
 * - link delayed: delayMs 1-3 on the victim's messages -> complete
 * - every link jittered: delayMs 0-3 on every message -> complete
 * - message duplicated: 'duplicate' -> complete, or ERR_BAD_MESSAGE
 * - chunk duplicated: a chunk repeated inside its message
 *   -> ERR_BAD_MESSAGE
 * - messages reordered: 'reorder' (the first after the second) -> complete
 * - chunks reordered: every message's chunks shuffled -> complete
 * - message from an old generation: a generation-0 copy with values x1000
 *   put first -> complete, never summed
 * - message from the future step: the receiver starts the step late
 *   -> complete (the message is kept for its step)
 * - lying peer, wrong segment length: bytes replaced -> ERR_BAD_MESSAGE
 * - lying peer, index outside its segment: bytes replaced
 *   -> ERR_BAD_MESSAGE
 * - lying peer, wrong origin: bytes replaced -> ERR_BAD_MESSAGE (the
 *   mailbox holds one message per phase)
 * - lying peer, NaN smuggled in the bytes: bytes replaced
 *   -> ERR_BAD_MESSAGE
 *
 * A failed step is redone by the survivors in the next generation.
 */
import assert from 'node:assert/strict';

import type { AllReduceAlgorithm } from '../../shared/allreduce/index.ts';
import { decodeMessage, encodeMessage } from '../../shared/codec.ts';
import type { ErrorCode } from '../../shared/errors.ts';
import { PEER_MESSAGE_TYPES, type PeerMessage } from '../../shared/protocol.ts';
import type {
  FaultAction,
  FaultHook,
  RingSimulator,
  WireEvent,
} from '../../shared/simulator.ts';
import { rawPackr } from './message-arbitraries.ts';
import { chunkedWire, FAULT_STEP, GENERATION } from './ring-scenario.ts';

/** Chunks of 8 payload bytes: every message is several chunks. */
const TINY_CHUNK_BYTES = 32;

/** Where a scenario runs. */
export interface FaultContext {
  readonly peers: number;
  /** The algorithm that runs at the fault step (what `auto` picks). */
  readonly algorithm: AllReduceAlgorithm;
  readonly victim: number;
  readonly next: number;
  /** Problems a hook noticed (a hook must not throw into the ring). */
  readonly notes: string[];
}

/** What must happen. */
export type Expectation =
  /** Every peer completes, with the bits of a run without the fault. */
  | { readonly outcome: 'complete' }
  /** The victim's next peer fails with `code`; the step is redone. */
  | { readonly outcome: 'fail'; readonly code: ErrorCode }
  /** Either of the two; the code says which failure is allowed. */
  | { readonly outcome: 'complete-or-fail'; readonly code: ErrorCode }
  /** The step cannot end: the deadline aborts it; it is redone. */
  | { readonly outcome: 'stall' };

/** How a fault is injected with the simulator's hooks. */
export interface Injection {
  /** The fault hook (given the ring, for kills and direct deliveries). */
  readonly hook?: (ctx: FaultContext) => (ring: RingSimulator) => FaultHook;
  /** A peer that starts the fault step late. */
  readonly lateStarter?: (ctx: FaultContext) => number;
}

/** One row of the enumeration. */
export interface Fault {
  readonly name: string;
  readonly inject: Injection;
  readonly expect: Expectation;
  /** Why the fault cannot happen in this context, if it cannot. */
  readonly notApplicable?: (ctx: FaultContext) => string | undefined;
}

/** Messages one peer sends in one step of `algorithm`. */
export function sendsPerStep(
  algorithm: AllReduceAlgorithm,
  peers: number,
): number {
  return algorithm === 'allgather' ? peers - 1 : 2 * (peers - 1);
}

const needsTwoSends = (ctx: FaultContext): string | undefined =>
  sendsPerStep(ctx.algorithm, ctx.peers) < 2
    ? `the victim sends one message per step with ${ctx.algorithm} on ${ctx.peers} peers`
    : undefined;

/**
 * A hook that applies `act` to the victim's `nth` message of the fault
 * step (0-based) that satisfies `accept`, and delivers everything else.
 */
function onVictimSend(
  ctx: FaultContext,
  nth: number,
  act: (event: WireEvent, ring: RingSimulator) => FaultAction,
  accept: (message: PeerMessage) => boolean = () => true,
): (ring: RingSimulator) => FaultHook {
  return (ring) => {
    let seen = 0;
    return (event) => {
      const { message } = event;
      if (event.from !== ctx.victim || message.step !== FAULT_STEP)
        return undefined;
      if (!accept(message)) return undefined;
      return seen++ === nth ? act(event, ring) : undefined;
    };
  };
}

/** The victim crashes as it sends: the message is lost with it. */
const die = (ctx: FaultContext) => (_event: WireEvent, ring: RingSimulator) => {
  ring.kill(ctx.victim);
  return 'drop' as const;
};

/** `message` re-encoded with a changed payload or envelope. */
function forge(message: PeerMessage, change: Partial<PeerMessage>): Uint8Array {
  return encodeMessage({ ...message, ...change } as PeerMessage);
}

function valuesOf(message: PeerMessage): Float32Array | undefined {
  if (message.type === 'sparse' || message.type === 'dense')
    return message.payload.values;
  return undefined;
}

/** A slice message whose payload claims one coordinate more. */
function longerSlice(message: PeerMessage): Uint8Array {
  if (message.type === 'dense') {
    const values = new Float32Array(message.payload.values.length + 1);
    values.set(message.payload.values);
    return forge(message, { payload: { ...message.payload, values } });
  }
  assert.equal(message.type, 'sparse');
  return forge(message, {
    payload: { ...message.payload, length: message.payload.length + 1 },
  } as Partial<PeerMessage>);
}

/** Raw bytes of a sparse slice whose one index is its length (outside). */
function indexOutside(message: PeerMessage): Uint8Array {
  const length =
    message.type === 'dense'
      ? message.payload.values.length
      : message.type === 'sparse'
        ? message.payload.length
        : 0;
  const { v, room, generation, step, phase, segment, sender } = message;
  return rawPackr.pack([
    v,
    PEER_MESSAGE_TYPES.indexOf('sparse'),
    room,
    generation,
    step,
    phase,
    segment,
    sender,
    [length, Uint32Array.of(length), Float32Array.of(1), false],
  ]);
}

/** The same message with its first value replaced by NaN, in the bytes. */
function withNaN(message: PeerMessage): Uint8Array {
  const values = (valuesOf(message) ?? new Float32Array(0)).slice();
  values[0] = Number.NaN;
  return forge(message, {
    payload: { ...message.payload, values },
  } as Partial<PeerMessage>);
}

/** A chunked wire whose victim's `nth` fault-step message gets `plan`. */
function chunkFault(
  ctx: FaultContext,
  nth: number,
  plan: (
    chunks: Uint8Array[],
    ring: RingSimulator,
    wire: ReturnType<typeof chunkedWire>,
  ) => {
    chunks: Uint8Array[];
    then?: () => void;
    late?: Uint8Array[];
  },
): (ring: RingSimulator) => FaultHook {
  return (ring) => {
    let seen = 0;
    const wire = chunkedWire(ring, TINY_CHUNK_BYTES, (event, chunks) => {
      if (event.from !== ctx.victim || event.message.step !== FAULT_STEP)
        return undefined;
      if (seen++ !== nth) return undefined;
      return plan(chunks, ring, wire);
    });
    return wire.hook;
  };
}

/** A deterministic shuffle. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let x = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** The enumeration of faults. */
export const FAULTS: Fault[] = [
  {
    name: 'peer dies before sending',
    inject: { hook: (ctx) => onVictimSend(ctx, 0, die(ctx)) },
    expect: { outcome: 'fail', code: 'ERR_PEER_GONE' },
  },
  {
    // Case 10 (with P = 4).
    name: 'peer dies after the first reduce-scatter hop',
    inject: { hook: (ctx) => onVictimSend(ctx, 1, die(ctx)) },
    expect: { outcome: 'fail', code: 'ERR_PEER_GONE' },
    notApplicable: needsTwoSends,
  },
  {
    // Half the chunks of its second message are out when it dies; the
    // receiver drops the partial message; chunks still in the dead
    // sender's buffers that arrive afterwards complete nothing.
    name: 'peer dies in the middle of a chunked message',
    inject: {
      hook: (ctx) =>
        chunkFault(
          ctx,
          Math.min(1, sendsPerStep(ctx.algorithm, ctx.peers) - 1),
          (chunks, ring, wire) => {
            const half = Math.ceil(chunks.length / 2);
            return {
              chunks: chunks.slice(0, half),
              then: () => {
                ring.kill(ctx.victim);
                const dropped = wire.reassemblers[ctx.next].dropSource(
                  ring.peerId(ctx.victim),
                );
                if (dropped !== 1)
                  ctx.notes.push(`dropped ${dropped} partial messages, not 1`);
              },
              late: chunks.slice(half),
            };
          },
        ),
    },
    expect: { outcome: 'fail', code: 'ERR_PEER_GONE' },
  },
  {
    name: 'link delayed',
    inject: {
      hook: (ctx) => () => {
        let count = 0;
        return (event) =>
          event.from === ctx.victim
            ? { delayMs: 1 + (count++ % 3) }
            : undefined;
      },
    },
    expect: { outcome: 'complete' },
  },
  {
    // Every link delayed by a different amount: messages reach their
    // receivers in any order; the mailbox keys put them in place.
    name: 'every link jittered',
    inject: {
      hook: () => () => {
        let x = 7;
        return (event) => {
          if (event.message.step !== FAULT_STEP) return undefined;
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          return { delayMs: x % 4 };
        };
      },
    },
    expect: { outcome: 'complete' },
  },
  {
    // The copy lands in the mailbox at once: if the receiver already
    // waits, the first copy is taken and the second is held, then dropped
    // with its step; otherwise the second is refused as a duplicate and
    // the receiver's link fails.
    name: 'message duplicated',
    inject: { hook: (ctx) => onVictimSend(ctx, 0, () => 'duplicate') },
    expect: { outcome: 'complete-or-fail', code: 'ERR_BAD_MESSAGE' },
  },
  {
    name: 'chunk duplicated',
    inject: {
      hook: (ctx) =>
        chunkFault(ctx, 0, (chunks) => ({
          chunks: [chunks[0], ...chunks],
        })),
    },
    expect: { outcome: 'fail', code: 'ERR_BAD_MESSAGE' },
  },
  {
    // The victim's first message arrives after its second.
    name: 'messages reordered',
    inject: { hook: (ctx) => onVictimSend(ctx, 0, () => 'reorder') },
    expect: { outcome: 'complete' },
    notApplicable: needsTwoSends,
  },
  {
    name: 'chunks reordered',
    inject: {
      hook: () => (ring) => {
        let seed = 1;
        return chunkedWire(ring, TINY_CHUNK_BYTES, (event, chunks) =>
          event.message.step === FAULT_STEP
            ? { chunks: shuffled(chunks, seed++) }
            : undefined,
        ).hook;
      },
    },
    expect: { outcome: 'complete' },
  },
  {
    // A copy from generation 0 with values 1000 times larger reaches the
    // receiver just before the real one; it must never be summed.
    name: 'message from an old generation',
    inject: {
      hook: (ctx) =>
        onVictimSend(ctx, 0, (event, ring) => {
          const { message } = event;
          const values = (valuesOf(message) ?? new Float32Array(0)).map(
            (v) => 1000 * v + 1,
          );
          const old = forge(message, {
            generation: GENERATION - 1,
            payload: { ...message.payload, values },
          } as Partial<PeerMessage>);
          const mailbox = ring.links[event.to].mailbox;
          const held = mailbox.pendingCount;
          mailbox.put(decodeMessage(old));
          if (mailbox.pendingCount !== held)
            ctx.notes.push('an old-generation message was held');
          return 'deliver';
        }),
    },
    expect: { outcome: 'complete' },
  },
  {
    // The victim's next peer starts the step only once a message of it
    // has arrived: the message is kept for its step (case 11).
    name: 'message from the future step',
    inject: { lateStarter: (ctx) => ctx.next },
    expect: { outcome: 'complete' },
  },
  {
    name: 'lying peer: wrong segment length',
    inject: {
      hook: (ctx) =>
        onVictimSend(ctx, 0, (event) => ({
          bytes: longerSlice(event.message),
        })),
    },
    expect: { outcome: 'fail', code: 'ERR_BAD_MESSAGE' },
  },
  {
    name: 'lying peer: index outside its segment',
    inject: {
      hook: (ctx) =>
        onVictimSend(ctx, 0, (event) => ({
          bytes: indexOutside(event.message),
        })),
    },
    expect: { outcome: 'fail', code: 'ERR_BAD_MESSAGE' },
  },
  {
    // A message under another segment (allgather: origin) of the same
    // hop: the mailbox holds one message per (generation, step, phase)
    // and refuses the other segment at once.
    name: 'lying peer: wrong origin',
    inject: {
      hook: (ctx) =>
        onVictimSend(ctx, 0, (event) => ({
          bytes: forge(event.message, {
            segment: (event.message.segment + 1) % ctx.peers,
          }),
        })),
    },
    expect: { outcome: 'fail', code: 'ERR_BAD_MESSAGE' },
  },
  {
    name: 'lying peer: NaN smuggled in the bytes',
    inject: {
      hook: (ctx) =>
        onVictimSend(
          ctx,
          0,
          (event) => ({ bytes: withNaN(event.message) }),
          (message) => (valuesOf(message)?.length ?? 0) > 0,
        ),
    },
    expect: { outcome: 'fail', code: 'ERR_BAD_MESSAGE' },
  },
];
