/**
 * A browser tab's data set: the geometry from the server, a slice of the
 * test set for evaluation, and only this tab's training shard, downloaded
 * again whenever a new generation deals new shards.
 *
 * The Trainer picks batches through BatchPlan from `shardFor(...)` of the
 * whole training set, so the tab's training split has the whole set's
 * size but holds only its shard's samples; a request for any other sample
 * is a bug and throws. The shard the server sends is checked against the
 * one this tab computes itself from the server's training-set size, so a
 * server dealing shards another way is caught before the first step.
 *
 * The training-set size is the room's (`trainSamples`), which the server's
 * data routes cut too.
 */
import { topkError } from '../../shared/errors.ts';
import type { Batch, DataSplit, Dataset, Task } from '../data/dataset.ts';
import { shardFor } from '../data/shard.ts';
import {
  decodeSampleBlock,
  type DatasetInfo,
  type SampleBlock,
} from './data-format.ts';

/** Where a shard belongs: the placement the Trainer's BatchPlan uses. */
export interface ShardKey {
  readonly generation: number;
  readonly ringIndex: number;
  readonly peers: number;
}

/** Samples held in memory, looked up by their index in their split. */
export class HeldSplit implements DataSplit {
  /** Samples in the whole split (more than held, for a shard). */
  readonly size: number;
  readonly #featureSize: number;
  readonly #targetWidth: number;
  #block: SampleBlock | undefined;
  readonly #rows = new Map<number, number>();

  constructor(size: number, featureSize: number, targetWidth: number) {
    this.size = size;
    this.#featureSize = featureSize;
    this.#targetWidth = targetWidth;
  }

  /** Samples held now. */
  get heldCount(): number {
    return this.#rows.size;
  }

  /** Replaces the samples held by `block`'s. */
  hold(block: SampleBlock): void {
    if (
      block.featureSize !== this.#featureSize ||
      block.targetWidth !== this.#targetWidth
    ) {
      throw topkError(
        'ERR_MISMATCH',
        `expected samples of ${this.#featureSize} features and ` +
          `${this.#targetWidth} targets, the server sent ` +
          `${block.featureSize} and ${block.targetWidth}`,
        { featureSize: block.featureSize, targetWidth: block.targetWidth },
      );
    }
    this.#rows.clear();
    block.indices.forEach((index, row) => this.#rows.set(index, row));
    this.#block = block;
  }

  /**
   * {@inheritDoc DataSplit.gather}. Throws `ERR_INTERNAL` for a sample
   * this tab does not hold (outside its shard).
   */
  gather(indices: ArrayLike<number>): Batch {
    const f = this.#featureSize;
    const t = this.#targetWidth;
    const x = new Float32Array(indices.length * f);
    const y = new Float32Array(indices.length * t);
    for (let i = 0; i < indices.length; i++) {
      const row = this.#rows.get(indices[i]);
      if (row === undefined || this.#block === undefined) {
        throw topkError(
          'ERR_INTERNAL',
          `sample ${indices[i]} was asked for, but this tab holds only ` +
            `${this.#rows.size} samples of its shard`,
          { index: indices[i], held: this.#rows.size },
        );
      }
      x.set(this.#block.x.subarray(row * f, (row + 1) * f), i * f);
      y.set(this.#block.y.subarray(row * t, (row + 1) * t), i * t);
    }
    return { size: indices.length, x, y };
  }
}

/** A {@link Dataset} whose samples come from the signaling server. */
export class RemoteDataset implements Dataset {
  readonly name: string;
  readonly task: Task;
  readonly featureShape: readonly number[];
  readonly targetWidth: number;
  readonly classNames?: readonly string[];
  readonly train: HeldSplit;
  readonly test: HeldSplit;
  readonly #info: DatasetInfo;
  readonly #baseUrl: string;
  readonly #seed: number;
  #shard: ShardKey | undefined;
  /** Compressed bytes downloaded so far, where the browser tells. */
  bytesDownloaded = 0;

  private constructor(
    baseUrl: string,
    info: DatasetInfo,
    seed: number,
    test: SampleBlock,
  ) {
    this.#info = info;
    this.#baseUrl = baseUrl;
    this.#seed = seed;
    this.name = info.dataset;
    this.task = info.task;
    this.featureShape = info.featureShape;
    this.targetWidth = info.targetWidth;
    if (info.classNames !== undefined) this.classNames = info.classNames;
    const features = info.featureShape.reduce((a, b) => a * b, 1);
    this.train = new HeldSplit(info.trainSize, features, info.targetWidth);
    this.test = new HeldSplit(test.indices.length, features, info.targetWidth);
    this.test.hold(test);
  }

  /**
   * Learns the room's data set from the server at `baseUrl` and downloads
   * the first `testSamples` test samples. Rejects with `ERR_MISMATCH` when
   * the server serves another data set than the room's `dataset`.
   */
  static async open(options: {
    baseUrl: string;
    room: string;
    dataset: string;
    seed: number;
    testSamples: number;
  }): Promise<RemoteDataset> {
    const { baseUrl, room } = options;
    const info = (await fetchOk(
      dataUrl(baseUrl, room, ''),
      'json',
    )) as DatasetInfo;
    if (info.dataset !== options.dataset) {
      throw topkError(
        'ERR_MISMATCH',
        `room ${room} trains on ${options.dataset}, the server's data ` +
          `route serves ${info.dataset}`,
        { expected: options.dataset, received: info.dataset },
      );
    }
    const limit = Math.min(options.testSamples, info.testSize);
    const test = await download(baseUrl, room, `/test?limit=${limit}`);
    const dataset = new RemoteDataset(baseUrl, info, options.seed, test.block);
    dataset.bytesDownloaded = test.bytes;
    return dataset;
  }

  /** The shard held now, if any. */
  get shard(): ShardKey | undefined {
    return this.#shard;
  }

  /**
   * Makes the training split hold the shard of `key`, downloading it
   * unless it is already held. Rejects with `ERR_MISMATCH` when the
   * server's shard is not the one this tab computes for `key`.
   */
  async holdShard(key: ShardKey): Promise<void> {
    const held = this.#shard;
    if (
      held !== undefined &&
      held.generation === key.generation &&
      held.ringIndex === key.ringIndex &&
      held.peers === key.peers
    ) {
      return;
    }
    const { block, bytes } = await download(
      this.#baseUrl,
      this.#info.room,
      `/train?generation=${key.generation}&ringIndex=${key.ringIndex}` +
        `&peers=${key.peers}`,
    );
    this.bytesDownloaded += bytes;
    const expected = shardFor({
      datasetSize: this.#info.trainSize,
      seed: this.#seed,
      ...key,
    });
    const same =
      expected.length === block.indices.length &&
      expected.every((index, i) => index === block.indices[i]);
    if (!same) {
      throw topkError(
        'ERR_MISMATCH',
        `the server's shard ${key.ringIndex} of ${key.peers} (generation ` +
          `${key.generation}) is not the one this tab deals itself: ` +
          `${block.indices.length} samples, expected ${expected.length}`,
        { ...key, received: block.indices.length, expected: expected.length },
      );
    }
    this.train.hold(block);
    this.#shard = key;
  }
}

/** Downloads a sample block; `bytes` is what crossed the wire. */
async function download(
  baseUrl: string,
  room: string,
  path: string,
): Promise<{ block: SampleBlock; bytes: number }> {
  const url = dataUrl(baseUrl, room, path);
  const body = (await fetchOk(url, 'bytes')) as Uint8Array;
  return {
    block: decodeSampleBlock(body),
    bytes: transferSize(url) ?? body.byteLength,
  };
}

function dataUrl(baseUrl: string, room: string, path: string): string {
  return `${baseUrl}/api/data/${encodeURIComponent(room)}${path}`;
}

/**
 * GETs `url`; rejects with `ERR_UNREACHABLE` when the server cannot be
 * reached, or with the server's own error code and message.
 */
async function fetchOk(url: string, as: 'json' | 'bytes'): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { cache: 'no-store' });
  } catch (error) {
    throw topkError(
      'ERR_UNREACHABLE',
      `GET ${url} failed: ${String(error)}`,
      { url },
      error,
    );
  }
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as {
      error?: { code?: string; message?: string };
    };
    const code = body.error?.code;
    throw topkError(
      code === 'ERR_UNKNOWN_NAME' ||
        code === 'ERR_MISSING_DEPENDENCY' ||
        code === 'ERR_BAD_CONFIG'
        ? code
        : 'ERR_UNREACHABLE',
      `GET ${url}: ${response.status} ${body.error?.message ?? ''}`.trim(),
      { url, status: response.status },
    );
  }
  return as === 'json'
    ? response.json()
    : new Uint8Array(await response.arrayBuffer());
}

/** Bytes on the wire for `url`'s last fetch (compressed), if known. */
function transferSize(url: string): number | undefined {
  // Resource timing exists in browsers only (tests run this in Node).
  if (typeof location === 'undefined') return undefined;
  const entries = performance.getEntriesByName(
    new URL(url, location.href).href,
  ) as PerformanceResourceTiming[];
  const last = entries.at(-1);
  return last === undefined || last.transferSize === 0
    ? undefined
    : last.transferSize;
}
