/**
 * Order statistics on a Float32Array of finite numbers: the building block
 * of TopK selection. Works in place on a scratch array the caller owns, so
 * no allocation happens on the hot path.
 */

/**
 * Ranges shorter than this are partitioned directly; longer ones first
 * narrow the range around the target with a recursive select on a sample
 * (Floyd and Rivest), which cuts the expected comparisons from ~3.4n to
 * ~1.5n on large inputs.
 */
const SAMPLE_ABOVE_LENGTH = 600;

/**
 * Reorders `values[0, length)` so that position `rank` holds the value it
 * would hold in ascending sorted order, everything before it is `<=` and
 * everything after it is `>=`; returns that value.
 *
 * The values must be finite (no NaN): comparisons with NaN would break the
 * partition invariants. `rank` must lie in `[0, length)`.
 *
 * Expected time is linear. A partition budget of a few times log2(length)
 * bounds the worst case: when it runs out, the remaining range is sorted,
 * so adversarial inputs cost O(n log n) rather than O(n^2).
 */
export function selectAscending(
  values: Float32Array,
  length: number,
  rank: number,
): number {
  const budget = 4 * Math.ceil(Math.log2(length + 1)) + 16;
  narrow(values, 0, length - 1, rank, budget);
  return values[rank];
}

/**
 * Returns the value of 0-based rank `rank` in descending order of
 * `values[0, length)`, reordering the array so that positions
 * `[length - 1 - rank, length)` hold the `rank + 1` largest values.
 */
export function selectDescending(
  values: Float32Array,
  length: number,
  rank: number,
): number {
  return selectAscending(values, length, length - 1 - rank);
}

/** Moves the value of ascending rank `rank` into place within [left, right]. */
function narrow(
  values: Float32Array,
  left: number,
  right: number,
  rank: number,
  budget: number,
): void {
  while (right > left) {
    if (budget-- <= 0) {
      // Out of partitions: the input is adversarial for our pivots. Sorting
      // the rest is O(m log m) and always correct.
      values.subarray(left, right + 1).sort();
      return;
    }

    if (right - left > SAMPLE_ABOVE_LENGTH) {
      // Select within a window of the range that contains the target with
      // high probability, so the pivot below lands very close to it.
      const size = right - left + 1;
      const offset = rank - left + 1;
      const logSize = Math.log(size);
      const sampleSize = 0.5 * Math.exp((2 * logSize) / 3);
      const spread =
        0.5 *
        Math.sqrt((logSize * sampleSize * (size - sampleSize)) / size) *
        (offset - size / 2 < 0 ? -1 : 1);
      const windowLeft = Math.max(
        left,
        Math.floor(rank - (offset * sampleSize) / size + spread),
      );
      const windowRight = Math.min(
        right,
        Math.floor(rank + ((size - offset) * sampleSize) / size + spread),
      );
      narrow(values, windowLeft, windowRight, rank, budget);
    }

    const split = partitionAround(values, left, right, rank);
    if (split <= rank) left = split + 1;
    if (rank <= split) right = split - 1;
  }
}

/**
 * Partitions [left, right] around the value at `pivotAt` (Hoare style: both
 * scans stop on values equal to the pivot, so runs of equal values split
 * evenly instead of degrading to quadratic time). Returns the final position
 * of the pivot value.
 */
function partitionAround(
  values: Float32Array,
  left: number,
  right: number,
  pivotAt: number,
): number {
  const pivot = values[pivotAt];
  swap(values, left, pivotAt);
  if (values[right] > pivot) swap(values, left, right);

  let i = left;
  let j = right;
  while (i < j) {
    swap(values, i, j);
    i++;
    j--;
    while (values[i] < pivot) i++;
    while (values[j] > pivot) j--;
  }

  if (values[left] === pivot) {
    swap(values, left, j);
  } else {
    j++;
    swap(values, j, right);
  }
  return j;
}

function swap(values: Float32Array, a: number, b: number): void {
  const held = values[a];
  values[a] = values[b];
  values[b] = held;
}
