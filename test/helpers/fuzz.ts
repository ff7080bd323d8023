/**
 * One harness for every fuzz target (test/fuzz/*.fuzz.ts): how many inputs
 * to generate, the property every target shares (an input is answered
 * with a result or a typed error of an allowed code, within a time bound),
 * and a line of statistics per target so that the dedicated run can be
 * timed.
 *
 * Environment:
 * - `TOPK_FUZZ_RUNS`: inputs per target (default: the target's small
 *   count, sized for `npm test`; the `fuzz` script sets 100,000).
 * - `TOPK_FUZZ_SEED`: replays a failing run with the seed fast-check
 *   printed.
 */
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { isTopkError, type ErrorCode } from '../../shared/errors.ts';

/** Inputs per target: `TOPK_FUZZ_RUNS`, or `fallback` when it is unset. */
export function fuzzRuns(fallback: number): number {
  const raw = process.env.TOPK_FUZZ_RUNS;
  if (raw === undefined || raw === '') return fallback;
  const runs = Number(raw);
  assert.ok(
    Number.isSafeInteger(runs) && runs > 0,
    `TOPK_FUZZ_RUNS must be a positive integer, got ${JSON.stringify(raw)}`,
  );
  return runs;
}

/** True when the dedicated fuzz run asked for more inputs than the default. */
export function isLongRun(fallback: number): boolean {
  return fuzzRuns(fallback) > fallback;
}

function fuzzSeed(): number | undefined {
  const raw = process.env.TOPK_FUZZ_SEED;
  return raw === undefined || raw === '' ? undefined : Number(raw);
}

/**
 * Asserts that `error` is a TopkRingError whose code is one of `codes`:
 * a rejection from code under fuzz must be typed, with a stable code.
 */
export function assertTypedRejection(
  error: unknown,
  codes: readonly ErrorCode[],
  what: string,
): void {
  if (!isTopkError(error)) {
    const detail = error instanceof Error ? error.stack : String(error);
    assert.fail(`${what}: untyped error ${detail}`);
  }
  assert.ok(
    codes.includes(error.code),
    `${what}: code ${error.code} is not one of ${codes.join(', ')}`,
  );
}

/** What one fuzz target measured. */
export interface FuzzStats {
  /** Cases generated. */
  readonly runs: number;
  readonly totalMs: number;
  /** The slowest single input, in milliseconds. */
  readonly maxInputMs: number;
}

/** How a target runs. */
export interface FuzzOptions {
  /** Inputs when `TOPK_FUZZ_RUNS` is unset. */
  readonly defaultRuns: number;
  /**
   * Longest time one input may take, in milliseconds: a slower input is a
   * failure ("no hang"). Default 2000: generous, since the machine is
   * shared and a garbage collection may land on any input.
   */
  readonly maxInputMs?: number;
  /**
   * Inputs one generated case stands for (a sequence of events counts as
   * its events): the target runs `ceil(runs / inputsPerCase)` cases.
   */
  readonly inputsPerCase?: number;
}

function casesOf(options: FuzzOptions): number {
  return Math.ceil(
    fuzzRuns(options.defaultRuns) / (options.inputsPerCase ?? 1),
  );
}

/**
 * Runs `check` on `fuzzRuns(defaultRuns)` inputs drawn from `arbitrary`,
 * timing each; fails on the first input that throws from `check` or takes
 * longer than `maxInputMs`. Returns what it measured.
 */
export function fuzz<T>(
  arbitrary: fc.Arbitrary<T>,
  check: (input: T) => void,
  options: FuzzOptions,
): FuzzStats {
  const runs = casesOf(options);
  const maxInputMs = options.maxInputMs ?? 2000;
  let slowestMs = 0;
  const startMs = performance.now();
  fc.assert(
    fc.property(arbitrary, (input) => {
      const inputStartMs = performance.now();
      check(input);
      const tookMs = performance.now() - inputStartMs;
      if (tookMs > slowestMs) slowestMs = tookMs;
      assert.ok(
        tookMs <= maxInputMs,
        `one input took ${tookMs.toFixed(0)} ms (limit ${maxInputMs} ms)`,
      );
    }),
    { numRuns: runs, seed: fuzzSeed(), includeErrorInReport: true },
  );
  return {
    runs,
    totalMs: performance.now() - startMs,
    maxInputMs: slowestMs,
  };
}

/** The async form of {@link fuzz}, for targets that answer later. */
export async function fuzzAsync<T>(
  arbitrary: fc.Arbitrary<T>,
  check: (input: T) => Promise<void>,
  options: FuzzOptions,
): Promise<FuzzStats> {
  const runs = casesOf(options);
  const maxInputMs = options.maxInputMs ?? 2000;
  let slowestMs = 0;
  const startMs = performance.now();
  await fc.assert(
    fc.asyncProperty(arbitrary, async (input) => {
      const inputStartMs = performance.now();
      await check(input);
      const tookMs = performance.now() - inputStartMs;
      if (tookMs > slowestMs) slowestMs = tookMs;
      assert.ok(
        tookMs <= maxInputMs,
        `one input took ${tookMs.toFixed(0)} ms (limit ${maxInputMs} ms)`,
      );
    }),
    { numRuns: runs, seed: fuzzSeed(), includeErrorInReport: true },
  );
  return {
    runs,
    totalMs: performance.now() - startMs,
    maxInputMs: slowestMs,
  };
}

/** One line for the test report: inputs, time, slowest input. */
export function describeStats(target: string, stats: FuzzStats): string {
  return (
    `${target}: ${stats.runs} cases in ${(stats.totalMs / 1000).toFixed(1)} s` +
    ` (slowest input ${stats.maxInputMs.toFixed(1)} ms)`
  );
}
