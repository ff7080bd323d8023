/**
 * Data sets by name. Node-only: some loaders read files or import
 * optional packages. A browser tab gets its data another way.
 */
import { topkError } from '../../shared/errors.ts';
import type { Dataset } from './dataset.ts';
import { loadFashionMnist } from './fashion-mnist.ts';
import { loadMnist } from './mnist.ts';
import { loadSpam } from './spam.ts';
import { syntheticLinreg } from './synthetic-linreg.ts';

/** The names {@link loadDataset} knows. */
export const DATASET_NAMES = [
  'mnist',
  'fashion-mnist',
  'spam',
  'synthetic-linreg',
] as const;

/** A known data set name. */
export type DatasetName = (typeof DATASET_NAMES)[number];

/** Options every loader understands (each ignores what it has no use for). */
export interface LoadOptions {
  /** Seed of generated data and of seeded splits. Default 1. */
  readonly seed?: number;
  /** Keep only the first N training samples (quick runs, tests). */
  readonly maxTrain?: number;
  /** Keep only the first N test samples. */
  readonly maxTest?: number;
  /** Cache folder for fetched data (default: see cache.ts). */
  readonly cacheDir?: string;
}

/** True when `name` is a known data set. */
export function isDatasetName(name: string): name is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(name);
}

/**
 * Loads the data set `name`. Throws ERR_UNKNOWN_NAME for a name outside
 * {@link DATASET_NAMES} and ERR_MISSING_DEPENDENCY, with the command that
 * fixes it, when the data is not on this machine.
 */
export async function loadDataset(
  name: string,
  options: LoadOptions = {},
): Promise<Dataset> {
  if (!isDatasetName(name)) {
    throw topkError(
      'ERR_UNKNOWN_NAME',
      `unknown data set ${JSON.stringify(name)}; known data sets: ` +
        DATASET_NAMES.join(', '),
      { name, known: DATASET_NAMES },
    );
  }
  const { seed, maxTrain, maxTest, cacheDir } = options;
  switch (name) {
    case 'mnist':
      return loadMnist({ maxTrain, maxTest });
    case 'fashion-mnist':
      return loadFashionMnist({ cacheDir, maxTrain, maxTest });
    case 'spam':
      return loadSpam({ seed });
    case 'synthetic-linreg':
      return syntheticLinreg({
        seed,
        samples: maxTrain,
        testSamples: maxTest,
      });
  }
}
