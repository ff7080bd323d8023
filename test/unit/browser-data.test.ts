import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  decodeSampleBlock,
  encodeSampleBlock,
  sampleBlockBytes,
  type SampleBlock,
} from '../../peer/browser/data-format.ts';
import { HeldSplit } from '../../peer/browser/remote-data.ts';
import { isTopkError } from '../../shared/errors.ts';

function block(indices: number[], f: number, t: number): SampleBlock {
  const count = indices.length;
  return {
    indices: Uint32Array.from(indices),
    x: Float32Array.from({ length: count * f }, (_, i) => i * 0.5 - 3),
    y: Float32Array.from({ length: count * t }, (_, i) => i % 2),
    featureSize: f,
    targetWidth: t,
  };
}

function throwsCode(run: () => unknown, code: string): void {
  assert.throws(
    run,
    (error: unknown) => isTopkError(error) && error.code === code,
  );
}

describe('sample blocks (the data a tab downloads)', () => {
  it('round-trip every index, feature and target bit for bit', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 10 }),
        fc.float({ noNaN: false }),
        (indices, f, t, special) => {
          const original = block(indices, f, t);
          if (original.x.length > 0) original.x[0] = special;
          const bytes = encodeSampleBlock(original);
          assert.equal(
            bytes.byteLength,
            sampleBlockBytes(indices.length, f, t),
          );
          const decoded = decodeSampleBlock(bytes);
          assert.deepEqual([...decoded.indices], indices);
          assert.deepEqual(
            new Uint8Array(
              decoded.x.buffer,
              decoded.x.byteOffset,
              decoded.x.byteLength,
            ),
            new Uint8Array(original.x.buffer),
          );
          assert.deepEqual([...decoded.y], [...original.y]);
          assert.equal(decoded.featureSize, f);
          assert.equal(decoded.targetWidth, t);
        },
      ),
    );
  });

  it('decodes from an unaligned view (a copy is made)', () => {
    const bytes = encodeSampleBlock(block([4, 9], 3, 2));
    const shifted = new Uint8Array(bytes.byteLength + 1);
    shifted.set(bytes, 1);
    const decoded = decodeSampleBlock(shifted.subarray(1));
    assert.deepEqual([...decoded.indices], [4, 9]);
  });

  it('refuses bytes that are not a block, or whose length disagrees', () => {
    const bytes = encodeSampleBlock(block([1, 2, 3], 4, 2));
    throwsCode(
      () => decodeSampleBlock(bytes.subarray(0, 10)),
      'ERR_BAD_MESSAGE',
    );
    throwsCode(
      () => decodeSampleBlock(bytes.subarray(0, bytes.length - 4)),
      'ERR_BAD_MESSAGE',
    );
    const wrongMagic = bytes.slice();
    wrongMagic[0] ^= 0xff;
    throwsCode(() => decodeSampleBlock(wrongMagic), 'ERR_BAD_MESSAGE');
  });

  it('refuses to encode arrays of the wrong sizes', () => {
    const bad = { ...block([1, 2], 3, 1), x: new Float32Array(5) };
    throwsCode(() => encodeSampleBlock(bad), 'ERR_INTERNAL');
  });
});

describe('HeldSplit (a tab holds only its shard)', () => {
  it('gathers held samples by their index in the whole split', () => {
    const split = new HeldSplit(100, 2, 1);
    split.hold(block([70, 3, 42], 2, 1));
    assert.equal(split.size, 100);
    assert.equal(split.heldCount, 3);
    const batch = split.gather([42, 70, 42]);
    assert.equal(batch.size, 3);
    // Sample 42 is row 2 of the block: x[4] and x[5], 4 * 0.5 - 3 = -1.
    assert.deepEqual([...batch.x], [-1, -0.5, -3, -2.5, -1, -0.5]);
    assert.deepEqual([...batch.y], [0, 0, 0]);
  });

  it('throws for a sample outside the shard', () => {
    const split = new HeldSplit(100, 2, 1);
    split.hold(block([70, 3], 2, 1));
    throwsCode(() => split.gather([3, 4]), 'ERR_INTERNAL');
    split.hold(block([4], 2, 1));
    throwsCode(() => split.gather([3]), 'ERR_INTERNAL');
    assert.equal(split.gather([4]).size, 1);
  });

  it('refuses samples of another geometry', () => {
    const split = new HeldSplit(10, 2, 1);
    throwsCode(() => split.hold(block([1], 3, 1)), 'ERR_MISMATCH');
  });
});
