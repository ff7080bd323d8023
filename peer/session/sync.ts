/**
 * The generation handshake, run over the new ring's links before its first
 * step, so that every member starts the generation from the same step and
 * the same weights:
 *
 * 1. Every peer's hello (its next step, whether it is a newcomer without
 *    weights, its weights hash) travels the whole ring (P - 1 hops), so
 *    every peer learns every standing.
 * 2. Every peer computes the same plan from the same standings: the start
 *    step is the lowest step of the peers that hold weights. A peer one
 *    step ahead completed a step that others aborted; it takes that step
 *    back (Trainer.rollback). A peer further behind, or a newcomer, is
 *    treated as fresh and receives the weights.
 * 3. Each fresh peer receives a `state` from its previous peer, checks it
 *    by hash, and passes it on when its own next peer is fresh too.
 *
 * All peers fresh means a new run: everyone starts at step 0 from the
 * seeded initial weights, which are identical by construction.
 */
import { topkError } from '../../shared/errors.ts';
import type { MessageKey, RingLink } from '../../shared/link.ts';
import {
  PROTOCOL_VERSION,
  type EnvelopeFields,
  type HelloPayload,
  type PeerMessage,
  type StatePayload,
} from '../../shared/protocol.ts';

/**
 * Handshake messages use phases far above any all-reduce hop, so they can
 * never be taken for training messages of the same generation.
 */
export const HELLO_PHASE = 2 ** 30;
/** Phase of the `state` message to a fresh peer. */
export const STATE_PHASE = 2 ** 30 + 2 ** 20;
/** Phase base of the end-of-run barrier (a second round of hellos). */
export const DONE_PHASE = 2 ** 30 + 2 ** 21;

/** Where one peer stands at the start of a generation. */
export type Standing = HelloPayload;

/** Who does what before the generation's first step. */
export interface GenerationPlan {
  /** The step every member starts the generation from. */
  readonly startStep: number;
  /** Per ring index: must receive the weights. */
  readonly fresh: readonly boolean[];
  /** Per ring index: must take its last step back first. */
  readonly rollback: readonly boolean[];
  /**
   * The highest step a member that holds weights had completed, or
   * undefined when every member is a newcomer.
   */
  readonly newestHeld: number | undefined;
}

/** A peer's side of the handshake. */
export interface HandshakeContext {
  readonly room: string;
  readonly peerId: string;
  readonly generation: number;
  readonly ringIndex: number;
  readonly peers: number;
  readonly link: RingLink;
  readonly signal?: AbortSignal;
}

/**
 * Sends this peer's standing round the ring and collects everyone's, in
 * ring-index order (step 1). `phaseBase` tells apart the opening
 * handshake and the end-of-run barrier.
 */
export async function exchangeStandings(
  context: HandshakeContext,
  own: Omit<Standing, 'ringIndex'>,
  phaseBase = HELLO_PHASE,
): Promise<Standing[]> {
  const { peers, ringIndex } = context;
  const standings: Standing[] = new Array(peers);
  standings[ringIndex] = { ...own, ringIndex };
  let forward: Standing = standings[ringIndex];
  for (let hop = 0; hop < peers - 1; hop++) {
    await context.link.sendNext(
      message(context, 'hello', phaseBase + hop, forward.ringIndex, forward),
      context.signal,
    );
    const origin = (ringIndex - hop - 1 + peers) % peers;
    const received = await context.link.receivePrev(
      key(context, phaseBase + hop, origin),
      context.signal,
    );
    if (received.type !== 'hello' || received.payload.ringIndex !== origin) {
      throw topkError(
        'ERR_BAD_MESSAGE',
        `handshake: expected the hello of ring index ${origin}, got a ` +
          `${received.type}`,
        { origin, type: received.type, sender: received.sender },
      );
    }
    standings[origin] = received.payload;
    forward = received.payload;
  }
  return standings;
}

/**
 * Step 2: the same plan on every peer, from the same standings.
 *
 * The start step is the lowest step of the peers that hold weights (a
 * holder one step ahead completed a step others aborted, and takes it
 * back). Holders must also agree on the weights at that step: a ring that
 * split (the server lost some peers for a while) can have run the same
 * step twice with different members. The weights most holders have win,
 * ties going to the lowest ring index; every other holder is treated as
 * fresh and receives them, losing its residual but not the run.
 */
export function planGeneration(standings: readonly Standing[]): GenerationPlan {
  const holders = standings.filter((s) => !s.fresh);
  if (holders.length === 0) {
    return {
      startStep: 0,
      fresh: standings.map(() => false),
      rollback: standings.map(() => false),
      newestHeld: undefined,
    };
  }
  const newest = Math.max(...holders.map((s) => s.step));
  // The ring never lets a peer finish step t + 1 before every peer
  // finished step t, so a holder is at most one step ahead of another;
  // one further behind missed steps and gets the weights.
  const current = holders.filter((s) => s.step >= newest - 1);
  const startStep = Math.min(...current.map((s) => s.step));
  const hashAtStart = (s: Standing): string =>
    s.step === startStep ? s.modelHash : s.previousHash;
  const canonical = majorityHash(
    current.filter((s) => hashAtStart(s) !== ''),
    hashAtStart,
  );
  const keeps = (s: Standing): boolean =>
    !s.fresh &&
    s.step >= startStep &&
    s.step <= startStep + 1 &&
    hashAtStart(s) === canonical;
  return {
    startStep,
    fresh: standings.map((s) => !keeps(s)),
    rollback: standings.map((s) => keeps(s) && s.step === startStep + 1),
    newestHeld: newest,
  };
}

/** The hash most of `standings` have; ties to the lowest ring index. */
function majorityHash(
  standings: readonly Standing[],
  hashOf: (s: Standing) => string,
): string {
  const votes = new Map<string, { count: number; firstIndex: number }>();
  for (const s of standings) {
    const hash = hashOf(s);
    const vote = votes.get(hash) ?? { count: 0, firstIndex: s.ringIndex };
    vote.count++;
    vote.firstIndex = Math.min(vote.firstIndex, s.ringIndex);
    votes.set(hash, vote);
  }
  let best = '';
  let bestVote = { count: 0, firstIndex: Infinity };
  for (const [hash, vote] of votes) {
    if (
      vote.count > bestVote.count ||
      (vote.count === bestVote.count && vote.firstIndex < bestVote.firstIndex)
    ) {
      best = hash;
      bestVote = vote;
    }
  }
  return best;
}

/**
 * Step 3 for one peer: receive the weights when fresh, then pass them on
 * when the next peer is fresh. `exportState` and `importState` are the
 * trainer's.
 */
export async function transferState(
  context: HandshakeContext,
  plan: GenerationPlan,
  trainer: {
    exportState(): StatePayload;
    importState(state: StatePayload): void;
  },
): Promise<void> {
  const { ringIndex, peers } = context;
  if (plan.fresh[ringIndex]) {
    const received = await context.link.receivePrev(
      key(context, STATE_PHASE, 0),
      context.signal,
    );
    if (received.type !== 'state' || received.payload.step !== plan.startStep) {
      throw topkError(
        'ERR_BAD_MESSAGE',
        `handshake: expected the weights of step ${plan.startStep}`,
        { type: received.type, sender: received.sender },
      );
    }
    trainer.importState(received.payload);
  }
  if (plan.fresh[(ringIndex + 1) % peers]) {
    await context.link.sendNext(
      message(context, 'state', STATE_PHASE, 0, trainer.exportState()),
      context.signal,
    );
  }
}

function key(
  context: HandshakeContext,
  phase: number,
  segment: number,
): MessageKey {
  return { generation: context.generation, step: 0, phase, segment };
}

function message(
  context: HandshakeContext,
  type: 'hello',
  phase: number,
  segment: number,
  payload: HelloPayload,
): PeerMessage;
function message(
  context: HandshakeContext,
  type: 'state',
  phase: number,
  segment: number,
  payload: StatePayload,
): PeerMessage;
function message(
  context: HandshakeContext,
  type: 'hello' | 'state',
  phase: number,
  segment: number,
  payload: HelloPayload | StatePayload,
): PeerMessage {
  const envelope: EnvelopeFields = {
    v: PROTOCOL_VERSION,
    room: context.room,
    generation: context.generation,
    step: 0,
    phase,
    segment,
    sender: context.peerId,
  };
  return { ...envelope, type, payload } as PeerMessage;
}
