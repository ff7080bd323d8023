/**
 * Which training samples each ring position trains on. A seeded
 * permutation of all sample indices (seed and generation mixed) is cut
 * into `peers` contiguous parts whose sizes differ by at most one; ring
 * index p takes part p. Every peer computes every shard the same way, so
 * shards partition the set without a word exchanged, and a new generation
 * (membership change) deals a fresh hand. Runs in a browser.
 */
import { topkError } from '../../shared/errors.ts';
import { deriveSeed, Rng } from './rng.ts';

/** What decides a shard. */
export interface ShardSpec {
  /** Number of training samples to deal out. */
  readonly datasetSize: number;
  /** This peer's position in the ring, 0 .. peers - 1. */
  readonly ringIndex: number;
  /** Number of peers in the ring. */
  readonly peers: number;
  /** The ring membership the shard is for. */
  readonly generation: number;
  /** The run's data seed. */
  readonly seed: number;
}

/** Throws ERR_BAD_CONFIG when `value` is not an integer in [min, max]. */
function checkInteger(
  name: string,
  value: number,
  min: number,
  max: number,
): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `shard ${name} must be an integer in [${min}, ${max}], got ` +
        String(value),
      { [name]: value, min, max },
    );
  }
}

/** The first sample position of part `part` of `size` cut into `parts`. */
function partStart(size: number, parts: number, part: number): number {
  return Math.floor((part * size) / parts);
}

/**
 * The sample indices of the shard `spec.ringIndex`, in the permuted order
 * (a good first epoch order too). Every shard holds floor(size / peers) or
 * one more samples; with more peers than samples, some shards are empty.
 */
export function shardFor(spec: ShardSpec): Uint32Array {
  const { datasetSize, ringIndex, peers, generation, seed } = spec;
  checkInteger('datasetSize', datasetSize, 0, 2 ** 32 - 1);
  checkInteger('peers', peers, 1, 2 ** 16);
  checkInteger('ringIndex', ringIndex, 0, peers - 1);
  checkInteger('generation', generation, 0, Number.MAX_SAFE_INTEGER);
  checkInteger('seed', seed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);

  const permutation = new Rng(deriveSeed(seed, generation)).permutation(
    datasetSize,
  );
  return permutation.slice(
    partStart(datasetSize, peers, ringIndex),
    partStart(datasetSize, peers, ringIndex + 1),
  );
}
