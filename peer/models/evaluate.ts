/**
 * Loss and accuracy of a model on a data split, in batches. Runs in a
 * browser.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { topkError } from '../../shared/errors.ts';
import type { DataSplit, Dataset } from '../data/dataset.ts';
import { batchLoss, lossKindForTask } from './loss.ts';
import { batchTensors } from './tensors.ts';

/** The result of {@link evaluate}. */
export interface Evaluation {
  /** Mean loss per sample. */
  readonly loss: number;
  /** Share of samples classified right; absent for regression. */
  readonly accuracy?: number;
  /** Number of samples evaluated. */
  readonly samples: number;
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** The split to evaluate on. Default: the test split. */
  readonly split?: DataSplit;
  /** Samples per forward pass. Default 1,000. */
  readonly batchSize?: number;
  /** Evaluate the first N samples only. Default: all. */
  readonly maxSamples?: number;
}

/** Number of right answers in a batch of outputs. */
function correctCount(
  task: Dataset['task'],
  output: tf.Tensor,
  target: tf.Tensor,
): tf.Scalar {
  if (task === 'classification') {
    return tf.sum(
      tf.cast(tf.equal(tf.argMax(output, 1), tf.argMax(target, 1)), 'int32'),
    );
  }
  // Binary: a positive logit says 1.
  return tf.sum(
    tf.cast(tf.equal(tf.greater(output, 0), tf.greater(target, 0.5)), 'int32'),
  );
}

/** Evaluates `model` on `dataset` (its test split unless told otherwise). */
export function evaluate(
  model: tfl.LayersModel,
  dataset: Pick<Dataset, 'task' | 'featureShape' | 'targetWidth' | 'test'>,
  options: EvaluateOptions = {},
): Evaluation {
  const split = options.split ?? dataset.test;
  const batchSize = options.batchSize ?? 1000;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `evaluation batch size must be a positive integer, got ${batchSize}`,
      { batchSize },
    );
  }
  const samples = Math.min(split.size, options.maxSamples ?? split.size);
  const lossKind = lossKindForTask(dataset.task);
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < samples; start += batchSize) {
    const count = Math.min(batchSize, samples - start);
    const indices = Array.from({ length: count }, (_, i) => start + i);
    const { x, y } = batchTensors(dataset, split.gather(indices));
    try {
      const [loss, right] = tf.tidy(() => {
        const output = model.apply(x) as tf.Tensor;
        return [
          batchLoss(lossKind, output, y),
          dataset.task === 'regression'
            ? tf.scalar(0)
            : correctCount(dataset.task, output, y),
        ];
      });
      lossSum += loss.dataSync()[0] * count;
      correct += right.dataSync()[0];
      tf.dispose([loss, right]);
    } finally {
      tf.dispose([x, y]);
    }
  }
  const mean = (total: number): number =>
    samples === 0 ? NaN : total / samples;
  return dataset.task === 'regression'
    ? { loss: mean(lossSum), samples }
    : { loss: mean(lossSum), accuracy: mean(correct), samples };
}
