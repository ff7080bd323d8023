/**
 * The linear passes TopK selection is made of: counting non-finite
 * entries, gathering candidates above a threshold, and collecting the
 * final entries in index order with the lower-index tie-break. Kept apart
 * from the selection policy in `topk.ts` because these loops are the hot
 * path and are tuned for V8 (see {@link gatherAtOrAbove}).
 */
import { topkError } from './errors.ts';

/** Entries tested per step of {@link gatherAtOrAbove}. */
export const UNROLL = 8;

/** Selected positions (strictly increasing) and the values there. */
export interface Picked {
  readonly indices: Uint32Array;
  readonly values: Float32Array;
}

/** Counts NaN and infinite entries of `x`. */
export function countNonFinite(x: Float32Array): number {
  let count = 0;
  for (let i = 0; i < x.length; i++) {
    if (!(Math.abs(x[i]) < Infinity)) count++;
  }
  return count;
}

/**
 * The one pass of fast selection: writes into `out`, in index order, every
 * position whose magnitude is at or above `threshold` (NaN and infinities
 * are counted apart). Gives up, returning `undefined`, once more than
 * `capacity` candidates are found; `out` must hold `capacity + UNROLL`.
 *
 * Eight entries are tested per step with short-circuit comparisons and
 * looked at one by one only when one of them qualifies (rarely, at low
 * density): this keeps the pass as fast as a plain sum over the array.
 * `!(magnitude < threshold)` also holds for NaN, so non-finite entries need
 * no test of their own on the common path.
 */
export function gatherAtOrAbove(
  x: Float32Array,
  threshold: number,
  out: Uint32Array,
  capacity: number,
): { count: number; nonFinite: number } | undefined {
  const n = x.length;
  const t = threshold;
  let count = 0;
  let nonFinite = 0;
  let i = 0;
  for (; i + UNROLL <= n; i += UNROLL) {
    if (
      !(Math.abs(x[i]) < t) ||
      !(Math.abs(x[i + 1]) < t) ||
      !(Math.abs(x[i + 2]) < t) ||
      !(Math.abs(x[i + 3]) < t) ||
      !(Math.abs(x[i + 4]) < t) ||
      !(Math.abs(x[i + 5]) < t) ||
      !(Math.abs(x[i + 6]) < t) ||
      !(Math.abs(x[i + 7]) < t)
    ) {
      for (let j = i; j < i + UNROLL; j++) {
        const magnitude = Math.abs(x[j]);
        if (magnitude < t) continue;
        if (magnitude < Infinity) out[count++] = j;
        else nonFinite++;
      }
      if (count > capacity) return undefined;
    }
  }
  for (; i < n; i++) {
    const magnitude = Math.abs(x[i]);
    if (magnitude < t) continue;
    if (magnitude < Infinity) out[count++] = i;
    else nonFinite++;
  }
  return count > capacity ? undefined : { count, nonFinite };
}

/** Counts the entries of `values[from, to)` strictly above `threshold`. */
export function countAbove(
  values: Float32Array,
  from: number,
  to: number,
  threshold: number,
): number {
  let count = 0;
  for (let i = from; i < to; i++) if (values[i] > threshold) count++;
  return count;
}

/**
 * Takes, in index order, every finite entry of `x` whose magnitude is above
 * `threshold` and the first `ties` entries whose magnitude equals it:
 * `taken` entries in all, or it is a bug.
 */
export function collectRange(
  x: Float32Array,
  taken: number,
  threshold: number,
  ties: number,
): Picked {
  const indices = new Uint32Array(taken);
  const values = new Float32Array(taken);
  let out = 0;
  for (let i = 0; i < x.length && out < taken; i++) {
    const value = x[i];
    const magnitude = Math.abs(value);
    if (magnitude > threshold) {
      if (!(magnitude < Infinity)) continue;
    } else if (magnitude !== threshold || ties-- <= 0) {
      continue;
    }
    indices[out] = i;
    values[out++] = value;
  }
  return checkedCount(indices, values, out);
}

/**
 * {@link collectRange} over the positions `candidates[0, count)` only,
 * which must be increasing and hold no non-finite entry.
 */
export function collectCandidates(
  x: Float32Array,
  candidates: Uint32Array,
  count: number,
  taken: number,
  threshold: number,
  ties: number,
): Picked {
  const indices = new Uint32Array(taken);
  const values = new Float32Array(taken);
  let out = 0;
  for (let c = 0; c < count && out < taken; c++) {
    const at = candidates[c];
    const value = x[at];
    const magnitude = Math.abs(value);
    if (magnitude > threshold || (magnitude === threshold && ties-- > 0)) {
      indices[out] = at;
      values[out++] = value;
    }
  }
  return checkedCount(indices, values, out);
}

function checkedCount(
  indices: Uint32Array,
  values: Float32Array,
  out: number,
): Picked {
  if (out !== indices.length) {
    throw topkError(
      'ERR_INTERNAL',
      `TopK collected ${out} entries, expected ${indices.length}`,
      { expected: indices.length, collected: out },
    );
  }
  return { indices, values };
}
