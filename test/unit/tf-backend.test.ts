import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { before, describe, it } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { isTopkError } from '../../shared/errors.ts';
import {
  BACKEND_CHOICES,
  initBackend,
  NATIVE_MISSING_MESSAGE,
  NATIVE_PACKAGES,
} from '../../peer/tf/backend.ts';

// Backend selection: auto picks the best available, tensorflow explains how
// to install itself, unknown names are refused, and starting wasm leaves
// Node's crash reporting alone.

/** True when a package of the native backend is installed here. */
function nativeInstalled(): boolean {
  const require = createRequire(import.meta.url);
  return NATIVE_PACKAGES.some((name) => {
    try {
      require.resolve(name);
      return true;
    } catch {
      return false;
    }
  });
}

/** Listeners of the process events the wasm runtime hooks. */
function crashListenerCounts(): number[] {
  return [
    process.listenerCount('uncaughtException'),
    process.listenerCount('unhandledRejection'),
  ];
}

describe('initBackend', () => {
  // Counted inside the suite: node:test adds its own listeners once tests
  // start running.
  let countsBeforeWasm: number[] = [];
  before(() => {
    countsBeforeWasm = crashListenerCounts();
  });

  it('auto picks wasm when no native backend is installed, and says so', async () => {
    const name = await initBackend('auto');
    assert.equal(name, nativeInstalled() ? 'tensorflow' : 'wasm');
    assert.equal(tf.getBackend(), name);
  });

  it('starts wasm and cpu on request', async () => {
    assert.equal(await initBackend('cpu'), 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    assert.equal(await initBackend('wasm'), 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    const sum = tf.add(tf.tensor([1, 2]), tf.tensor([3, 4]));
    assert.deepEqual(Array.from(sum.dataSync()), [4, 6]);
    sum.dispose();
  });

  it(
    'tensorflow without its package fails with the install command',
    { skip: nativeInstalled() && 'a native backend is installed here' },
    async () => {
      await assert.rejects(initBackend('tensorflow'), (error) => {
        assert.ok(isTopkError(error, 'ERR_MISSING_DEPENDENCY'), String(error));
        assert.equal(error.message, NATIVE_MISSING_MESSAGE);
        assert.equal(
          error.context.install,
          'npm install @tensorflow/tfjs-node',
        );
        return true;
      });
      // The backend in use before the failed attempt stays in use.
      assert.equal(tf.getBackend(), 'wasm');
    },
  );

  it('refuses an unknown backend, listing the known ones', async () => {
    await assert.rejects(initBackend('webgpu'), (error) => {
      assert.ok(isTopkError(error, 'ERR_UNKNOWN_NAME'), String(error));
      assert.deepEqual(error.context.known, BACKEND_CHOICES);
      return true;
    });
  });

  it('leaves no wasm runtime hooks on process crash events', () => {
    // The Emscripten glue hooks these events when wasm first starts, in the
    // first test above; its hooks would turn every later crash report into
    // a page of minified glue code.
    assert.deepEqual(crashListenerCounts(), countsBeforeWasm);
  });

  it('registers the wasm gradient kernels', () => {
    assert.notEqual(tf.getKernel('Conv2DBackpropFilter', 'wasm'), undefined);
    assert.notEqual(tf.getKernel('Conv2DBackpropInput', 'wasm'), undefined);
  });
});
