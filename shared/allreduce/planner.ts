/**
 * `auto`: the choice, per step, between `sparse-ring` and `allgather`,
 * whichever is predicted to send fewer bytes per peer.
 *
 * Every peer must choose the same, or the ring stalls (the algorithm is
 * part of every message key, so a disagreement never mixes sums). The
 * choice is therefore a pure function of values every peer shares: n, P,
 * the room's K, and the union size of the previous step of the same
 * generation, which is identical on every peer because the results are.
 * Only +, -, *, / and comparisons are used (no Math.log), so every
 * JavaScript engine computes the same prediction.
 *
 * Cost model, in bytes sent by one peer (all peers send alike):
 *
 * - A slice of c entries over L coordinates costs
 *   `min(c * (4 + w), 4 * L)`: 4-byte values plus gap-encoded indices of
 *   w = 1, 2 or 4 bytes, or the dense form when smaller. w is the width of
 *   the largest gap, estimated as 8 average gaps (the largest of c random
 *   gaps is about ln(c) average gaps; 8 covers c up to ~3000).
 * - `allgather`: P-1 hops of one peer's K entries over n coordinates.
 * - `sparse-ring`: the union U is modelled as S indices shared by all peers
 *   plus K-S private ones per peer, so S = (P*K - U)/(P-1), and m peers'
 *   entries cover U_m = S + m*(K-S). Reduce-scatter hop h carries U_(h+1)/P
 *   entries over n/P coordinates; each of the P-1 allgather hops carries
 *   U/P of them.
 * - Every message adds the codec's envelope estimate.
 *
 * No overlap (U = P*K) favours `allgather` (reduce-scatter is pure
 * overhead there); heavy overlap favours `sparse-ring`, whose traffic
 * follows U rather than P*K.
 *
 * The first step of a generation has no previous union size and runs
 * `sparse-ring`: its worst case (no overlap at all) costs at most about
 * 1.5x `allgather`, while `allgather`'s worst case (full overlap) costs
 * about P/2 times `sparse-ring`.
 *
 * A step that completes on some peers and fails on others leaves their
 * planners apart; such a step is always redone in a new generation (the
 * session's handshake takes it back where it completed), and the first
 * step of a generation ignores the planner's history.
 */
import { ENVELOPE_OVERHEAD_BYTES } from '../codec.ts';
import type { AllReduceAlgorithm, AllReduceResult } from './types.ts';

/** What the prediction depends on, identical on every peer of a step. */
export interface StepShape {
  /** Length of the vectors. */
  readonly n: number;
  /** P. */
  readonly peers: number;
  /** Entries each peer's TopK keeps (the room's K, not a local count). */
  readonly k: number;
}

/** Predicted payload bytes of `count` entries spread over `length`. */
export function predictSliceBytes(count: number, length: number): number {
  if (count <= 0 || length <= 0) return 0;
  const largestGap = (8 * length) / count;
  const indexBytes = largestGap < 0x100 ? 1 : largestGap < 0x10000 ? 2 : 4;
  return Math.min(count * (4 + indexBytes), 4 * length);
}

/**
 * Predicted wire bytes one peer sends in a step of `algorithm`, given the
 * step's union size `unionSize` (see the module comment).
 */
export function predictBytes(
  algorithm: 'sparse-ring' | 'allgather',
  shape: StepShape,
  unionSize: number,
): number {
  const { n, peers: P } = shape;
  if (P <= 1) return 0;
  const k = Math.min(shape.k, n);
  if (algorithm === 'allgather') {
    return (P - 1) * (predictSliceBytes(k, n) + ENVELOPE_OVERHEAD_BYTES);
  }
  const union = Math.min(Math.max(unionSize, k), Math.min(n, P * k));
  const shared = (P * k - union) / (P - 1);
  const segment = n / P;
  let bytes = 0;
  for (let m = 1; m <= P - 1; m++) {
    const covered = Math.min(n, shared + m * (k - shared));
    bytes += predictSliceBytes(covered / P, segment) + ENVELOPE_OVERHEAD_BYTES;
  }
  bytes +=
    (P - 1) * (predictSliceBytes(union / P, segment) + ENVELOPE_OVERHEAD_BYTES);
  return bytes;
}

/**
 * Keeps what `auto` needs from one step to the next. Each peer holds one
 * and records every completed step in it. A step that completes on some
 * peers but fails on others must be followed by a new generation (as a
 * membership change is), since the planner trusts only the step just
 * before, of the same generation.
 */
export class AutoPlanner {
  #last: { generation: number; step: number; unionSize: number } | undefined;

  /** The algorithm for `step` of `generation`. */
  choose(
    generation: number,
    step: number,
    shape: StepShape,
  ): AllReduceAlgorithm {
    const last = this.#last;
    if (
      last === undefined ||
      last.generation !== generation ||
      last.step !== step - 1
    ) {
      return 'sparse-ring';
    }
    const ring = predictBytes('sparse-ring', shape, last.unionSize);
    const gather = predictBytes('allgather', shape, last.unionSize);
    return gather < ring ? 'allgather' : 'sparse-ring';
  }

  /**
   * Records the completed `step`. A skipped step's sum is empty and says
   * nothing about the union, so it passes the previous one on.
   */
  record(generation: number, step: number, result: AllReduceResult): void {
    const last = this.#last;
    if (!result.skip) {
      this.#last = { generation, step, unionSize: result.unionSize };
    } else if (
      last !== undefined &&
      last.generation === generation &&
      last.step === step - 1
    ) {
      this.#last = { generation, step, unionSize: last.unionSize };
    } else {
      this.#last = undefined;
    }
  }
}
