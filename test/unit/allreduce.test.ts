import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  ALL_REDUCE_ALGORITHMS,
  allReduce,
  AutoPlanner,
  addScaledInto,
  predictBytes,
  resultToDense,
  segmentLength,
  segmentStart,
  type AllReduceChoice,
} from '../../shared/allreduce/index.ts';
import { isTopkError } from '../../shared/errors.ts';
import { RingSimulator } from '../../shared/simulator.ts';
import { runSimulatedStep } from '../../shared/simulator-step.ts';
import { seededRandom, syntheticVectors } from '../../peer/bench/gradients.ts';
import { assertSum, inputsOf, reduceOnce, vectorOf } from './ring-helpers.ts';

const CHOICES: AllReduceChoice[] = [...ALL_REDUCE_ALGORITHMS, 'auto'];

describe('segments', () => {
  it('cover 0..n without gaps, lengths within one, empty when n < P', () => {
    for (const [n, peers] of [
      [10, 4],
      [1, 3],
      [7, 8],
      [0, 5],
      [1_000_003, 9],
    ]) {
      let covered = 0;
      for (let s = 0; s < peers; s++) {
        assert.equal(segmentStart(s, n, peers), covered);
        const length = segmentLength(s, n, peers);
        assert.ok(
          length === Math.floor(n / peers) || length === Math.ceil(n / peers),
        );
        covered += length;
      }
      assert.equal(covered, n);
    }
  });
});

describe('allReduce sums exactly and identically', () => {
  it('matches a float64 reference with bit-identical replicas (property)', async () => {
    const sizes = fc.oneof(
      fc.constantFrom(0, 1, 7, 10, 13, 97, 251, 509),
      fc.integer({ min: 0, max: 700 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 9 }),
        sizes,
        fc.oneof(
          fc.constantFrom(0, 1),
          fc.double({ min: 0, max: 1, noNaN: true }),
        ),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(...CHOICES),
        fc.integer(),
        async (peers, n, density, overlap, algorithm, seed) => {
          const vectors = syntheticVectors({
            peers,
            n,
            k: Math.round(density * n),
            overlap,
            random: seededRandom(seed),
          });
          const results = await reduceOnce(inputsOf(vectors), algorithm);
          assertSum(vectors, results);
          if (algorithm !== 'auto') {
            assert.equal(results[0].algorithm, algorithm);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  // Case 12: sizes that do not divide, some segments empty. Small integers
  // add exactly in float32, so the sum must equal the reference exactly.
  for (const [n, peers] of [
    [10, 4],
    [1, 3],
    [7, 8],
  ]) {
    for (const algorithm of CHOICES) {
      it(`case 12: ${n} over ${peers} with ${algorithm}`, async () => {
        const vectors = Array.from({ length: peers }, (_, p) =>
          vectorOf(
            n,
            Array.from({ length: n }, (_, i): [number, number] => [
              i,
              p + 1 + i * 10,
            ]).filter(([i]) => (i + p) % 2 === 0 || p === 0),
          ),
        );
        const results = await reduceOnce(inputsOf(vectors), algorithm);
        const expected = new Float32Array(n);
        for (const { indices, values } of vectors) {
          indices.forEach((index, i) => (expected[index] += values[i]));
        }
        for (const result of results) {
          assert.deepEqual(resultToDense(result), expected);
        }
      });
    }
  }

  it('with P = 1 returns the input, sends nothing', async () => {
    const vector = vectorOf(5, [
      [1, 2.5],
      [4, -1],
    ]);
    const [result] = await reduceOnce(inputsOf([vector]), 'sparse-ring');
    assert.deepEqual(
      resultToDense(result),
      new Float32Array([0, 2.5, 0, 0, -1]),
    );
    assert.equal(result.bytesSent, 0);
    assert.equal(result.unionSize, 2);
  });

  it('applies cheaply: addScaledInto divides by P as the caller asks', async () => {
    const vectors = [
      vectorOf(4, [[0, 2]]),
      vectorOf(4, [
        [0, 4],
        [3, 6],
      ]),
    ];
    const results = await reduceOnce(inputsOf(vectors), 'sparse-ring');
    const weights = new Float32Array([1, 1, 1, 1]);
    addScaledInto(weights, results[0], -1 / 2);
    assert.deepEqual(weights, new Float32Array([-2, 1, 1, -2]));
  });
});

describe('auto', () => {
  async function chooseOverSteps(
    overlap: number,
    steps: number,
  ): Promise<string[]> {
    const peers = 6;
    const n = 60_000;
    const k = 300;
    const ring = new RingSimulator({ peers });
    const planners = Array.from({ length: peers }, () => new AutoPlanner());
    const random = seededRandom(7);
    const chosen: string[] = [];
    try {
      for (let step = 0; step < steps; step++) {
        const vectors = syntheticVectors({ peers, n, k, overlap, random });
        const results = await runSimulatedStep(ring, {
          step,
          inputs: inputsOf(vectors),
          options: (i) => ({ algorithm: 'auto', planner: planners[i], k }),
        });
        assertSum(vectors, results);
        chosen.push(results[0].algorithm);
      }
    } finally {
      ring.close();
    }
    return chosen;
  }

  it('makes the same choice on every peer and follows the overlap', async () => {
    assert.deepEqual(await chooseOverSteps(0, 3), [
      'sparse-ring',
      'allgather',
      'allgather',
    ]);
    assert.deepEqual(await chooseOverSteps(0.9, 3), [
      'sparse-ring',
      'sparse-ring',
      'sparse-ring',
    ]);
  });

  it('predicts allgather cheaper without overlap, sparse-ring with it', () => {
    const shape = { n: 1_000_000, peers: 8, k: 1000 };
    assert.ok(
      predictBytes('allgather', shape, 8000) <
        predictBytes('sparse-ring', shape, 8000),
    );
    assert.ok(
      predictBytes('sparse-ring', shape, 1500) <
        predictBytes('allgather', shape, 1500),
    );
  });

  it('forgets the union on a new generation and after a gap in steps', () => {
    const planner = new AutoPlanner();
    const shape = { n: 1_000_000, peers: 8, k: 1000 };
    const noOverlap = {
      n: shape.n,
      parts: [],
      algorithm: 'sparse-ring' as const,
      unionSize: 8000,
      skip: false,
      bytesSent: 0,
      bytesReceived: 0,
    };
    planner.record(0, 4, noOverlap);
    assert.equal(planner.choose(0, 5, shape), 'allgather');
    assert.equal(planner.choose(1, 5, shape), 'sparse-ring');
    assert.equal(planner.choose(0, 7, shape), 'sparse-ring');
    planner.record(0, 5, { ...noOverlap, skip: true, unionSize: 0 });
    assert.equal(planner.choose(0, 6, shape), 'allgather');
  });

  it("refuses 'auto' without a planner or k", async () => {
    const ring = new RingSimulator({ peers: 1 });
    const context = {
      room: 'r',
      peerId: 'a',
      generation: 0,
      step: 0,
      ringIndex: 0,
      peers: 1,
      link: ring.links[0],
    };
    const input = { vector: vectorOf(2, []), skip: false };
    await assert.rejects(
      allReduce(context, input, { algorithm: 'auto', k: 1 }),
      (e) => isTopkError(e, 'ERR_BAD_CONFIG'),
    );
    await assert.rejects(
      allReduce(context, input, {
        algorithm: 'auto',
        planner: new AutoPlanner(),
      }),
      (e) => isTopkError(e, 'ERR_BAD_CONFIG'),
    );
    ring.close();
  });
});
