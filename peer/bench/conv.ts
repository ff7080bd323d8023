/**
 * `topk-ring bench conv`: one training step of a model (forward, backward,
 * flat gradient, update) on the wasm backend against the cpu backend. For
 * the cnn this times the conv gradient kernels this project registers for
 * wasm (target: at least 10x faster than cpu). Each figure is the median
 * of several steps after warm-up steps.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, Option, type Command } from 'commander';

import { Rng } from '../data/rng.ts';
import { createModel } from '../models/registry.ts';
import {
  applyUpdate,
  lossAndGradients,
  parameterCount,
} from '../models/weights.ts';
import { initBackend } from '../tf/backend.ts';

/** Models the benchmark can time. */
export const CONV_BENCH_MODELS = ['cnn', 'mlp'] as const;

/** What to run. */
export interface ConvBenchOptions {
  /** Model to time, on 28x28x1 inputs and 10 classes. */
  readonly model: (typeof CONV_BENCH_MODELS)[number];
  /** Samples per step. */
  readonly batch: number;
  /** Measured wasm steps; the median is reported. */
  readonly repeat: number;
  /** Measured cpu steps (a cnn step takes seconds there). */
  readonly cpuRepeat: number;
  /** Unmeasured steps first, on each backend. */
  readonly warmup: number;
  /** Seed of the weights and the batch. */
  readonly seed: number;
}

/** The figures (the `--json` object). */
export interface ConvBenchReport {
  readonly model: string;
  readonly batch: number;
  readonly parameters: number;
  /** Median ms per training step on wasm. */
  readonly msPerStepWasm: number;
  /** Median ms per training step on cpu. */
  readonly msPerStepCpu: number;
  /** msPerStepCpu / msPerStepWasm. */
  readonly speedup: number;
  readonly repeat: number;
  readonly cpuRepeat: number;
}

/** The median of `values` (not empty). */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[mid]
    : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Times `steps` training steps on `backend`; returns each one's ms. */
async function timeSteps(
  backend: 'wasm' | 'cpu',
  options: ConvBenchOptions,
  steps: number,
): Promise<{ times: number[]; parameters: number }> {
  await initBackend(backend);
  const model = createModel(options.model, {
    inputShape: [28, 28, 1],
    outputUnits: 10,
    seed: options.seed,
  });
  const rng = new Rng(options.seed);
  const size = options.batch * 784;
  const x = tf.tensor4d(
    Float32Array.from({ length: size }, () => rng.nextGaussian()),
    [options.batch, 28, 28, 1],
  );
  const labels = Int32Array.from({ length: options.batch }, () =>
    rng.nextInt(10),
  );
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), 10));
  const parameters = parameterCount(model);
  const gradients = new Float32Array(parameters);
  const update = new Float32Array(parameters);
  const times: number[] = [];
  try {
    for (let step = 0; step < options.warmup + steps; step++) {
      const start = performance.now();
      lossAndGradients(model, 'softmax-cross-entropy', x, y, gradients);
      for (let i = 0; i < parameters; i++) update[i] = 0.01 * gradients[i];
      applyUpdate(model, update);
      if (step >= options.warmup) times.push(performance.now() - start);
    }
  } finally {
    tf.dispose([x, y]);
    model.dispose();
  }
  return { times, parameters };
}

/** Runs the benchmark; see {@link ConvBenchOptions}. Leaves wasm current. */
export async function runConvBench(
  options: ConvBenchOptions,
): Promise<ConvBenchReport> {
  const cpu = await timeSteps('cpu', options, options.cpuRepeat);
  const wasm = await timeSteps('wasm', options, options.repeat);
  const msPerStepWasm = median(wasm.times);
  const msPerStepCpu = median(cpu.times);
  return {
    model: options.model,
    batch: options.batch,
    parameters: wasm.parameters,
    msPerStepWasm,
    msPerStepCpu,
    speedup: msPerStepCpu / msPerStepWasm,
    repeat: options.repeat,
    cpuRepeat: options.cpuRepeat,
  };
}

/** A commander parser for integers >= `min`. */
function integerAtLeast(min: number): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < min) {
      throw new InvalidArgumentError(`expected an integer >= ${min}`);
    }
    return value;
  };
}

/** Adds `conv` to the `bench` command. */
export function registerConvBench(bench: Command): void {
  bench
    .command('conv')
    .description('one training step of the cnn (or mlp) on wasm against cpu')
    .addOption(
      new Option('--model <name>', 'model to time')
        .choices(CONV_BENCH_MODELS)
        .default('cnn'),
    )
    .option('--batch <n>', 'samples per step', integerAtLeast(1), 32)
    .option('--repeat <r>', 'measured wasm steps', integerAtLeast(1), 10)
    .option('--cpu-repeat <r>', 'measured cpu steps', integerAtLeast(1), 2)
    .option('--warmup <w>', 'unmeasured steps', integerAtLeast(0), 2)
    .option('--seed <s>', 'seed of weights and batch', integerAtLeast(0), 1)
    .option('--json', 'print one JSON object')
    .action(async (flags: ConvBenchOptions & { json?: boolean }) => {
      const report = await runConvBench(flags);
      if (flags.json) {
        console.log(JSON.stringify(report));
        return;
      }
      console.log(
        `${report.model}, batch ${report.batch}, ` +
          `${report.parameters} parameters`,
      );
      console.log(`wasm  ${report.msPerStepWasm.toFixed(1)} ms/step`);
      console.log(`cpu   ${report.msPerStepCpu.toFixed(1)} ms/step`);
      console.log(
        `speedup ${report.speedup.toFixed(1)}x ` +
          `(median of ${report.repeat} wasm, ${report.cpuRepeat} cpu steps)`,
      );
    });
}
