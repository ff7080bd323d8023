/**
 * Batches of plain arrays to tensors of a model's shapes. Runs in a
 * browser.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { Batch, Dataset } from '../data/dataset.ts';

/** A batch as tensors; the caller disposes both. */
export interface TensorBatch {
  readonly x: tf.Tensor;
  readonly y: tf.Tensor2D;
}

/** Wraps `batch` in tensors shaped for `dataset`'s models. */
export function batchTensors(
  dataset: Pick<Dataset, 'featureShape' | 'targetWidth'>,
  batch: Batch,
): TensorBatch {
  return {
    x: tf.tensor(batch.x, [batch.size, ...dataset.featureShape]),
    y: tf.tensor2d(batch.y, [batch.size, dataset.targetWidth]),
  };
}
