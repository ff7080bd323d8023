/**
 * Using an all-reduce result: applying the sum to a dense vector (the
 * model update) and writing it out densely (tests, benchmarks).
 */
import type { AllReduceResult, ReducedPart } from './types.ts';

/**
 * `target[i] += scale * sum[i]` for every stored coordinate of the sum,
 * e.g. `addScaledInto(weights, result, -1 / peers)` for step 5 of
 * Algorithm 1. Touches only the stored coordinates of sparse parts.
 */
export function addScaledInto(
  target: Float32Array,
  result: AllReduceResult,
  scale: number,
): void {
  for (const part of result.parts) {
    const { offset, values } = part;
    if (part.kind === 'dense') {
      for (let i = 0; i < values.length; i++) {
        target[offset + i] += scale * values[i];
      }
    } else {
      const { indices } = part;
      for (let i = 0; i < indices.length; i++) {
        target[offset + indices[i]] += scale * values[i];
      }
    }
  }
}

/** The sum as a new dense Float32Array of length `result.n`. */
export function resultToDense(result: AllReduceResult): Float32Array {
  const dense = new Float32Array(result.n);
  for (const part of result.parts) writePart(dense, part);
  return dense;
}

function writePart(dense: Float32Array, part: ReducedPart): void {
  if (part.kind === 'dense') {
    dense.set(part.values, part.offset);
    return;
  }
  for (let i = 0; i < part.indices.length; i++) {
    dense[part.offset + part.indices[i]] = part.values[i];
  }
}

/** Coordinates of the parts whose value is not zero. */
export function countPartsNonZero(parts: readonly ReducedPart[]): number {
  let count = 0;
  for (const part of parts) {
    for (let i = 0; i < part.values.length; i++) {
      if (part.values[i] !== 0) count++;
    }
  }
  return count;
}
