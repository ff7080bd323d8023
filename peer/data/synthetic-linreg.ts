/**
 * The paper's linear-regression data: 10,000 samples of 1,024 standard
 * normal features, targets y = x . w* + noise with w* drawn once from
 * N(0, 1/1024) (so y has unit variance before noise) and Gaussian noise of
 * standard deviation 0.1 by default. A further 1,000 samples from the
 * same generator form the fixed test split. Everything follows from the
 * seed, so every peer builds the same data. Runs in a browser.
 */
import { topkError } from '../../shared/errors.ts';
import type { Dataset } from './dataset.ts';
import { deriveSeed, Rng } from './rng.ts';
import { DenseSplit } from './splits.ts';

/** Options of {@link syntheticLinreg}. */
export interface SyntheticLinregOptions {
  /** Seed of weights, features and noise. Default 1. */
  readonly seed?: number;
  /** Training samples. Default 10,000. */
  readonly samples?: number;
  /** Test samples. Default 1,000. */
  readonly testSamples?: number;
  /** Features per sample. Default 1,024. */
  readonly features?: number;
  /** Standard deviation of the additive noise. Default 0.1. */
  readonly noiseStd?: number;
}

/** The data and the true weights behind it. */
export interface SyntheticLinreg extends Dataset {
  /** w*: the weights the targets were made with. */
  readonly trueWeights: Float32Array;
}

/** Draws `count` samples of `x` and `y = x . w + noise`. */
function drawSplit(
  rng: Rng,
  count: number,
  weights: Float32Array,
  noiseStd: number,
): DenseSplit {
  const width = weights.length;
  const x = new Float32Array(count * width);
  const y = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    let dot = 0;
    for (let j = 0; j < width; j++) {
      const value = rng.nextGaussian();
      x[i * width + j] = value;
      dot += value * weights[j];
    }
    y[i] = dot + noiseStd * rng.nextGaussian();
  }
  return new DenseSplit(x, width, { kind: 'values', values: y, width: 1 });
}

/** Throws ERR_BAD_CONFIG unless `value` is an integer >= `min`. */
function checkCount(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `synthetic-linreg ${name} must be an integer >= ${min}, got ` +
        String(value),
      { [name]: value },
    );
  }
}

/** Builds the synthetic linear-regression data set. */
export function syntheticLinreg(
  options: SyntheticLinregOptions = {},
): SyntheticLinreg {
  const seed = options.seed ?? 1;
  const samples = options.samples ?? 10_000;
  const testSamples = options.testSamples ?? 1_000;
  const features = options.features ?? 1_024;
  const noiseStd = options.noiseStd ?? 0.1;
  checkCount('samples', samples, 1);
  checkCount('testSamples', testSamples, 1);
  checkCount('features', features, 1);
  if (!(noiseStd >= 0 && Number.isFinite(noiseStd))) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `synthetic-linreg noiseStd must be a finite number >= 0, got ${noiseStd}`,
      { noiseStd },
    );
  }

  // Separate streams, so the test split does not change with `samples`.
  const weightRng = new Rng(deriveSeed(seed, 0));
  const trueWeights = new Float32Array(features);
  const scale = 1 / Math.sqrt(features);
  for (let j = 0; j < features; j++) {
    trueWeights[j] = scale * weightRng.nextGaussian();
  }
  const train = drawSplit(
    new Rng(deriveSeed(seed, 1)),
    samples,
    trueWeights,
    noiseStd,
  );
  const test = drawSplit(
    new Rng(deriveSeed(seed, 2)),
    testSamples,
    trueWeights,
    noiseStd,
  );
  return {
    name: 'synthetic-linreg',
    task: 'regression',
    featureShape: [features],
    targetWidth: 1,
    train,
    test,
    trueWeights,
  };
}
