/**
 * MNIST-style image data sets (MNIST, Fashion-MNIST): four IDX files, read
 * from a folder, plain or gzipped. Node-only (reads files).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { topkError } from '../../shared/errors.ts';
import type { Dataset } from './dataset.ts';
import { parseIdx } from './idx.ts';
import { DenseSplit } from './splits.ts';

/** The four files of an MNIST-style data set, without any `.gz`. */
export const IDX_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** How an image data set is described to {@link loadImageDataset}. */
export interface ImageDatasetSpec {
  /** The name the data set is loaded by. */
  readonly name: string;
  /** The folder holding the four IDX files. */
  readonly folder: string;
  /** Class names, index = label. */
  readonly classNames: readonly string[];
  /**
   * Mean and standard deviation of the pixels (0..1) over the training
   * set: features are standardized with them, which speeds SGD up.
   */
  readonly pixelStats: { readonly mean: number; readonly std: number };
  /** Keep only the first N training samples (for quick runs). */
  readonly maxTrain?: number;
  /** Keep only the first N test samples. */
  readonly maxTest?: number;
}

/** True when `folder` holds all four files (plain or .gz). */
export function hasIdxFiles(folder: string): boolean {
  return Object.values(IDX_FILES).every(
    (file) =>
      existsSync(join(folder, file)) || existsSync(join(folder, `${file}.gz`)),
  );
}

/** Reads one IDX file, gunzipping `<file>.gz` when the plain one is absent. */
function readIdx(folder: string, file: string): ReturnType<typeof parseIdx> {
  const plain = join(folder, file);
  if (existsSync(plain)) return parseIdx(readFileSync(plain), plain);
  const gzipped = `${plain}.gz`;
  if (existsSync(gzipped)) {
    return parseIdx(gunzipSync(readFileSync(gzipped)), gzipped);
  }
  throw topkError(
    'ERR_MISSING_DEPENDENCY',
    `data file ${plain} (or ${file}.gz) is missing`,
    { folder, file },
  );
}

/** One split: images as bytes, standardized on gather; labels one-hot. */
function readSplit(
  folder: string,
  imagesFile: string,
  labelsFile: string,
  numClasses: number,
  max: number | undefined,
  stats: ImageDatasetSpec['pixelStats'],
): { split: DenseSplit; shape: number[] } {
  const images = readIdx(folder, imagesFile);
  const labels = readIdx(folder, labelsFile);
  const [count, rows, cols] = images.dims;
  if (images.dims.length !== 3 || labels.dims[0] !== count) {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      `${imagesFile} (${images.dims}) and ${labelsFile} (${labels.dims}) ` +
        'do not describe the same images',
      { folder },
    );
  }
  const kept = Math.min(count, max ?? count);
  const badLabel = labels.data.find((label) => label >= numClasses);
  if (badLabel !== undefined) {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      `${labelsFile} holds label ${badLabel}; expected 0..${numClasses - 1}`,
      { folder, label: badLabel },
    );
  }
  const pixels = rows * cols;
  const split = new DenseSplit(
    images.data.subarray(0, kept * pixels),
    pixels,
    {
      kind: 'classes',
      labels: labels.data.subarray(0, kept),
      numClasses,
    },
    1 / (255 * stats.std),
    -stats.mean / stats.std,
  );
  return { split, shape: [rows, cols, 1] };
}

/** Loads an MNIST-style data set from `spec.folder`. */
export function loadImageDataset(spec: ImageDatasetSpec): Dataset {
  const numClasses = spec.classNames.length;
  const { trainImages, trainLabels, testImages, testLabels } = IDX_FILES;
  const train = readSplit(
    spec.folder,
    trainImages,
    trainLabels,
    numClasses,
    spec.maxTrain,
    spec.pixelStats,
  );
  const test = readSplit(
    spec.folder,
    testImages,
    testLabels,
    numClasses,
    spec.maxTest,
    spec.pixelStats,
  );
  return {
    name: spec.name,
    task: 'classification',
    featureShape: train.shape,
    targetWidth: numClasses,
    classNames: spec.classNames,
    train: train.split,
    test: test.split,
  };
}
