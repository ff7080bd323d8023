import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { runTopkBench } from '../../peer/bench/topk.ts';

describe('bench topk', () => {
  it('reports every figure, agrees with exact and leaks no tensor', async () => {
    const options = {
      size: 50_000,
      density: 0.002,
      repeat: 2,
      warmup: 1,
      seed: 3,
      backend: 'wasm' as const,
    };
    await runTopkBench({ ...options, repeat: 1, warmup: 0 });
    const tensorsBefore = tf.memory().numTensors;

    const report = await runTopkBench(options);
    assert.equal(tf.memory().numTensors, tensorsBefore);
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(report.size, 50_000);
    assert.equal(report.k, 100);
    assert.equal(report.exact, true);
    for (const figure of [
      report.msSelect,
      report.msExact,
      report.msPass,
      report.msTfTopk,
    ]) {
      assert.ok(typeof figure === 'number' && figure >= 0);
    }
    assert.equal(report.ratioToPass, report.msSelect / report.msPass);
  });

  it('skips tfjs with backend none', async () => {
    const report = await runTopkBench({
      size: 1000,
      density: 0,
      repeat: 1,
      warmup: 0,
      seed: 1,
      backend: 'none',
    });
    assert.equal(report.k, 0);
    assert.equal(report.msTfTopk, null);
    assert.equal(report.speedupOverTf, null);
    assert.equal(report.exact, true);
  });
});
