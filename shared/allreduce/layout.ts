/**
 * Where things are in one all-reduce: the segment boundaries of the index
 * space, which segment a ring index touches at each hop, and how a hop is
 * numbered on the wire.
 *
 * Message numbering (the envelope's `phase` and `segment`):
 *
 *   phase = 3 * hop + code(algorithm),  code: sparse-ring 0, allgather 1,
 *                                              dense 2
 *
 *   | algorithm    | hops                          | `segment` field     |
 *   | ------------ | ----------------------------- | ------------------- |
 *   | sparse-ring, | reduce-scatter hop h: h       | the segment index   |
 *   | dense        | allgather hop h: P - 1 + h    | (0 .. P-1)          |
 *   | allgather    | hop h: h                      | origin ring index   |
 *
 * with h = 0 .. P-2. The algorithm is part of the key so that two peers
 * that disagree on the algorithm can never take each other's messages for
 * their own: a disagreement stalls (and times out) instead of summing
 * wrong numbers.
 */
import type { MessageKey } from '../link.ts';
import type { SparseVector } from '../sparse.ts';
import type { AllReduceAlgorithm, RingContext } from './types.ts';

const ALGORITHM_CODES: Readonly<Record<AllReduceAlgorithm, number>> = {
  'sparse-ring': 0,
  allgather: 1,
  dense: 2,
};

/** The envelope `phase` of `hop` of `algorithm` (see the module comment). */
export function phaseOf(algorithm: AllReduceAlgorithm, hop: number): number {
  return 3 * hop + ALGORITHM_CODES[algorithm];
}

/** The key of `hop`/`segment` of `algorithm` in the step of `context`. */
export function hopKey(
  context: RingContext,
  algorithm: AllReduceAlgorithm,
  hop: number,
  segment: number,
): MessageKey {
  return {
    generation: context.generation,
    step: context.step,
    phase: phaseOf(algorithm, hop),
    segment,
  };
}

/** `value` modulo `peers`, always in 0 .. peers-1. */
export function ringMod(value: number, peers: number): number {
  return ((value % peers) + peers) % peers;
}

/**
 * First coordinate of `segment` when `n` coordinates are split over
 * `peers` segments; `segmentStart(peers, ...)` is `n`. Lengths differ by
 * at most one, and with n < peers some segments are empty (case 12).
 * Integer arithmetic only, so every peer computes the same boundaries.
 */
export function segmentStart(
  segment: number,
  n: number,
  peers: number,
): number {
  return Math.floor((segment * n) / peers);
}

/** Number of coordinates in `segment`. */
export function segmentLength(
  segment: number,
  n: number,
  peers: number,
): number {
  return segmentStart(segment + 1, n, peers) - segmentStart(segment, n, peers);
}

/** A run of entries of a sparse vector, re-based to its segment's start. */
export interface SegmentSlice {
  readonly offset: number;
  readonly length: number;
  readonly indices: Uint32Array;
  readonly values: Float32Array;
}

/**
 * Cuts `vector` into `peers` slices along the segment boundaries, each with
 * indices relative to its segment's start. One pass over the indices.
 */
export function sliceBySegment(
  vector: SparseVector,
  peers: number,
): SegmentSlice[] {
  const { n, indices, values } = vector;
  const slices: SegmentSlice[] = [];
  let from = 0;
  for (let segment = 0; segment < peers; segment++) {
    const offset = segmentStart(segment, n, peers);
    const end = segmentStart(segment + 1, n, peers);
    let to = from;
    while (to < indices.length && indices[to] < end) to++;
    const relative = new Uint32Array(to - from);
    for (let i = from; i < to; i++) relative[i - from] = indices[i] - offset;
    slices.push({
      offset,
      length: end - offset,
      indices: relative,
      values: values.slice(from, to),
    });
    from = to;
  }
  return slices;
}
