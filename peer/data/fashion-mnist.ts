/**
 * Fashion-MNIST, from the Debian package `dataset-fashion-mnist`: fetched
 * and unpacked into the cache by `fetch-fashion-mnist.ts`, or installed
 * system-wide under /usr/share/datasets. Node-only.
 */
import { join } from 'node:path';

import { topkError } from '../../shared/errors.ts';
import { cacheDir } from './cache.ts';
import type { Dataset } from './dataset.ts';
import { hasIdxFiles, loadImageDataset } from './images.ts';

/** Where `apt-get install dataset-fashion-mnist` puts the files. */
export const SYSTEM_FASHION_MNIST = '/usr/share/datasets/fashion-mnist';

/** The command that fetches the data set into the cache. */
export const FETCH_FASHION_MNIST_COMMAND =
  'node --import tsx peer/data/fetch-fashion-mnist.ts';

/** The ten clothing classes, index = label. */
const CLOTHES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** The cache folder the fetch script fills. */
export function fashionMnistCacheFolder(cache = cacheDir()): string {
  return join(cache, 'fashion-mnist');
}

/** Options of {@link loadFashionMnist}. */
export interface FashionMnistOptions {
  /** Read the IDX files from here instead of searching for them. */
  readonly folder?: string;
  /** The cache folder to search (default {@link cacheDir}). */
  readonly cacheDir?: string;
  /** Keep only the first N training samples. */
  readonly maxTrain?: number;
  /** Keep only the first N test samples. */
  readonly maxTest?: number;
}

/**
 * Loads Fashion-MNIST from `options.folder`, else the cache, else the
 * system folder. Throws ERR_MISSING_DEPENDENCY, naming the command that
 * fetches it, when none holds the files.
 */
export function loadFashionMnist(options: FashionMnistOptions = {}): Dataset {
  const candidates =
    options.folder !== undefined
      ? [options.folder]
      : [fashionMnistCacheFolder(options.cacheDir), SYSTEM_FASHION_MNIST];
  const folder = candidates.find(hasIdxFiles);
  if (folder === undefined) {
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      `data set fashion-mnist is not in ${candidates.join(' or ')}; fetch ` +
        `it (31 MB, Debian package dataset-fashion-mnist) with ` +
        `\`${FETCH_FASHION_MNIST_COMMAND}\``,
      { searched: candidates, fetch: FETCH_FASHION_MNIST_COMMAND },
    );
  }
  return loadImageDataset({
    name: 'fashion-mnist',
    folder,
    classNames: CLOTHES,
    pixelStats: { mean: 0.286, std: 0.353 },
    maxTrain: options.maxTrain,
    maxTest: options.maxTest,
  });
}
