/**
 * The loss of each task, on a model's logits. Runs in a browser.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { Task } from '../data/dataset.ts';

/** The losses the models train with. */
export type LossKind =
  'softmax-cross-entropy' | 'sigmoid-cross-entropy' | 'mean-squared-error';

/** The loss that fits `task`. */
export function lossKindForTask(task: Task): LossKind {
  switch (task) {
    case 'classification':
      return 'softmax-cross-entropy';
    case 'binary':
      return 'sigmoid-cross-entropy';
    case 'regression':
      return 'mean-squared-error';
  }
}

/**
 * The mean loss over a batch: `output` holds the model's logits (or
 * predictions, for regression), `target` one-hot rows, 0/1 or values.
 */
export function batchLoss(
  kind: LossKind,
  output: tf.Tensor,
  target: tf.Tensor,
): tf.Scalar {
  switch (kind) {
    case 'softmax-cross-entropy':
      return tf.losses.softmaxCrossEntropy(target, output);
    case 'sigmoid-cross-entropy':
      return tf.losses.sigmoidCrossEntropy(target, output);
    case 'mean-squared-error':
      return tf.losses.meanSquaredError(target, output);
  }
}
