/**
 * A model's trainable variables as one flat vector, in a fixed order (the
 * order of `model.trainableWeights`: layer by layer, kernel before bias):
 * the vector Algorithm 1 compresses, all-reduces and applies. Runs in a
 * browser.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { topkError } from '../../shared/errors.ts';
import { batchLoss, type LossKind } from './loss.ts';

/** The model's trainable tf.Variables, in flat-vector order. */
export function trainableVariables(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((weight) => weight.read() as tf.Variable);
}

/** Number of trainable parameters: the length of the flat vector. */
export function parameterCount(model: tfl.LayersModel): number {
  return trainableVariables(model).reduce((n, v) => n + v.size, 0);
}

/** Throws ERR_BAD_CONFIG unless `vector` has `expected` entries. */
function checkLength(what: string, vector: Float32Array, expected: number) {
  if (vector.length !== expected) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `${what} has ${vector.length} entries; the model has ${expected} ` +
        'parameters',
      { length: vector.length, expected },
    );
  }
}

/** Every trainable weight, flattened into `out` (allocated if absent). */
export function readWeights(
  model: tfl.LayersModel,
  out = new Float32Array(parameterCount(model)),
): Float32Array {
  const variables = trainableVariables(model);
  checkLength('the weight buffer', out, parameterCount(model));
  let offset = 0;
  for (const variable of variables) {
    out.set(variable.dataSync() as Float32Array, offset);
    offset += variable.size;
  }
  return out;
}

/** Sets every trainable weight from the flat vector `values`. */
export function writeWeights(
  model: tfl.LayersModel,
  values: Float32Array,
): void {
  const variables = trainableVariables(model);
  checkLength('the weight vector', values, parameterCount(model));
  let offset = 0;
  for (const variable of variables) {
    const slice = values.slice(offset, offset + variable.size);
    tf.tidy(() => variable.assign(tf.tensor(slice, variable.shape)));
    offset += variable.size;
  }
}

/**
 * v = v - update, for the flat `update` (Algorithm 1, step 5). The
 * subtraction runs in JS on Float32Arrays rather than on the backend, so
 * it is exactly IEEE float32 on every backend: peers on wasm, cpu, a GPU
 * or in a browser keep bit-identical weights.
 */
export function applyUpdate(
  model: tfl.LayersModel,
  update: Float32Array,
): void {
  const variables = trainableVariables(model);
  checkLength('the update', update, parameterCount(model));
  let offset = 0;
  for (const variable of variables) {
    const next = new Float32Array(variable.dataSync() as Float32Array);
    for (let i = 0; i < next.length; i++) next[i] -= update[offset + i];
    tf.tidy(() => variable.assign(tf.tensor(next, variable.shape)));
    offset += variable.size;
  }
}

/** The loss of a batch and the flat gradient of every trainable weight. */
export interface LossAndGradients {
  /** Mean loss over the batch. */
  readonly loss: number;
  /** d loss / d weights, in flat-vector order. */
  readonly gradients: Float32Array;
}

/**
 * Computes the batch loss of `model` on (x, y) and its gradient with
 * respect to every trainable weight, flattened into `out` (allocated if
 * absent). Leaves no tensor behind; x and y stay the caller's.
 */
export function lossAndGradients(
  model: tfl.LayersModel,
  lossKind: LossKind,
  x: tf.Tensor,
  y: tf.Tensor,
  out = new Float32Array(parameterCount(model)),
): LossAndGradients {
  const variables = trainableVariables(model);
  checkLength('the gradient buffer', out, parameterCount(model));
  const { value, grads } = tf.variableGrads(
    () => batchLoss(lossKind, model.apply(x) as tf.Tensor, y),
    variables,
  );
  try {
    let offset = 0;
    for (const variable of variables) {
      const grad = grads[variable.name];
      // A weight the loss does not reach gets no gradient: zero it.
      if (grad === undefined) out.fill(0, offset, offset + variable.size);
      else out.set(grad.dataSync() as Float32Array, offset);
      offset += variable.size;
    }
    return { loss: value.dataSync()[0], gradients: out };
  } finally {
    value.dispose();
    tf.dispose(grads);
  }
}
