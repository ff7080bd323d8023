import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  lowerBoundBytes,
  runAllReduceBench,
} from '../../peer/bench/allreduce.ts';
import { isTopkError } from '../../shared/errors.ts';
import { vectorOf } from './ring-helpers.ts';

describe('bench allreduce', () => {
  it('counts the lower bound per peer: 8 per missing entry, 4 per shared own', () => {
    const vectors = [
      vectorOf(10, [
        [0, 1],
        [1, 1],
      ]),
      vectorOf(10, [
        [1, 1],
        [2, 1],
        [3, 1],
      ]),
    ];
    // Union {0,1,2,3}. Peer 0: misses 2, 3 (16) + shares 1 (4) = 20.
    // Peer 1: misses 0 (8) + shares 1 (4) = 12.
    assert.equal(lowerBoundBytes(vectors), 20);
  });

  it('reports exact, identical sums and the bytes of every algorithm', async () => {
    for (const algorithm of [
      'auto',
      'sparse-ring',
      'allgather',
      'dense',
    ] as const) {
      const report = await runAllReduceBench({
        peers: 4,
        size: 2000,
        density: 0.02,
        algorithm,
        overlap: 0.5,
        steps: 2,
        seed: 9,
      });
      assert.equal(report.identical, true);
      assert.equal(report.k, 40);
      assert.ok(report.maxAbsError < 1e-5);
      assert.ok(report.bytesPerPeer > 0 && report.lowerBoundBytes > 0);
      assert.equal(report.chosen.length, 2);
      if (algorithm !== 'auto')
        assert.deepEqual(report.chosen, [algorithm, algorithm]);
      // Half of each peer's 40 indices are common to all: 20 + 4 * 20.
      assert.ok(
        report.unionSize >= 95 && report.unionSize <= 100,
        String(report.unionSize),
      );
    }
  });

  it('refuses a setting out of range, naming it', async () => {
    await assert.rejects(
      runAllReduceBench({
        peers: 2,
        size: 10,
        density: 1.5,
        algorithm: 'auto',
        overlap: 0,
        steps: 1,
        seed: 1,
      }),
      (error) =>
        isTopkError(error, 'ERR_BAD_CONFIG') &&
        error.context.setting === 'density',
    );
  });
});
