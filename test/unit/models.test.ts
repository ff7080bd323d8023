import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { isTopkError } from '../../shared/errors.ts';
import type { Dataset } from '../../peer/data/dataset.ts';
import { loadDataset } from '../../peer/data/registry.ts';
import { Rng } from '../../peer/data/rng.ts';
import { DenseSplit } from '../../peer/data/splits.ts';
import { evaluate } from '../../peer/models/evaluate.ts';
import {
  fingerprintKey,
  modelFingerprint,
  modelHash,
} from '../../peer/models/fingerprint.ts';
import { fnv1a64 } from '../../peer/models/hash.ts';
import {
  createModel,
  createModelForDataset,
  MODEL_NAMES,
} from '../../peer/models/registry.ts';
import { batchTensors } from '../../peer/models/tensors.ts';
import {
  applyUpdate,
  lossAndGradients,
  parameterCount,
  readWeights,
  writeWeights,
} from '../../peer/models/weights.ts';
import { initBackend } from '../../peer/tf/backend.ts';

// Models: built by name with identical weights from a seed, flattened to one
// vector in a fixed order, trained by plain SGD without leaking tensors.

const IMAGE = { inputShape: [28, 28, 1], outputUnits: 10 };
const SHAPES = {
  linreg: { inputShape: [16], outputUnits: 1 },
  logreg: { inputShape: [40], outputUnits: 1 },
  mlp: IMAGE,
  cnn: IMAGE,
} as const;

let mnist: Dataset;

before(async () => {
  await initBackend('wasm');
  mnist = await loadDataset('mnist', { maxTrain: 512, maxTest: 256 });
});

/** v - u in float32, the reference for applyUpdate. */
function subtract(v: Float32Array, u: Float32Array): Float32Array {
  return v.map((value, i) => Math.fround(value - u[i]));
}

describe('models', () => {
  for (const name of MODEL_NAMES) {
    it(`${name} builds, predicts the right shape and starts from its seed`, () => {
      const shape = SHAPES[name];
      const a = createModel(name, { ...shape, seed: 7 });
      const b = createModel(name, { ...shape, seed: 7 });
      const output = tf.tidy(
        () =>
          (a.predict(tf.zeros([3, ...shape.inputShape])) as tf.Tensor).shape,
      );
      assert.deepEqual(output, [3, shape.outputUnits]);

      assert.equal(modelHash(a), modelHash(b));
      assert.deepEqual(readWeights(a), readWeights(b));
      // Names are the same even though this process built the model twice.
      assert.deepEqual(modelFingerprint(a), modelFingerprint(b));
      assert.doesNotMatch(fingerprintKey(modelFingerprint(b)), /_\d+[:/]/);
      a.dispose();
      b.dispose();
    });
  }

  it('a different seed gives different initial weights (random inits)', () => {
    for (const name of ['mlp', 'cnn'] as const) {
      const a = createModel(name, { ...SHAPES[name], seed: 1 });
      const b = createModel(name, { ...SHAPES[name], seed: 2 });
      assert.notEqual(modelHash(a), modelHash(b), name);
      a.dispose();
      b.dispose();
    }
  });

  it('the cnn has a residual (add) connection', () => {
    const model = createModel('cnn', { ...IMAGE, seed: 1 });
    const classes = model.layers.map((layer) => layer.getClassName());
    assert.ok(classes.includes('Add'), classes.join(','));
    model.dispose();
  });

  it('refuses unknown names and shapes a model cannot take', () => {
    assert.throws(
      () => createModel('resnet', { ...IMAGE, seed: 1 }),
      (e) =>
        isTopkError(e, 'ERR_UNKNOWN_NAME') &&
        (e.context.known as string[]).includes('cnn'),
    );
    assert.throws(
      () => createModel('cnn', { inputShape: [784], outputUnits: 10, seed: 1 }),
      (e) => isTopkError(e, 'ERR_BAD_CONFIG'),
    );
    assert.throws(
      () => createModelForDataset('linreg', mnist, 1),
      (e) => isTopkError(e, 'ERR_BAD_CONFIG'),
    );
  });

  it('reads, writes and updates the flat weight vector in a fixed order', () => {
    const model = createModel('mlp', { ...IMAGE, seed: 3 });
    const n = parameterCount(model);
    assert.equal(n, 784 * 256 + 256 + 256 * 10 + 10);
    const rng = new Rng(1);
    const values = Float32Array.from({ length: n }, () => rng.nextGaussian());
    writeWeights(model, values);
    assert.deepEqual(readWeights(model), values);

    const update = Float32Array.from(
      { length: n },
      () => 0.01 * rng.nextGaussian(),
    );
    const before = modelHash(model);
    applyUpdate(model, update);
    assert.deepEqual(readWeights(model), subtract(values, update));
    assert.notEqual(modelHash(model), before);
    // The first weights are the hidden kernel's, the last the logits' bias.
    assert.equal(modelFingerprint(model).variables[0].name, 'hidden/kernel');
    assert.equal(modelFingerprint(model).variables.at(-1)?.name, 'logits/bias');

    assert.throws(
      () => applyUpdate(model, new Float32Array(n - 1)),
      (e) => isTopkError(e, 'ERR_BAD_CONFIG'),
    );
    model.dispose();
  });

  it('modelHash is FNV-1a 64 of the weight bytes in flat order', () => {
    const model = createModel('linreg', {
      inputShape: [3],
      outputUnits: 1,
      seed: 1,
    });
    writeWeights(model, Float32Array.from([1, 2, 3, 4]));
    const bytes = new Uint8Array(Float32Array.from([1, 2, 3, 4]).buffer);
    assert.equal(modelHash(model), fnv1a64(bytes));
    assert.equal(
      fnv1a64(new TextEncoder().encode('foobar')),
      '85944171f73967e8',
    );
    assert.equal(fnv1a64(new Uint8Array(0)), 'cbf29ce484222325');
    model.dispose();
  });

  it('linreg gradients match the closed form, in flat order', () => {
    // Zero weights: d/dw mean((x.w + b - y)^2) = -2/N X^T y, d/db = -2 mean(y).
    const model = createModel('linreg', {
      inputShape: [3],
      outputUnits: 1,
      seed: 1,
    });
    const xs = [
      [1, 2, 3],
      [0, -1, 2],
    ];
    const ys = [1, -2];
    const x = tf.tensor2d(xs);
    const y = tf.tensor2d(ys, [2, 1]);
    const { loss, gradients } = lossAndGradients(
      model,
      'mean-squared-error',
      x,
      y,
    );
    tf.dispose([x, y]);
    assert.ok(Math.abs(loss - (1 + 4) / 2) < 1e-6);
    const expected = [0, 1, 2].map(
      (j) => (-2 / 2) * (xs[0][j] * ys[0] + xs[1][j] * ys[1]),
    );
    expected.push((-2 / 2) * (ys[0] + ys[1]));
    gradients.forEach((g, i) =>
      assert.ok(Math.abs(g - expected[i]) < 1e-5, `entry ${i}`),
    );
    model.dispose();
  });

  it('a few SGD steps of mlp on MNIST reduce the loss', () => {
    const { model, lossKind } = createModelForDataset('mlp', mnist, 5);
    const batch = mnist.train.gather(Array.from({ length: 64 }, (_, i) => i));
    const { x, y } = batchTensors(mnist, batch);
    const gradients = new Float32Array(parameterCount(model));
    const losses: number[] = [];
    for (let step = 0; step < 10; step++) {
      const result = lossAndGradients(model, lossKind, x, y, gradients);
      losses.push(result.loss);
      applyUpdate(
        model,
        gradients.map((g) => 0.1 * g),
      );
    }
    tf.dispose([x, y]);
    assert.ok(losses[9] < losses[0] / 2, `losses ${losses.join(', ')}`);
    model.dispose();
  });

  it('evaluates loss and accuracy in batches', () => {
    const { model } = createModelForDataset('cnn', mnist, 5);
    const result = evaluate(model, mnist, { batchSize: 100 });
    assert.equal(result.samples, 256);
    // Zero logits: loss ln(10) and argmax class 0 for every sample.
    assert.ok(Math.abs(result.loss - Math.log(10)) < 1e-5);
    assert.ok(mnist.test instanceof DenseSplit);
    const { targets } = mnist.test;
    assert.ok(targets.kind === 'classes');
    const zeros = targets.labels.filter((label) => label === 0).length;
    assert.equal(result.accuracy, zeros / 256);
    model.dispose();
  });

  it('training leaks no tensors: the count at step 10 equals the count at step 200 (case 15)', () => {
    const { model, lossKind } = createModelForDataset('mlp', mnist, 9);
    const gradients = new Float32Array(parameterCount(model));
    const update = new Float32Array(gradients.length);
    const rng = new Rng(4);
    let atStep10 = -1;
    for (let step = 1; step <= 200; step++) {
      const indices = Array.from({ length: 16 }, () =>
        rng.nextInt(mnist.train.size),
      );
      const { x, y } = batchTensors(mnist, mnist.train.gather(indices));
      lossAndGradients(model, lossKind, x, y, gradients);
      tf.dispose([x, y]);
      for (let i = 0; i < update.length; i++) update[i] = 0.05 * gradients[i];
      applyUpdate(model, update);
      modelHash(model);
      if (step % 50 === 0) evaluate(model, mnist, { maxSamples: 64 });
      if (step === 10) atStep10 = tf.memory().numTensors;
    }
    assert.equal(tf.memory().numTensors, atStep10);
    model.dispose();
  });

  it('cnn trains on wasm with the registered gradient kernels', () => {
    const { model, lossKind } = createModelForDataset('cnn', mnist, 5);
    const { x, y } = batchTensors(
      mnist,
      mnist.train.gather(Array.from({ length: 32 }, (_, i) => i)),
    );
    const gradients = new Float32Array(parameterCount(model));
    const first = lossAndGradients(model, lossKind, x, y, gradients).loss;
    for (let step = 0; step < 5; step++) {
      applyUpdate(
        model,
        gradients.map((g) => 0.1 * g),
      );
      lossAndGradients(model, lossKind, x, y, gradients);
    }
    const last = lossAndGradients(model, lossKind, x, y, gradients).loss;
    tf.dispose([x, y]);
    assert.ok(last < first, `loss ${first} -> ${last}`);
    model.dispose();
  });
});
