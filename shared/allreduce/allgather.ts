/**
 * The allgather all-reduce (Algorithm 1's broadcast, over a ring): every
 * peer's whole sparse vector travels P-1 hops, and every peer sums all P
 * vectors itself.
 *
 * Peer r (of P). Steps:
 *
 * 1. Hops h = 0 .. P-2: peer r sends vector r-h (its own at h = 0, in its
 *    wire form; afterwards the one it just received, unchanged) and
 *    receives vector r-1-h, whose origin ring index is the message's
 *    `segment` field.
 * 2. Every peer adds the P vectors in ring-index order 0, 1, ..., P-1
 *    with float32 rounding after each addition. Every peer holds the same
 *    P vectors (its own in the form it sent), so every peer gets the same
 *    bits.
 */
import { ringMod } from './layout.ts';
import type { RingSession } from './session.ts';
import { sumInOrder, wireForm, type SliceValue } from './slice-sum.ts';
import { toPart } from './sparse-ring.ts';
import type { ReducedPart } from './types.ts';
import type { SparseVector } from '../sparse.ts';

/** Runs the allgather all-reduce for `session`; returns the sum's parts. */
export async function allgatherRing(
  session: RingSession,
  vector: SparseVector,
): Promise<ReducedPart[]> {
  const { ringIndex: r, peers: P } = session.context;
  const n = vector.n;
  const gathered = new Array<SliceValue>(P);
  gathered[r] = session.skip
    ? {
        kind: 'sparse',
        indices: new Uint32Array(0),
        values: new Float32Array(0),
      }
    : wireForm(
        { kind: 'sparse', indices: vector.indices, values: vector.values },
        n,
        false,
      );

  // 1. Pass every vector around the ring.
  let forward = gathered[r];
  for (let h = 0; h <= P - 2; h++) {
    const origin = ringMod(r - 1 - h, P);
    const received = await session.exchange(
      h,
      { segment: ringMod(r - h, P), length: n, value: forward },
      { segment: origin, length: n, hop: `hop ${h} origin ${origin}` },
    );
    forward = received.value;
    gathered[origin] = received.value;
  }

  // 2. Sum in ring-index order.
  return [toPart(sumInOrder(gathered, n), 0)];
}
