import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { Rng } from '../../peer/data/rng.ts';
import { initBackend } from '../../peer/tf/backend.ts';
import { registerWasmGradientKernels } from '../../peer/tf/wasm-kernels.ts';

// Every kernel this project registers for the wasm backend must agree with
// the CPU backend's kernel on the same inputs, for the strides, paddings
// and layouts tf.layers uses, and must leave no tensor behind.

type Pad =
  'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];

interface ConvCase {
  readonly x: [number, number, number, number];
  readonly filter: [number, number, number, number];
  readonly strides: number | [number, number];
  readonly pad: Pad;
  readonly dataFormat: 'NHWC' | 'NCHW';
}

const CASES: ConvCase[] = [
  {
    x: [2, 7, 7, 3],
    filter: [3, 3, 3, 4],
    strides: 1,
    pad: 'same',
    dataFormat: 'NHWC',
  },
  {
    x: [2, 8, 8, 3],
    filter: [3, 3, 3, 5],
    strides: 2,
    pad: 'same',
    dataFormat: 'NHWC',
  },
  {
    x: [3, 9, 7, 2],
    filter: [3, 2, 2, 3],
    strides: 2,
    pad: 'valid',
    dataFormat: 'NHWC',
  },
  {
    x: [1, 10, 10, 2],
    filter: [3, 3, 2, 2],
    strides: 2,
    pad: 'valid',
    dataFormat: 'NHWC',
  },
  {
    x: [2, 5, 5, 1],
    filter: [1, 1, 1, 2],
    strides: 1,
    pad: 'valid',
    dataFormat: 'NHWC',
  },
  {
    x: [2, 6, 6, 4],
    filter: [5, 5, 4, 2],
    strides: 1,
    pad: 'same',
    dataFormat: 'NHWC',
  },
  {
    x: [2, 6, 9, 2],
    filter: [2, 3, 2, 2],
    strides: [1, 2],
    pad: 'same',
    dataFormat: 'NHWC',
  },
  {
    x: [2, 6, 6, 2],
    filter: [2, 2, 2, 2],
    strides: [1, 2],
    pad: [
      [0, 0],
      [1, 0],
      [0, 1],
      [0, 0],
    ],
    dataFormat: 'NHWC',
  },
  {
    x: [4, 28, 28, 16],
    filter: [3, 3, 16, 32],
    strides: 2,
    pad: 'same',
    dataFormat: 'NHWC',
  },
  {
    x: [2, 3, 6, 6],
    filter: [3, 3, 3, 4],
    strides: 1,
    pad: 'same',
    dataFormat: 'NCHW',
  },
  {
    x: [2, 3, 7, 7],
    filter: [3, 3, 3, 4],
    strides: 2,
    pad: 'valid',
    dataFormat: 'NCHW',
  },
];

/** Random standard-normal values from a seeded generator. */
function randomValues(rng: Rng, shape: readonly number[]): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) out[i] = rng.nextGaussian();
  return out;
}

/** The output shape of the forward convolution of `c`. */
function outputShape(c: ConvCase): number[] {
  const channelsFirst = c.dataFormat === 'NCHW';
  const info = tf.backend_util.computeConv2DInfo(
    c.x,
    c.filter,
    c.strides,
    1,
    c.pad,
    undefined,
    false,
    channelsFirst ? 'channelsFirst' : 'channelsLast',
  );
  return channelsFirst
    ? [info.batchSize, info.outChannels, info.outHeight, info.outWidth]
    : [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
}

/** Runs kernel `name` on `backend` and returns its values. */
async function runOn(
  backend: string,
  name: string,
  inputs: Record<string, { values: Float32Array; shape: number[] }>,
  attrs: Record<string, unknown>,
): Promise<Float32Array> {
  await tf.setBackend(backend);
  const tensors = Object.fromEntries(
    Object.entries(inputs).map(([key, v]) => [
      key,
      tf.tensor(v.values, v.shape),
    ]),
  );
  const numTensors = tf.memory().numTensors;
  const out = tf
    .engine()
    .runKernel(name, tensors, attrs as tf.NamedAttrMap) as tf.Tensor;
  const values = out.dataSync() as Float32Array;
  out.dispose();
  assert.equal(
    tf.memory().numTensors,
    numTensors,
    `${name} leaked tensors on ${backend}`,
  );
  tf.dispose(Object.values(tensors));
  return values;
}

/** Asserts `actual` matches `expected` to float32 accumulation error. */
function assertClose(
  actual: Float32Array,
  expected: Float32Array,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 1;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    assert.ok(
      diff <= 1e-4 * scale,
      `${what}: entry ${i} is ${actual[i]}, cpu says ${expected[i]}`,
    );
  }
}

/** A readable name of a case. */
function label(c: ConvCase): string {
  return `x ${c.x} filter ${c.filter} strides ${String(c.strides)} pad ${JSON.stringify(c.pad)} ${c.dataFormat}`;
}

before(async () => {
  await initBackend('wasm');
});

describe('wasm gradient kernels', () => {
  it('registering again changes nothing', () => {
    assert.deepEqual(registerWasmGradientKernels(), []);
  });

  for (const [index, c] of CASES.entries()) {
    it(`Conv2DBackpropFilter matches cpu: ${label(c)}`, async () => {
      const rng = new Rng(100 + index);
      const dyShape = outputShape(c);
      const inputs = {
        x: { values: randomValues(rng, c.x), shape: c.x },
        dy: { values: randomValues(rng, dyShape), shape: dyShape },
      };
      const attrs = {
        strides: c.strides,
        pad: c.pad,
        dataFormat: c.dataFormat,
        filterShape: c.filter,
      };
      const wasm = await runOn('wasm', 'Conv2DBackpropFilter', inputs, attrs);
      const cpu = await runOn('cpu', 'Conv2DBackpropFilter', inputs, attrs);
      assertClose(wasm, cpu, label(c));
    });

    it(`Conv2DBackpropInput matches cpu: ${label(c)}`, async () => {
      const rng = new Rng(200 + index);
      const dyShape = outputShape(c);
      const inputs = {
        dy: { values: randomValues(rng, dyShape), shape: dyShape },
        filter: { values: randomValues(rng, c.filter), shape: c.filter },
      };
      const attrs = {
        strides: c.strides,
        pad: c.pad,
        dataFormat: c.dataFormat,
        inputShape: c.x,
      };
      const wasm = await runOn('wasm', 'Conv2DBackpropInput', inputs, attrs);
      const cpu = await runOn('cpu', 'Conv2DBackpropInput', inputs, attrs);
      assertClose(wasm, cpu, label(c));
    });
  }

  const MATMUL_CASES: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[2, 6, 4], [2, 3, 6], true, true],
    [[2, 6, 4], [6, 3], true, false],
    [[64, 784], [64, 256], true, false],
  ];
  for (const [
    index,
    [a, b, transposeA, transposeB],
  ] of MATMUL_CASES.entries()) {
    it(`BatchMatMul matches cpu: a ${a} b ${b} transposeA ${transposeA} transposeB ${transposeB}`, async () => {
      const rng = new Rng(300 + index);
      const inputs = {
        a: { values: randomValues(rng, a), shape: a },
        b: { values: randomValues(rng, b), shape: b },
      };
      const attrs = { transposeA, transposeB };
      const wasm = await runOn('wasm', 'BatchMatMul', inputs, attrs);
      const cpu = await runOn('cpu', 'BatchMatMul', inputs, attrs);
      assertClose(wasm, cpu, `${a} x ${b}`);
    });
  }

  it('the gradients of conv2d through tf.grads match cpu', async () => {
    const rng = new Rng(7);
    const xValues = randomValues(rng, [3, 10, 10, 2]);
    const fValues = randomValues(rng, [3, 3, 2, 4]);
    const gradients = async (backend: string): Promise<Float32Array[]> => {
      await tf.setBackend(backend);
      const x = tf.tensor4d(xValues, [3, 10, 10, 2]);
      const f = tf.tensor4d(fValues, [3, 3, 2, 4]);
      const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(
          tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same')),
        ),
      )([x, f]);
      const out = [
        dx.dataSync() as Float32Array,
        df.dataSync() as Float32Array,
      ];
      tf.dispose([x, f, dx, df]);
      return out;
    };
    const wasm = await gradients('wasm');
    const cpu = await gradients('cpu');
    assertClose(wasm[0], cpu[0], 'dx');
    assertClose(wasm[1], cpu[1], 'dfilter');
  });
});
