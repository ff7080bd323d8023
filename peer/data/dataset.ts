/**
 * The shape of a data set as training code sees it: two splits that turn
 * a list of sample indices into a batch of plain Float32Arrays. Loaders
 * (some Node-only) build these; models, sharding and the training loop
 * only read them, so this module runs in a browser too.
 */

/** What a data set's targets mean, which fixes the loss. */
export type Task =
  /** One of `numClasses` classes; targets are one-hot rows. */
  | 'classification'
  /** Yes or no; targets are 0 or 1. */
  | 'binary'
  /** Real values; targets are numbers. */
  | 'regression';

/** A batch of samples, row-major. */
export interface Batch {
  /** Number of samples. */
  readonly size: number;
  /** `size * featureSize` features, sample after sample. */
  readonly x: Float32Array;
  /** `size * targetWidth` targets, sample after sample. */
  readonly y: Float32Array;
}

/** One split (train or test) of a data set. */
export interface DataSplit {
  /** Number of samples. */
  readonly size: number;
  /** The samples at `indices`, in that order. */
  gather(indices: ArrayLike<number>): Batch;
}

/** A data set: its geometry, its task and its two splits. */
export interface Dataset {
  /** The name it was loaded by. */
  readonly name: string;
  /** What the targets mean. */
  readonly task: Task;
  /** Shape of one sample's features, e.g. [28, 28, 1] or [1024]. */
  readonly featureShape: readonly number[];
  /** Width of one sample's target row: the class count, or 1. */
  readonly targetWidth: number;
  /** Names of the classes, for classification and binary tasks. */
  readonly classNames?: readonly string[];
  /** Training samples, to be sharded across the ring. */
  readonly train: DataSplit;
  /** Held-out samples for evaluation. */
  readonly test: DataSplit;
}

/** Number of features in one sample of `dataset`. */
export function featureSize(dataset: Pick<Dataset, 'featureShape'>): number {
  return dataset.featureShape.reduce((a, b) => a * b, 1);
}

/** The indices 0, 1, ..., n - 1. */
export function range(n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}
