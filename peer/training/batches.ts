/**
 * Which samples a peer trains on at each step. Everything is a pure
 * function of (seed, generation, ring index, step), so every peer knows the
 * schedule of every other without a word exchanged, and a checkpoint needs
 * no generator state beyond those numbers.
 */
import { deriveSeed, Rng } from '../data/rng.ts';
import { shardFor } from '../data/shard.ts';

/** Where a peer's batches come from in one generation. */
export interface BatchPlanSpec {
  /** Training samples in the data set. */
  readonly datasetSize: number;
  /** Samples per peer per step. */
  readonly batchSize: number;
  /** The run's seed. */
  readonly seed: number;
  /** The ring membership. */
  readonly generation: number;
  /** This peer's position in the ring. */
  readonly ringIndex: number;
  /** P. */
  readonly peers: number;
}

/**
 * Steps in one epoch: one pass of the whole training set by all P peers
 * together, `floor(size / (P * batchSize))`, at least 1. The same on every
 * peer of a generation.
 */
export function stepsPerEpoch(
  datasetSize: number,
  peers: number,
  batchSize: number,
): number {
  return Math.max(1, Math.floor(datasetSize / (peers * batchSize)));
}

/** The batches of one peer in one generation. */
export class BatchPlan {
  readonly spec: BatchPlanSpec;
  /** This peer's shard, in its first-epoch order. */
  readonly shard: Uint32Array;
  readonly #order: Uint32Array;
  #orderEpoch = 0;

  constructor(spec: BatchPlanSpec) {
    this.spec = spec;
    this.shard = shardFor(spec);
    this.#order = this.shard.slice();
  }

  /**
   * The sample indices for the `position`-th step of this generation (0
   * for its first step). A shard smaller than a batch repeats samples;
   * an empty shard (more peers than samples) gives an empty batch.
   */
  batch(position: number): Uint32Array {
    const { batchSize, datasetSize, peers } = this.spec;
    const size = this.shard.length;
    if (size === 0) return new Uint32Array(0);
    const perEpoch = stepsPerEpoch(datasetSize, peers, batchSize);
    this.#shuffleFor(Math.floor(position / perEpoch));
    const start = (position % perEpoch) * batchSize;
    const out = new Uint32Array(batchSize);
    for (let i = 0; i < batchSize; i++)
      out[i] = this.#order[(start + i) % size];
    return out;
  }

  /** Reshuffles the shard for `epoch` (the first epoch keeps its order). */
  #shuffleFor(epoch: number): void {
    if (epoch === this.#orderEpoch) return;
    const { seed, generation, ringIndex } = this.spec;
    const order = this.#order;
    order.set(this.shard);
    if (epoch > 0) {
      const rng = new Rng(deriveSeed(seed, generation, ringIndex, epoch));
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.nextInt(i + 1);
        const held = order[i];
        order[i] = order[j];
        order[j] = held;
      }
    }
    this.#orderEpoch = epoch;
  }
}
