/**
 * One peer's training curves, kept in step buckets of a fixed width so
 * memory stays bounded however long a run goes: every bucket sums what
 * the reports of its steps said, and when a series holds too many buckets
 * the room doubles the width and neighbouring buckets merge. Sums (not
 * means) are kept so a merge loses nothing: the mean loss of a merged
 * bucket is exact, and so is its bytes per step (bytes over the steps they
 * covered).
 *
 * Buckets start at multiples of the width, so the series of every peer of
 * a room share one grid of steps and line up on a chart without joining.
 */
import type { SeriesColumns } from '../shared/dashboard-protocol.ts';

/** The sums one bucket keeps, in their order inside the sums buffer. */
const FIELD = {
  lossSum: 0,
  lossCount: 1,
  accuracySum: 2,
  accuracyCount: 3,
  computeMsSum: 4,
  selectMsSum: 5,
  communicateMsSum: 6,
  timingCount: 7,
  compressionErrorSum: 8,
  compressionErrorCount: 9,
  /** Bytes sent and received over `bytesSteps` steps. */
  sent: 10,
  received: 11,
  bytesSteps: 12,
  /** What a dense all-reduce would have sent over `denseSteps` steps. */
  dense: 13,
  denseSteps: 14,
} as const;
const FIELDS = 15;

/**
 * Bytes one bucket takes: its first step as a float64 (compared exactly),
 * and 15 float32 sums. Float32 holds 7 significant digits, more than the
 * 5 handed out, and counts exactly up to 2^24 reports per bucket.
 */
export const BYTES_PER_BUCKET = 8 + FIELDS * 4;

/** What one report adds to the bucket of its step. */
export interface BucketSample {
  readonly step: number;
  readonly loss?: number | null;
  readonly accuracy?: number | null;
  readonly timing?: {
    readonly computeMs: number;
    readonly selectMs: number;
    readonly communicateMs: number;
  };
  readonly compressionError?: number;
  /** Bytes sent and received since the previous report, over `bytesSteps`
   * steps; absent when they cannot be told (first report, counter reset). */
  readonly bytes?: {
    readonly sent: number;
    readonly received: number;
    readonly steps: number;
  };
  readonly dense?: { readonly bytes: number; readonly steps: number };
}

/** Significant digits of the values a series hands out (JSON size). */
const DIGITS = 5;

/** The buckets of one peer, ordered by step. */
export class BucketSeries {
  /** First step of each bucket (a multiple of the width). */
  #starts = new Float64Array(16);
  #sums = new Float32Array(16 * FIELDS);
  #count = 0;
  readonly #maxBuckets: number;

  /** `maxBuckets`: the most this series holds before it is coarsened
   * (one more is held in between); the buffers never grow past it. */
  constructor(maxBuckets: number) {
    this.#maxBuckets = maxBuckets;
  }

  /** Buckets held. */
  get length(): number {
    return this.#count;
  }

  /** Bytes of the buffers (what the series costs, roughly). */
  get capacityBytes(): number {
    return this.#starts.byteLength + this.#sums.byteLength;
  }

  /** First step of the last bucket, or -1 when empty. */
  get lastStart(): number {
    return this.#count === 0 ? -1 : this.#starts[this.#count - 1]!;
  }

  /** Adds `sample` to its bucket in a grid of `widthSteps`. */
  add(sample: BucketSample, widthSteps: number): void {
    const start = Math.floor(sample.step / widthSteps) * widthSteps;
    const at = this.#bucketAt(start) * FIELDS;
    const d = this.#sums;
    if (sample.loss !== undefined && sample.loss !== null) {
      d[at + FIELD.lossSum]! += sample.loss;
      d[at + FIELD.lossCount]! += 1;
    }
    if (sample.accuracy !== undefined && sample.accuracy !== null) {
      d[at + FIELD.accuracySum]! += sample.accuracy;
      d[at + FIELD.accuracyCount]! += 1;
    }
    if (sample.timing !== undefined) {
      d[at + FIELD.computeMsSum]! += sample.timing.computeMs;
      d[at + FIELD.selectMsSum]! += sample.timing.selectMs;
      d[at + FIELD.communicateMsSum]! += sample.timing.communicateMs;
      d[at + FIELD.timingCount]! += 1;
    }
    if (sample.compressionError !== undefined) {
      d[at + FIELD.compressionErrorSum]! += sample.compressionError;
      d[at + FIELD.compressionErrorCount]! += 1;
    }
    if (sample.bytes !== undefined) {
      d[at + FIELD.sent]! += sample.bytes.sent;
      d[at + FIELD.received]! += sample.bytes.received;
      d[at + FIELD.bytesSteps]! += sample.bytes.steps;
    }
    if (sample.dense !== undefined) {
      d[at + FIELD.dense]! += sample.dense.bytes;
      d[at + FIELD.denseSteps]! += sample.dense.steps;
    }
  }

  /**
   * Merges buckets into a grid of `widthSteps` (a multiple of the old
   * width): neighbours whose steps fall in one new bucket become one.
   */
  coarsen(widthSteps: number): void {
    const starts = this.#starts;
    const d = this.#sums;
    let kept = 0;
    for (let i = 0; i < this.#count; i++) {
      const start = Math.floor(starts[i]! / widthSteps) * widthSteps;
      if (kept > 0 && starts[kept - 1] === start) {
        const into = (kept - 1) * FIELDS;
        for (let f = 0; f < FIELDS; f++) d[into + f]! += d[i * FIELDS + f]!;
        continue;
      }
      if (kept !== i) d.copyWithin(kept * FIELDS, i * FIELDS, (i + 1) * FIELDS);
      starts[kept] = start;
      kept += 1;
    }
    this.#count = kept;
  }

  /** The buckets whose first step is at least `fromStep`, as columns. */
  columns(fromStep: number): SeriesColumns {
    const columns: SeriesColumns = {
      step: [],
      loss: [],
      accuracy: [],
      sentPerStep: [],
      receivedPerStep: [],
      densePerStep: [],
      computeMs: [],
      selectMs: [],
      communicateMs: [],
      compressionError: [],
    };
    const d = this.#sums;
    for (let i = this.#firstAtOrAfter(fromStep); i < this.#count; i++) {
      const at = i * FIELDS;
      const mean = (sum: number, count: number) =>
        d[at + count]! > 0 ? round(d[at + sum]! / d[at + count]!) : null;
      const timingCount = FIELD.timingCount;
      columns.step.push(this.#starts[i]!);
      columns.loss.push(mean(FIELD.lossSum, FIELD.lossCount));
      columns.accuracy.push(mean(FIELD.accuracySum, FIELD.accuracyCount));
      columns.sentPerStep.push(mean(FIELD.sent, FIELD.bytesSteps));
      columns.receivedPerStep.push(mean(FIELD.received, FIELD.bytesSteps));
      columns.densePerStep.push(mean(FIELD.dense, FIELD.denseSteps));
      columns.computeMs.push(mean(FIELD.computeMsSum, timingCount));
      columns.selectMs.push(mean(FIELD.selectMsSum, timingCount));
      columns.communicateMs.push(mean(FIELD.communicateMsSum, timingCount));
      columns.compressionError.push(
        mean(FIELD.compressionErrorSum, FIELD.compressionErrorCount),
      );
    }
    return columns;
  }

  /** Total bytes sent that the buckets account for (for tests). */
  totalSent(): number {
    let total = 0;
    for (let i = 0; i < this.#count; i++) {
      total += this.#sums[i * FIELDS + FIELD.sent]!;
    }
    return total;
  }

  /** Index of the bucket starting at `start`, made (zeroed) if absent. */
  #bucketAt(start: number): number {
    // Reports almost always land in the last bucket or just after it.
    const last = this.lastStart;
    if (start === last) return this.#count - 1;
    const index = start > last ? this.#count : this.#firstAtOrAfter(start);
    if (index < this.#count && this.#starts[index] === start) return index;

    this.#grow();
    this.#starts.copyWithin(index + 1, index, this.#count);
    this.#sums.copyWithin(
      (index + 1) * FIELDS,
      index * FIELDS,
      this.#count * FIELDS,
    );
    this.#starts[index] = start;
    this.#sums.fill(0, index * FIELDS, (index + 1) * FIELDS);
    this.#count += 1;
    return index;
  }

  /** Index of the first bucket starting at or after `step` (binary search). */
  #firstAtOrAfter(step: number): number {
    let low = 0;
    let high = this.#count;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#starts[mid]! < step) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Makes room for one more bucket: doubling, but never past the most
   * this series may hold, so a full series costs what it holds. */
  #grow(): void {
    if (this.#count < this.#starts.length) return;
    const buckets = Math.max(
      this.#count + 1,
      Math.min(this.#starts.length * 2, this.#maxBuckets + 1),
    );
    const starts = new Float64Array(buckets);
    starts.set(this.#starts);
    const sums = new Float32Array(buckets * FIELDS);
    sums.set(this.#sums);
    this.#starts = starts;
    this.#sums = sums;
  }
}

function round(value: number): number {
  return Number(value.toPrecision(DIGITS));
}
