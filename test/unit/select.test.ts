import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { selectAscending, selectDescending } from '../../shared/select.ts';

/** Checks the partition contract of a select at `rank`. */
function assertPartitioned(
  values: Float32Array,
  rank: number,
  expected: number,
): void {
  assert.equal(values[rank], expected);
  for (let i = 0; i < rank; i++) assert.ok(values[i] <= expected);
  for (let i = rank + 1; i < values.length; i++) {
    assert.ok(values[i] >= expected);
  }
}

describe('selectAscending', () => {
  it('agrees with a full sort on any finite input and rank', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.float32Array({ noNaN: true, noDefaultInfinity: true }),
          fc.array(fc.integer({ min: -3, max: 3 }), { maxLength: 2000 }),
          fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), {
            minLength: 601,
            maxLength: 3000,
          }),
        ),
        fc.nat(),
        (input, rankSeed) => {
          fc.pre(input.length > 0);
          // -0 and 0 compare equal, so either may land at a rank; the
          // magnitudes TopK selects on are never -0.
          const values = Float32Array.from(input, (v) => v + 0);
          const rank = rankSeed % values.length;
          const sorted = values.slice().sort();
          const got = selectAscending(values, values.length, rank);
          assertPartitioned(values, rank, sorted[rank]);
          assert.equal(got, sorted[rank]);
          assert.deepEqual(values.slice().sort(), sorted);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('handles inputs that defeat naive pivots', () => {
    const n = 20_000;
    const shapes: Record<string, (i: number) => number> = {
      ascending: (i) => i,
      descending: (i) => n - i,
      organPipe: (i) => Math.min(i, n - i),
      allEqual: () => 7,
      twoValues: (i) => i % 2,
      sawtooth: (i) => i % 97,
    };
    for (const [name, shape] of Object.entries(shapes)) {
      for (const rank of [0, 1, n >> 1, n - 2, n - 1]) {
        const values = Float32Array.from({ length: n }, (_, i) => shape(i));
        const sorted = values.slice().sort();
        assert.equal(
          selectAscending(values, n, rank),
          sorted[rank],
          `${name} at rank ${rank}`,
        );
        assertPartitioned(values, rank, sorted[rank]);
      }
    }
  });

  it('selects within a prefix and leaves the rest alone', () => {
    const values = Float32Array.from([5, 1, 4, 2, 3, -100, -200]);
    assert.equal(selectAscending(values, 5, 0), 1);
    assert.deepEqual([...values.subarray(5)], [-100, -200]);
  });
});

describe('selectDescending', () => {
  it('returns the value of a descending rank', () => {
    const values = Float32Array.from([3, 9, 1, 9, 4]);
    assert.equal(selectDescending(values.slice(), 5, 0), 9);
    assert.equal(selectDescending(values.slice(), 5, 1), 9);
    assert.equal(selectDescending(values.slice(), 5, 2), 4);
    assert.equal(selectDescending(values.slice(), 5, 4), 1);
  });
});
