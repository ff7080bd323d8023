import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { isTopkError } from '../../shared/errors.ts';
import { countNonFinite } from '../../shared/topk-scan.ts';
import {
  selectTopK,
  TopkSelector,
  type TopkSelection,
} from '../../shared/topk.ts';

/**
 * The definition, written the slow and obvious way: sort the finite
 * entries by magnitude (descending), then index (ascending), keep the first
 * K, return them in index order.
 */
function referenceTopK(x: Float32Array, k: number): number[] {
  const order: number[] = [];
  for (let i = 0; i < x.length; i++) {
    if (Number.isFinite(x[i])) order.push(i);
  }
  order.sort((a, b) => Math.abs(x[b]) - Math.abs(x[a]) || a - b);
  return order.slice(0, Math.min(k, order.length)).sort((a, b) => a - b);
}

function assertSelection(x: Float32Array, k: number, got: TopkSelection): void {
  const expected = referenceTopK(x, k);
  assert.deepEqual([...got.indices], expected);
  for (let j = 0; j < got.indices.length; j++) {
    assert.ok(Object.is(got.values[j], x[got.indices[j]]));
    if (j > 0) assert.ok(got.indices[j] > got.indices[j - 1]);
  }
  assert.equal(got.nonFinite, countNonFinite(x));
}

/** Values drawn from the kinds of arrays that trouble selection. */
const valueArrays: fc.Arbitrary<Float32Array> = fc
  .oneof(
    // Many ties: a handful of distinct magnitudes, both signs.
    fc.array(fc.integer({ min: -3, max: 3 }), { maxLength: 3000 }),
    // Any float32, including huge, tiny, subnormal, -0, NaN, infinities.
    fc.array(fc.float(), { maxLength: 3000 }),
    // Gradient-like: mostly small, a few large.
    fc.array(
      fc.oneof(
        {
          weight: 20,
          arbitrary: fc.float({
            min: Math.fround(-1e-3),
            max: Math.fround(1e-3),
          }),
        },
        { weight: 1, arbitrary: fc.float({ min: -1e3, max: 1e3 }) },
      ),
      { maxLength: 3000 },
    ),
    // All equal (zeros among them).
    fc
      .tuple(fc.constantFrom(0, -0, 1, -2.5, 1e-40), fc.nat({ max: 3000 }))
      .map(([value, n]) => new Array<number>(n).fill(value)),
    // Exact zeros with a sprinkle of values.
    fc.array(fc.constantFrom(0, 0, 0, 0, -0, 1e-30, -1e30, 3), {
      maxLength: 3000,
    }),
  )
  .map((values) => Float32Array.from(values));

/** A selector that takes the fast path even on short arrays. */
function eagerSelector(seed = 1): TopkSelector {
  return new TopkSelector({ seed, minFastLength: 0 });
}

describe('TopK selection', () => {
  it('fast and exact agree with the reference on any input', () => {
    const selector = eagerSelector();
    fc.assert(
      fc.property(valueArrays, fc.nat(), (x, kSeed) => {
        const k = kSeed % (x.length + 3);
        const exact = selector.select(x, k, 'exact');
        const fast = selector.select(x, k, 'fast');
        assertSelection(x, k, exact);
        assertSelection(x, k, fast);
        assert.deepEqual(fast.indices, exact.indices);
        assert.deepEqual(fast.values, exact.values);
      }),
      { numRuns: 500 },
    );
  });

  it('exercises both the sampled path and the fallback', () => {
    // Low densities on short arrays, where sampling is forced on: random
    // floats rarely need the fallback, small integers (masses of ties at
    // the threshold) often do. A fixed seed keeps the counts stable.
    const selector = eagerSelector();
    const counts = { sampled: 0, fellBack: 0 };
    const lowDensity = (values: fc.Arbitrary<number>) =>
      fc.tuple(fc.array(values, { minLength: 64, maxLength: 3000 }), fc.nat());
    fc.assert(
      fc.property(
        fc.oneof(
          lowDensity(fc.float({ noNaN: true })),
          lowDensity(fc.integer({ min: -3, max: 3 })),
        ),
        ([values, kSeed]) => {
          const x = Float32Array.from(values);
          const k = 1 + (kSeed % Math.floor((x.length - 1) / 4));
          const fast = selector.select(x, k, 'fast');
          assertSelection(x, k, fast);
          counts[fast.fellBack ? 'fellBack' : 'sampled']++;
        },
      ),
      { numRuns: 300, seed: 42 },
    );
    assert.ok(counts.sampled > 0, 'the sampled path never succeeded');
    assert.ok(counts.fellBack > 0, 'the fallback never ran');
  });

  it('fast agrees with exact at small densities on large inputs', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 20_000, max: 200_000 }),
        fc.double({ min: 1e-4, max: 0.2, noNaN: true }),
        fc.integer({ min: 1, max: 2 ** 31 }),
        (n, density, seed) => {
          const x = new Float32Array(n);
          let state = seed;
          for (let i = 0; i < n; i++) {
            state = (Math.imul(state, 1103515245) + 12345) >>> 0;
            // Signed, heavy-tailed values with plenty of exact ties.
            x[i] = Math.round((state / 2 ** 32 - 0.5) * 64) ** 3;
          }
          const k = Math.max(1, Math.round(density * n));
          const selector = new TopkSelector({ seed });
          const fast = selector.select(x, k, 'fast');
          const exact = selector.select(x, k, 'exact');
          assert.equal(fast.indices.length, k);
          assert.deepEqual(fast.indices, exact.indices);
          assert.deepEqual(fast.values, exact.values);
        },
      ),
      { numRuns: 20 },
    );
  });

  it('takes the sampled path, not the fallback, on gradient-like data', () => {
    const n = 1_000_000;
    const k = 1000;
    const x = new Float32Array(n);
    let state = 7;
    for (let i = 0; i < n; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      x[i] = (state / 2 ** 32 - 0.5) * ((i % 1000) + 1);
    }
    const selector = new TopkSelector();
    for (let call = 0; call < 5; call++) {
      const fast = selector.select(x, k, 'fast');
      assert.equal(fast.fellBack, false);
      assert.equal(fast.indices.length, k);
      assert.deepEqual(fast.indices, selector.select(x, k, 'exact').indices);
    }
  });

  it('breaks ties towards the lower index', () => {
    const x = Float32Array.from([1, -2, 2, 0, -2, 2, 1]);
    for (const method of ['exact', 'fast'] as const) {
      assert.deepEqual([...selectTopK(x, 2, method).indices], [1, 2]);
      assert.deepEqual([...selectTopK(x, 4, method).indices], [1, 2, 4, 5]);
      assert.deepEqual(
        [...selectTopK(x, 6, method).indices],
        [0, 1, 2, 4, 5, 6],
      );
    }
    const equal = new Float32Array(100_000).fill(-3);
    const picked = eagerSelector().select(equal, 10, 'fast');
    assert.deepEqual([...picked.indices], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('never selects NaN or infinities and counts them', () => {
    const x = Float32Array.from([NaN, 1, Infinity, -Infinity, -5, 0, NaN]);
    for (const method of ['exact', 'fast'] as const) {
      const all = selectTopK(x, 7, method);
      assert.deepEqual([...all.indices], [1, 4, 5]);
      assert.equal(all.nonFinite, 4);
      const one = selectTopK(x, 1, method);
      assert.deepEqual([...one.indices], [4]);
      assert.equal(one.nonFinite, 4);
      assert.equal(selectTopK(x, 0, method).nonFinite, 4);
    }
    const big = new Float32Array(100_000).fill(1);
    big[500] = Infinity;
    big[600] = NaN;
    big[700] = 2;
    const picked = eagerSelector().select(big, 3, 'fast');
    assert.deepEqual([...picked.indices], [0, 1, 700]);
    assert.equal(picked.nonFinite, 2);
  });

  it('clamps K to the length, handles empty input and K = 0', () => {
    const x = Float32Array.from([3, -1, 2]);
    assert.deepEqual([...selectTopK(x, 10).indices], [0, 1, 2]);
    assert.equal(selectTopK(x, 0).indices.length, 0);
    assert.equal(selectTopK(new Float32Array(0), 5).indices.length, 0);
  });

  it('rejects a negative, fractional or NaN K with ERR_BAD_CONFIG', () => {
    const x = new Float32Array(4);
    for (const k of [-1, 1.5, NaN, Infinity]) {
      assert.throws(
        () => selectTopK(x, k),
        (err: unknown) => isTopkError(err, 'ERR_BAD_CONFIG'),
      );
    }
  });

  it('returns fresh arrays and reuses nothing the caller holds', () => {
    const selector = eagerSelector();
    const x = Float32Array.from({ length: 1000 }, (_, i) => (i * 37) % 101);
    const first = selector.select(x, 5, 'fast');
    const kept = [...first.indices];
    selector.select(x.reverse(), 5, 'fast');
    assert.deepEqual([...first.indices], kept);
  });
});
