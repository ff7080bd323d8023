/**
 * The vocabulary of the ring all-reduce: what a peer brings to one step
 * (its context and its sparse vector), what it gets back (the sum), and the
 * algorithms it may use. Nothing here knows about a transport beyond the
 * {@link RingLink} interface.
 */
import type { RingLink } from '../link.ts';
import type { SparseVector } from '../sparse.ts';

/** The all-reduce algorithms that move bytes; see `docs/architecture.md`. */
export const ALL_REDUCE_ALGORITHMS = [
  'sparse-ring',
  'allgather',
  'dense',
] as const;

/** One of {@link ALL_REDUCE_ALGORITHMS}. */
export type AllReduceAlgorithm = (typeof ALL_REDUCE_ALGORITHMS)[number];

/** What a caller may ask for: an algorithm, or `auto` to pick per step. */
export type AllReduceChoice = AllReduceAlgorithm | 'auto';

/** Where one peer stands in one step of one ring membership. */
export interface RingContext {
  /** The room (training job); every message carries it. */
  readonly room: string;
  /** This peer's id, sent as the `sender` of every message. */
  readonly peerId: string;
  /** The ring membership; messages of another generation are never used. */
  readonly generation: number;
  /** The training step; messages of another step are never used. */
  readonly step: number;
  /** This peer's position in the ring, 0 to `peers - 1`. */
  readonly ringIndex: number;
  /** P, the number of peers in the ring. */
  readonly peers: number;
  /** The link to the next and the previous peer. */
  readonly link: RingLink;
  /** Aborts the step: the call rejects with `ERR_RING_ABORTED`. */
  readonly signal?: AbortSignal;
}

/** One peer's contribution to a step. */
export interface AllReduceInput {
  /** This peer's TopK selection; `vector.n` is the same on every peer. */
  readonly vector: SparseVector;
  /**
   * This peer's gradient was not finite. The flag travels with the step so
   * that every peer learns it and all skip together; a skipping peer's
   * vector is not sent (it may hold non-finite values).
   */
  readonly skip: boolean;
}

/**
 * A contiguous piece of the sum. `sparse` indices are relative to `offset`
 * and strictly increasing; `dense` holds one value per coordinate from
 * `offset` on. Parts of one result never overlap.
 */
export type ReducedPart =
  | {
      readonly kind: 'sparse';
      readonly offset: number;
      readonly indices: Uint32Array;
      readonly values: Float32Array;
    }
  | {
      readonly kind: 'dense';
      readonly offset: number;
      readonly values: Float32Array;
    };

/**
 * The SUM over all peers of their sparse vectors (not divided by P: the
 * caller divides, e.g. with `addScaledInto(model, result, -1 / P)`), the
 * same bits on every peer.
 */
export interface AllReduceResult {
  /** Length of the summed vector. */
  readonly n: number;
  /** The sum, in disjoint parts ordered by offset; empty when `skip`. */
  readonly parts: readonly ReducedPart[];
  /** The algorithm that ran (what `auto` chose). */
  readonly algorithm: AllReduceAlgorithm;
  /** Coordinates of the sum that are not zero; 0 when `skip`. */
  readonly unionSize: number;
  /** Some peer's gradient was not finite: every peer skips this step. */
  readonly skip: boolean;
  /** Wire bytes this peer's link sent during the call. */
  readonly bytesSent: number;
  /** Wire bytes this peer's link received during the call. */
  readonly bytesReceived: number;
}
