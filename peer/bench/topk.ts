/**
 * `topk-ring bench topk`: TopK selection on one gradient-sized vector,
 * against the floor (one plain pass over the array) and against tfjs's
 * `tf.topk`. Each figure is the median of several repetitions after a
 * warm-up, the methods interleaved so that a noisy neighbour on the machine
 * hurts them all alike.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { InvalidArgumentError, Option, type Command } from 'commander';

import { checkDensity, kForDensity } from '../../shared/compressor-config.ts';
import { TopkSelector } from '../../shared/topk.ts';

/** tfjs backends the benchmark can time `tf.topk` on. */
export const TOPK_BENCH_BACKENDS = ['wasm', 'cpu', 'none'] as const;

/** A value of `--backend`; `none` skips tfjs. */
export type TopkBenchBackend = (typeof TOPK_BENCH_BACKENDS)[number];

/** What to run. */
export interface TopkBenchOptions {
  /** n, the vector length. */
  readonly size: number;
  /** K / n; K = round(density * n), at least 1 above zero. */
  readonly density: number;
  /** Measured repetitions; the median is reported. */
  readonly repeat: number;
  /** Unmeasured repetitions first (JIT, caches, scratch buffers). */
  readonly warmup: number;
  /** Seed of the random vector. */
  readonly seed: number;
  /** tfjs backend for `msTfTopk`. */
  readonly backend: TopkBenchBackend;
}

/** The figures (the `--json` object). */
export interface TopkBenchReport {
  readonly size: number;
  readonly density: number;
  readonly k: number;
  /** Fast selection (sampled threshold), median ms. */
  readonly msSelect: number;
  /** Exact selection, median ms. */
  readonly msExact: number;
  /** `tf.topk(tf.abs(x), k)` with its result read back; null with `none`. */
  readonly msTfTopk: number | null;
  /** One plain pass summing absolute values: the physical floor. */
  readonly msPass: number;
  /** msSelect / msPass (target: at most 3, aim 1.5). */
  readonly ratioToPass: number;
  /** msTfTopk / msSelect (target: at least 2); null with `none`. */
  readonly speedupOverTf: number | null;
  /** Fast and exact selections returned the same entries, every time. */
  readonly exact: boolean;
  /** Times the fast selection fell back to exact, over all repetitions. */
  readonly fallbacks: number;
  readonly backend: TopkBenchBackend;
  readonly repeat: number;
}

/** Runs the benchmark; see {@link TopkBenchOptions}. */
export async function runTopkBench(
  options: TopkBenchOptions,
): Promise<TopkBenchReport> {
  const { size: n, repeat, warmup, backend } = options;
  const k = kForDensity(checkDensity(options.density), n);
  const x = gradientLike(n, options.seed);
  const selector = new TopkSelector();
  const times = { select: [] as number[], exact: [] as number[] };
  const tfTimes: number[] = [];
  const passTimes: number[] = [];
  let exact = true;
  let fallbacks = 0;
  let sink = 0;

  let input: tf.Tensor1D | undefined;
  if (backend !== 'none') {
    await tf.setBackend(backend);
    await tf.ready();
    // Made once, outside the timing: in training the gradient already
    // lives in a tensor.
    input = tf.tensor1d(x);
  }
  try {
    for (let rep = 0; rep < warmup + repeat; rep++) {
      const measured = rep >= warmup;

      let start = performance.now();
      sink += absSum(x);
      if (measured) passTimes.push(performance.now() - start);

      start = performance.now();
      const fast = selector.select(x, k, 'fast');
      if (measured) times.select.push(performance.now() - start);

      start = performance.now();
      const reference = selector.select(x, k, 'exact');
      if (measured) times.exact.push(performance.now() - start);

      exact &&= sameEntries(fast.indices, reference.indices);
      if (fast.fellBack) fallbacks++;

      if (input !== undefined) {
        const tensor = input;
        start = performance.now();
        const { values, indices } = tf.tidy(() => tf.topk(tf.abs(tensor), k));
        sink += indices.dataSync().length;
        if (measured) tfTimes.push(performance.now() - start);
        values.dispose();
        indices.dispose();
      }
    }
  } finally {
    input?.dispose();
  }
  // Keeps the engine from proving the plain pass useless.
  if (Number.isNaN(sink)) exact = false;

  const msSelect = median(times.select);
  const msPass = median(passTimes);
  const msTfTopk = tfTimes.length > 0 ? median(tfTimes) : null;
  return {
    size: n,
    density: options.density,
    k,
    msSelect,
    msExact: median(times.exact),
    msTfTopk,
    msPass,
    ratioToPass: msSelect / msPass,
    speedupOverTf: msTfTopk === null ? null : msTfTopk / msSelect,
    exact,
    fallbacks,
    backend,
    repeat,
  };
}

/** Adds `topk` to the `bench` command. */
export function registerTopkBench(bench: Command): void {
  bench
    .command('topk')
    .description(
      'TopK selection (fast and exact) against one plain pass and tf.topk',
    )
    .option('--size <n>', 'vector length', integerAtLeast(1), 10_000_000)
    .option('--density <d>', 'K / n, in [0, 1]', densityArg, 0.001)
    .option('--repeat <r>', 'measured repetitions', integerAtLeast(1), 7)
    .option('--warmup <w>', 'unmeasured repetitions', integerAtLeast(0), 2)
    .option('--seed <s>', 'seed of the random vector', integerAtLeast(0), 1)
    .addOption(
      new Option('--backend <name>', 'tfjs backend for tf.topk')
        .choices(TOPK_BENCH_BACKENDS)
        .default('wasm'),
    )
    .option('--json', 'print one JSON object')
    .action(async (flags: TopkBenchOptions & { json?: boolean }) => {
      const report = await runTopkBench(flags);
      if (flags.json) console.log(JSON.stringify(report));
      else printTable(report);
    });
}

function printTable(report: TopkBenchReport): void {
  const ms = (value: number | null) =>
    value === null ? '-' : `${value.toFixed(2)} ms`;
  const rows: [string, string][] = [
    ['size', String(report.size)],
    ['k', `${report.k} (density ${report.density})`],
    ['fast select', ms(report.msSelect)],
    ['exact select', ms(report.msExact)],
    [`tf.topk (${report.backend})`, ms(report.msTfTopk)],
    ['plain pass', ms(report.msPass)],
    ['fast / pass', report.ratioToPass.toFixed(2)],
    [
      'tf.topk / fast',
      report.speedupOverTf === null ? '-' : report.speedupOverTf.toFixed(1),
    ],
    ['fast == exact', String(report.exact)],
    ['fallbacks', `${report.fallbacks} of ${report.repeat} + warm-up`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  for (const [label, value] of rows) {
    console.log(`${label.padEnd(width)}  ${value}`);
  }
  console.log(`(median of ${report.repeat} runs)`);
}

/**
 * Gaussian values whose scale varies by blocks of 4096 (as it does from
 * layer to layer), from a seeded xorshift32 generator and Box-Muller.
 */
function gradientLike(n: number, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  const uniform = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return ((state >>> 0) + 0.5) / 4294967296;
  };
  const x = new Float32Array(n);
  let scale = 1;
  for (let i = 0; i < n; i++) {
    if (i % 4096 === 0) scale = Math.exp(4 * uniform() - 2);
    const radius = Math.sqrt(-2 * Math.log(uniform()));
    x[i] = scale * radius * Math.cos(2 * Math.PI * uniform());
  }
  return x;
}

function absSum(x: Float32Array): number {
  let total = 0;
  for (let i = 0; i < x.length; i++) total += Math.abs(x[i]);
  return total;
}

function sameEntries(a: Uint32Array, b: Uint32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[mid]
    : (sorted[mid - 1] + sorted[mid]) / 2;
}

function integerAtLeast(min: number): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) {
      throw new InvalidArgumentError(`expected an integer >= ${min}`);
    }
    return value;
  };
}

function densityArg(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !(value >= 0 && value <= 1)) {
    throw new InvalidArgumentError('expected a number in [0, 1]');
  }
  return value;
}
