/**
 * Arithmetic on one slice of the index space (a segment, or the whole
 * vector in `allgather`): a partial sum held sparse or dense, the addition
 * of a peer's own entries, and the choice of the wire form.
 *
 * Every addition rounds to float32 (a Float32Array store, or Math.fround),
 * and each slice is summed in an order fixed by the ring, so two peers that
 * run the same additions get the same bits.
 */
import { sparsePayloadBytes } from '../codec.ts';

/** A slice's values: sparse (indices relative to the slice) or dense. */
export type SliceValue =
  | {
      readonly kind: 'sparse';
      readonly indices: Uint32Array;
      readonly values: Float32Array;
    }
  | { readonly kind: 'dense'; readonly values: Float32Array };

/** Sparse entries relative to the slice start. */
export interface SliceEntries {
  readonly indices: Uint32Array;
  readonly values: Float32Array;
}

/** An empty sparse slice. */
export const EMPTY_SLICE: SliceValue = {
  kind: 'sparse',
  indices: new Uint32Array(0),
  values: new Float32Array(0),
};

/**
 * `earlier + own`, where `earlier` is what the previous peers summed and
 * `own` this peer's entries. A dense `earlier` stays dense; the result
 * never shares memory with `earlier` (a received message's arrays may
 * belong to the transport).
 */
export function addEntries(earlier: SliceValue, own: SliceEntries): SliceValue {
  if (earlier.kind === 'dense') {
    const values = earlier.values.slice();
    for (let i = 0; i < own.indices.length; i++) {
      values[own.indices[i]] += own.values[i];
    }
    return { kind: 'dense', values };
  }
  return mergeSparse(earlier, own);
}

function mergeSparse(a: SliceEntries, b: SliceEntries): SliceValue {
  const capacity = a.indices.length + b.indices.length;
  const indices = new Uint32Array(capacity);
  const values = new Float32Array(capacity);
  let i = 0;
  let j = 0;
  let count = 0;
  while (i < a.indices.length && j < b.indices.length) {
    const ai = a.indices[i];
    const bj = b.indices[j];
    if (ai < bj) {
      indices[count] = ai;
      values[count++] = a.values[i++];
    } else if (bj < ai) {
      indices[count] = bj;
      values[count++] = b.values[j++];
    } else {
      indices[count] = ai;
      values[count++] = a.values[i++] + b.values[j++];
    }
  }
  for (; i < a.indices.length; i++, count++) {
    indices[count] = a.indices[i];
    values[count] = a.values[i];
  }
  for (; j < b.indices.length; j++, count++) {
    indices[count] = b.indices[j];
    values[count] = b.values[j];
  }
  return count === capacity
    ? { kind: 'sparse', indices, values }
    : {
        kind: 'sparse',
        indices: indices.slice(0, count),
        values: values.slice(0, count),
      };
}

/** Scatters a slice into a new dense array of `length` values. */
export function toDenseSlice(value: SliceValue, length: number): Float32Array {
  if (value.kind === 'dense') return value.values;
  const dense = new Float32Array(length);
  for (let i = 0; i < value.indices.length; i++) {
    dense[value.indices[i]] = value.values[i];
  }
  return dense;
}

/**
 * The form `value` travels in: dense when forced (the `dense` baseline) or
 * when the sparse form would take more payload bytes than 4 per coordinate
 * (SparCML's rule, with the codec's real gap-encoded size); sparse
 * otherwise. The values' bits are the same in either form.
 */
export function wireForm(
  value: SliceValue,
  length: number,
  forceDense: boolean,
): SliceValue {
  if (value.kind === 'dense') return value;
  if (forceDense || sparsePayloadBytes(value.indices) > 4 * length) {
    return { kind: 'dense', values: toDenseSlice(value, length) };
  }
  return value;
}

/**
 * Sums `slices` in the order given (the first is taken as it is, each next
 * one added with float32 rounding), as every peer must for identical bits.
 * All sparse: a merge, sparse result. Any dense: accumulation into one
 * dense array.
 */
export function sumInOrder(
  slices: readonly SliceValue[],
  length: number,
): SliceValue {
  if (slices.every((slice) => slice.kind === 'sparse')) {
    let sum: SliceValue = slices.length > 0 ? slices[0] : EMPTY_SLICE;
    for (let k = 1; k < slices.length; k++) sum = addEntries(sum, slices[k]);
    return sum;
  }
  const dense = new Float32Array(length);
  for (const slice of slices) {
    if (slice.kind === 'dense') {
      for (let i = 0; i < length; i++) dense[i] += slice.values[i];
    } else {
      for (let i = 0; i < slice.indices.length; i++) {
        dense[slice.indices[i]] += slice.values[i];
      }
    }
  }
  return { kind: 'dense', values: dense };
}

/** Coordinates of `value` that are not zero. */
export function countNonZero(value: SliceValue): number {
  let count = 0;
  for (let i = 0; i < value.values.length; i++) {
    if (value.values[i] !== 0) count++;
  }
  return count;
}
