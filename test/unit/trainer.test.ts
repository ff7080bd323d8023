import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { parseRoomConfig, type RoomConfigInput } from '../../shared/config.ts';
import { isTopkError } from '../../shared/errors.ts';
import { RingSimulator } from '../../shared/simulator.ts';
import type { Dataset } from '../../peer/data/dataset.ts';
import { loadDataset } from '../../peer/data/registry.ts';
import { lossKindForTask } from '../../peer/models/loss.ts';
import { createModelForDataset } from '../../peer/models/registry.ts';
import { batchTensors } from '../../peer/models/tensors.ts';
import {
  lossAndGradients,
  readWeights,
  writeWeights,
} from '../../peer/models/weights.ts';
import { initBackend } from '../../peer/tf/backend.ts';
import { BatchPlan } from '../../peer/training/batches.ts';
import { Trainer } from '../../peer/training/trainer.ts';

let mnist: Dataset;

before(async () => {
  await initBackend('wasm');
  mnist = await loadDataset('mnist', { maxTrain: 3000, maxTest: 500 });
});

function makeRing(
  peers: number,
  input: RoomConfigInput,
  dataset = mnist,
): { trainers: Trainer[]; simulator: RingSimulator } {
  const config = parseRoomConfig(input);
  const trainers = Array.from(
    { length: peers },
    (_, i) => new Trainer({ config, dataset, room: 'r', peerId: `peer-${i}` }),
  );
  return { trainers, simulator: new RingSimulator({ peers }) };
}

async function runSteps(
  trainers: Trainer[],
  simulator: RingSimulator,
  steps: number,
): Promise<number[]> {
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const records = await Promise.all(
      trainers.map((trainer, ringIndex) =>
        trainer.runStep({
          generation: 0,
          ringIndex,
          peers: trainers.length,
          link: simulator.links[ringIndex],
          firstStep: 0,
        }),
      ),
    );
    losses.push(records.reduce((a, r) => a + r.loss, 0) / records.length);
  }
  return losses;
}

describe('Trainer', () => {
  after(() => {
    tf.disposeVariables();
  });

  it('trains 3 peers to identical weights while the loss falls', async () => {
    const { trainers, simulator } = makeRing(3, {
      density: 0.01,
      learningRate: 0.1,
      batchSize: 32,
    });
    const losses = await runSteps(trainers, simulator, 40);
    const first = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
    assert.ok(last < first * 0.8, `loss ${first} -> ${last}`);
    const hashes = new Set(trainers.map((t) => t.modelHash()));
    assert.equal(hashes.size, 1);
    assert.equal(trainers[0].step, 40);
    for (const t of trainers) t.dispose();
  });

  it('at density 1 reproduces plain synchronous SGD step for step', async () => {
    const peers = 2;
    const lr = 0.05;
    const { trainers, simulator } = makeRing(peers, {
      density: 1,
      learningRate: lr,
      batchSize: 16,
    });

    // The reference: one model, the mean of both peers' batch gradients.
    const { model, lossKind } = createModelForDataset('mlp', mnist, 1);
    const weights = readWeights(model);
    const plans = Array.from(
      { length: peers },
      (_, ringIndex) =>
        new BatchPlan({
          datasetSize: mnist.train.size,
          batchSize: 16,
          seed: 1,
          generation: 0,
          ringIndex,
          peers,
        }),
    );
    for (let step = 0; step < 8; step++) {
      const mean = new Float64Array(weights.length);
      for (const plan of plans) {
        const { x, y } = batchTensors(
          mnist,
          mnist.train.gather(plan.batch(step)),
        );
        const { gradients } = lossAndGradients(model, lossKind, x, y);
        tf.dispose([x, y]);
        for (let i = 0; i < mean.length; i++) mean[i] += gradients[i] / peers;
      }
      for (let i = 0; i < weights.length; i++) weights[i] -= lr * mean[i];
      writeWeights(model, weights);
      await runSteps(trainers, simulator, 1);

      let maxError = 0;
      for (let i = 0; i < weights.length; i++) {
        const error = Math.abs(trainers[0].weights[i] - weights[i]);
        if (error > maxError) maxError = error;
      }
      assert.ok(maxError < 1e-5, `step ${step}: max |diff| ${maxError}`);
    }
    assert.equal(trainers[0].modelHash(), trainers[1].modelHash());
    model.dispose();
    for (const t of trainers) t.dispose();
  });

  it('leaks no tensor: the count is the same at step 10 and step 200', async () => {
    const { trainers, simulator } = makeRing(1, {
      density: 0.01,
      batchSize: 8,
    });
    await runSteps(trainers, simulator, 10);
    const atTen = tf.memory().numTensors;
    await runSteps(trainers, simulator, 190);
    assert.equal(tf.memory().numTensors, atTen);
    trainers[0].dispose();
  });

  it('puts an aborted step back into the residual and does not count it', async () => {
    const { trainers, simulator } = makeRing(2, {
      density: 0.01,
      batchSize: 8,
    });
    await runSteps(trainers, simulator, 3);
    const residualBefore = trainers[0].compressor.residualView().slice();
    const weightsBefore = trainers[0].weights.slice();

    const controller = new AbortController();
    // Peer 1 never joins this step; peer 0 is aborted while it waits.
    const pending = trainers[0].runStep(
      {
        generation: 0,
        ringIndex: 0,
        peers: 2,
        link: simulator.links[0],
        firstStep: 0,
      },
      controller.signal,
    );
    controller.abort('peer left');
    await assert.rejects(pending, (error) =>
      isTopkError(error, 'ERR_RING_ABORTED'),
    );

    assert.equal(trainers[0].step, 3);
    assert.deepEqual(trainers[0].weights, weightsBefore);
    // The residual now holds exactly acc = residual + lr * gradient of the
    // aborted step: what was selected and sent came back, nothing is lost.
    const plan = new BatchPlan({
      datasetSize: mnist.train.size,
      batchSize: 8,
      seed: 1,
      generation: 0,
      ringIndex: 0,
      peers: 2,
    });
    const { x, y } = batchTensors(mnist, mnist.train.gather(plan.batch(3)));
    const { gradients } = lossAndGradients(
      trainers[0].model,
      lossKindForTask(mnist.task),
      x,
      y,
    );
    tf.dispose([x, y]);
    const lr = trainers[0].config.learningRate;
    const residualAfter = trainers[0].compressor.residualView();
    let mismatches = 0;
    for (let i = 0; i < residualAfter.length; i++) {
      const acc = Math.fround(residualBefore[i] + lr * gradients[i]);
      if (residualAfter[i] !== acc) mismatches++;
    }
    assert.equal(mismatches, 0);
    for (const t of trainers) t.dispose();
  });
});
