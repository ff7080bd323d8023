/**
 * Helpers shared by the all-reduce and simulator tests: running a step on
 * a simulated ring and checking the sums against a float64 reference.
 */
import assert from 'node:assert/strict';

import {
  AutoPlanner,
  resultToDense,
  type AllReduceChoice,
  type AllReduceInput,
  type AllReduceResult,
} from '../../shared/allreduce/index.ts';
import { RingSimulator, type FaultHook } from '../../shared/simulator.ts';
import { settleSimulatedStep } from '../../shared/simulator-step.ts';
import type { SparseVector } from '../../shared/sparse.ts';

/** Inputs with `skip` false. */
export function inputsOf(vectors: readonly SparseVector[]): AllReduceInput[] {
  return vectors.map((vector) => ({ vector, skip: false }));
}

/** Runs one step on a fresh simulated ring and returns every outcome. */
export async function settleOnce(
  inputs: readonly AllReduceInput[],
  algorithm: AllReduceChoice,
  options: { fault?: FaultHook; signal?: AbortSignal; k?: number } = {},
): Promise<{
  outcomes: PromiseSettledResult<AllReduceResult>[];
  ring: RingSimulator;
}> {
  const ring = new RingSimulator({
    peers: inputs.length,
    fault: options.fault,
  });
  try {
    const outcomes = await settleSimulatedStep(ring, {
      step: 0,
      inputs,
      signal: options.signal,
      options: () => ({
        algorithm,
        planner: new AutoPlanner(),
        k: options.k ?? inputs[0].vector.indices.length,
      }),
    });
    return { outcomes, ring };
  } finally {
    ring.close();
  }
}

/** Runs one step and returns every result, failing on any rejection. */
export async function reduceOnce(
  inputs: readonly AllReduceInput[],
  algorithm: AllReduceChoice,
): Promise<AllReduceResult[]> {
  const { outcomes } = await settleOnce(inputs, algorithm);
  return outcomes.map((outcome) => {
    if (outcome.status === 'rejected') throw outcome.reason;
    return outcome.value;
  });
}

/**
 * Asserts every result is the sum of `vectors` (within float32 rounding of
 * P additions) and every peer holds the same bits.
 */
export function assertSum(
  vectors: readonly SparseVector[],
  results: readonly AllReduceResult[],
): void {
  const n = vectors[0].n;
  const reference = new Float64Array(n);
  const magnitude = new Float64Array(n);
  for (const { indices, values } of vectors) {
    for (let i = 0; i < indices.length; i++) {
      reference[indices[i]] += values[i];
      magnitude[indices[i]] += Math.abs(values[i]);
    }
  }
  const first = resultToDense(results[0]);
  const bits = new Uint32Array(first.buffer);
  for (let p = 1; p < results.length; p++) {
    const other = new Uint32Array(resultToDense(results[p]).buffer);
    assert.deepEqual(other, bits, `peer ${p} differs from peer 0`);
    assert.equal(results[p].algorithm, results[0].algorithm);
    assert.equal(results[p].unionSize, results[0].unionSize);
  }
  const tolerance = vectors.length * 2 ** -23;
  let nonZero = 0;
  for (let i = 0; i < n; i++) {
    if (first[i] !== 0) nonZero++;
    const error = Math.abs(first[i] - reference[i]);
    assert.ok(
      error <= tolerance * magnitude[i],
      `coordinate ${i}: got ${first[i]}, reference ${reference[i]}`,
    );
  }
  assert.equal(results[0].unionSize, nonZero);
  for (const result of results) assert.equal(result.skip, false);
}

/** A small-integer vector of length n holding `entries` (index -> value). */
export function vectorOf(n: number, entries: [number, number][]): SparseVector {
  const sorted = [...entries].sort((a, b) => a[0] - b[0]);
  return {
    n,
    indices: Uint32Array.from(sorted, ([index]) => index),
    values: Float32Array.from(sorted, ([, value]) => value),
  };
}
