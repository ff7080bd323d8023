import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { runConvBench } from '../../peer/bench/conv.ts';

describe('bench conv', () => {
  it('times a training step on wasm and cpu and leaves wasm current', async () => {
    const options = {
      model: 'cnn' as const,
      batch: 2,
      repeat: 2,
      cpuRepeat: 1,
      warmup: 1,
      seed: 1,
    };
    await runConvBench({ ...options, model: 'mlp' });
    const tensorsBefore = tf.memory().numTensors;
    const report = await runConvBench(options);
    assert.equal(tf.memory().numTensors, tensorsBefore);
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(report.model, 'cnn');
    assert.equal(report.parameters, 43_626);
    assert.ok(report.msPerStepWasm > 0 && report.msPerStepCpu > 0);
    assert.equal(report.speedup, report.msPerStepCpu / report.msPerStepWasm);
  });
});
