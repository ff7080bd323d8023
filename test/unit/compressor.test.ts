import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { Compressor } from '../../shared/compressor.ts';
import {
  kForDensity,
  resolveCompressorConfig,
  type CompressorOptions,
} from '../../shared/compressor-config.ts';
import { isTopkError, type ErrorCode } from '../../shared/errors.ts';
import { toDense } from '../../shared/sparse.ts';

/** TopK by sorting: magnitude descending, then index ascending. */
function referenceTopK(x: Float32Array, k: number): number[] {
  const order = Array.from({ length: x.length }, (_, i) => i);
  order.sort((a, b) => Math.abs(x[b]) - Math.abs(x[a]) || a - b);
  return order.slice(0, Math.min(k, x.length)).sort((a, b) => a - b);
}

function assertCode(fn: () => unknown, code: ErrorCode, setting?: string) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isTopkError(err, code), `expected ${code}, got ${String(err)}`);
    if (setting !== undefined) assert.equal(err.context.setting, setting);
    return true;
  });
}

/** Exactly what step 1 computes, element by element. */
function expectedAcc(
  residual: Float32Array,
  gradient: Float32Array,
  lr: number,
): Float32Array {
  return Float32Array.from(residual, (r, i) => r + lr * gradient[i]);
}

const gradients = (n: number) =>
  fc
    .array(
      fc.oneof(
        fc.integer({ min: -4, max: 4 }),
        fc.float({ min: -1e6, max: 1e6, noNaN: true }),
      ),
      { minLength: n, maxLength: n },
    )
    .map((values) => Float32Array.from(values));

describe('Compressor', () => {
  it('keeps acc === sent + residual bit for bit, step after step', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 400 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom('exact', 'fast') as fc.Arbitrary<'exact' | 'fast'>,
        fc.constantFrom(0.5, 0.01, 1, 3),
        (n, density, selection, lr) => {
          const compressor = new Compressor({ n, density, selection });
          const k = kForDensity(density, n);
          const steps = fc.sample(gradients(n), { numRuns: 3, seed: n });
          for (const gradient of steps) {
            const acc = expectedAcc(compressor.saveResidual(), gradient, lr);
            const { sent, stats } = compressor.compress(gradient, lr);
            assert.equal(stats.skipped, false);
            assert.equal(stats.k, k);
            assert.deepEqual([...sent.indices], referenceTopK(acc, k));

            const residual = compressor.residualView();
            const dense = toDense(sent);
            for (let i = 0; i < n; i++) {
              // === rather than Object.is: -0 and 0 are the same value.
              assert.ok(dense[i] + residual[i] === acc[i], `at ${i}`);
            }
            for (const i of sent.indices) assert.ok(residual[i] === 0);

            const accNorm = Math.hypot(...acc);
            const residualNorm = Math.hypot(...residual);
            assert.ok(Math.abs(stats.accNorm - accNorm) <= 1e-9 * accNorm);
            assert.ok(
              Math.abs(stats.residualNorm - residualNorm) <= 1e-6 * accNorm,
            );
            assert.ok(stats.ratio <= stats.gamma + 1e-9);
            assert.equal(stats.gamma, n === 0 ? 0 : Math.sqrt((n - k) / n));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('loses nothing: sent so far plus residual equals the sum of steps', () => {
    // Small integers and lr = 1 keep every float sum exact.
    const n = 500;
    const compressor = new Compressor({ n, k: 7 });
    const total = new Float64Array(n);
    const delivered = new Float64Array(n);
    const draws = fc.sample(
      fc.array(fc.integer({ min: -50, max: 50 }), {
        minLength: n,
        maxLength: n,
      }),
      { numRuns: 30, seed: 3 },
    );
    for (const draw of draws) {
      const gradient = Float32Array.from(draw);
      gradient.forEach((g, i) => (total[i] += g));
      const { sent } = compressor.compress(gradient, 1);
      sent.indices.forEach((at, j) => (delivered[at] += sent.values[j]));
    }
    const residual = compressor.residualView();
    for (let i = 0; i < n; i++) {
      assert.equal(delivered[i] + residual[i], total[i]);
    }
  });

  it('fast and exact selection send the same entries', () => {
    const n = 300_000;
    const gradient = Float32Array.from(
      { length: n },
      (_, i) => Math.sin(i * 12.9898) * ((i % 257) + 1),
    );
    const fast = new Compressor({ n, density: 0.001, selection: 'fast' });
    const exact = new Compressor({ n, density: 0.001, selection: 'exact' });
    for (let step = 0; step < 3; step++) {
      const a = fast.compress(gradient, 0.1);
      const b = exact.compress(gradient, 0.1);
      assert.deepEqual(a.sent, b.sent);
      assert.equal(a.stats.k, 300);
      assert.deepEqual(fast.saveResidual(), exact.saveResidual());
    }
  });

  it('K = 0 sends nothing and accumulates everything', () => {
    for (const options of [{ k: 0 }, { density: 0 }]) {
      const compressor = new Compressor({ n: 4, ...options });
      compressor.compress(Float32Array.from([1, 2, 3, 4]), 0.5);
      const { sent, stats } = compressor.compress(
        Float32Array.from([1, 2, 3, 4]),
        0.5,
      );
      assert.equal(sent.indices.length, 0);
      assert.equal(stats.k, 0);
      assert.equal(stats.ratio, 1);
      assert.deepEqual([...compressor.residualView()], [1, 2, 3, 4]);
    }
  });

  it('K >= n is dense: everything sent, the residual stays zero', () => {
    for (const options of [{ k: 4 }, { k: 99 }, { density: 1 }]) {
      const compressor = new Compressor({ n: 4, ...options });
      const { sent, stats } = compressor.compress(
        Float32Array.from([0, -2, 3, 0]),
        2,
      );
      assert.deepEqual([...sent.indices], [0, 1, 2, 3]);
      assert.deepEqual([...sent.values], [0, -4, 6, 0]);
      assert.deepEqual([...compressor.residualView()], [0, 0, 0, 0]);
      assert.equal(stats.ratio, 0);
      assert.equal(stats.gamma, 0);
    }
  });

  it('n = 0 is a no-op', () => {
    const compressor = new Compressor({ n: 0, density: 0.5 });
    const { sent, stats } = compressor.compress(new Float32Array(0), 0.1);
    assert.equal(sent.n, 0);
    assert.equal(sent.indices.length, 0);
    assert.equal(stats.skipped, false);
    assert.equal(compressor.residualNorm(), 0);
  });

  it('turns a density into K by rounding, at least 1 when above 0', () => {
    assert.equal(kForDensity(0.1, 30), 3);
    assert.equal(kForDensity(0.001, 10_000_000), 10_000);
    assert.equal(kForDensity(1e-9, 10), 1);
    assert.equal(kForDensity(0.25, 10), 3);
    assert.equal(kForDensity(0, 10), 0);
    assert.equal(kForDensity(0.5, 0), 0);
    assert.equal(kForDensity(1, 7), 7);
  });

  it('case 14: clamps an absolute K, rejects bad settings by name', () => {
    assert.equal(resolveCompressorConfig({ n: 10, k: 1000 }).totalK, 10);
    const bias = new Compressor({ n: 10, k: 1000 });
    const { stats } = bias.compress(new Float32Array(10).fill(1), 1);
    assert.equal(stats.k, 10);

    const bad: [CompressorOptions, string][] = [
      [{ n: 10, k: -1 }, 'k'],
      [{ n: 10, k: NaN }, 'k'],
      [{ n: 10, k: 2.5 }, 'k'],
      [{ n: 10, density: 1.5 }, 'density'],
      [{ n: 10, density: -0.1 }, 'density'],
      [{ n: 10, density: NaN }, 'density'],
      [{ n: 10 }, 'k'],
      [{ n: 10, k: 1, density: 0.1 }, 'k'],
      [{ n: -1, k: 1 }, 'n'],
      [{ n: 10, k: 1, scope: 'per-tensor' }, 'tensorSizes'],
      [
        { n: 10, k: 1, scope: 'per-tensor', tensorSizes: [4, 5] },
        'tensorSizes',
      ],
      [
        { n: 10, k: 1, scope: 'per-tensor', tensorSizes: [11, -1] },
        'tensorSizes',
      ],
    ];
    for (const [options, setting] of bad) {
      assertCode(() => new Compressor(options), 'ERR_BAD_CONFIG', setting);
    }
    assert.throws(
      () => new Compressor({ n: 10, density: 1.5 }),
      /density must be in \[0, 1\], got 1\.5/,
    );

    const compressor = new Compressor({ n: 2, k: 1 });
    for (const lr of [-0.1, NaN, Infinity]) {
      assertCode(
        () => compressor.compress(new Float32Array(2), lr),
        'ERR_BAD_CONFIG',
        'learning rate',
      );
    }
    assertCode(
      () => compressor.compress(new Float32Array(3), 0.1),
      'ERR_INTERNAL',
    );
  });

  it('skips a step with a non-finite gradient, residual untouched', () => {
    const compressor = new Compressor({ n: 6, k: 2 });
    compressor.compress(Float32Array.from([1, 2, 3, 4, 5, 6]), 1);
    const before = compressor.saveResidual();
    for (const poison of [NaN, Infinity, -Infinity]) {
      const gradient = Float32Array.from([1, poison, 1, 1, poison, 1]);
      const { sent, stats } = compressor.compress(gradient, 1);
      assert.equal(stats.skipped, true);
      assert.equal(stats.nonFinite, 2);
      assert.equal(stats.k, 0);
      assert.equal(sent.indices.length, 0);
      assert.deepEqual(compressor.saveResidual(), before);
      assert.equal(stats.residualNorm, compressor.residualNorm());
    }
    // The next good step goes through as if nothing happened.
    const { stats } = compressor.compress(new Float32Array(6), 1);
    assert.equal(stats.skipped, false);
    assert.deepEqual([...compressor.residualView()], [1, 2, 0, 0, 0, 0]);
  });

  it('treats a float32 overflow of residual + lr * gradient the same way', () => {
    const compressor = new Compressor({ n: 3, k: 0 });
    const big = Float32Array.from([3e38, 1, -3e38]);
    compressor.compress(big, 1);
    const before = compressor.saveResidual();
    const { stats } = compressor.compress(big, 1);
    assert.equal(stats.skipped, true);
    assert.equal(stats.nonFinite, 2);
    assert.deepEqual(compressor.saveResidual(), before);
    // An lr so large that lr * gradient overflows float64 is caught too.
    assert.equal(compressor.compress(big, 1e300).stats.skipped, true);
  });

  it('restore puts an aborted step back exactly', () => {
    fc.assert(
      fc.property(gradients(64), fc.nat({ max: 64 }), (gradient, k) => {
        const compressor = new Compressor({ n: 64, k });
        compressor.compress(gradient, 0.3);
        const acc = expectedAcc(compressor.saveResidual(), gradient, 0.3);
        const { sent } = compressor.compress(gradient, 0.3);
        compressor.restore(sent);
        const residual = compressor.residualView();
        // Equal as numbers (0 + -0 gives 0, which === -0).
        for (let i = 0; i < 64; i++) assert.ok(residual[i] === acc[i]);
      }),
      { numRuns: 100 },
    );
  });

  it('restore rejects a malformed vector without touching the residual', () => {
    const compressor = new Compressor({ n: 4, k: 1 });
    compressor.compress(Float32Array.from([1, 2, 3, 4]), 1);
    const before = compressor.saveResidual();
    const vectors = [
      { n: 5, indices: Uint32Array.of(0), values: Float32Array.of(1) },
      { n: 4, indices: Uint32Array.of(0, 9), values: Float32Array.of(1, 1) },
      { n: 4, indices: Uint32Array.of(0, 1), values: Float32Array.of(1) },
    ];
    for (const sent of vectors) {
      assertCode(() => compressor.restore(sent), 'ERR_INTERNAL');
    }
    assertCode(
      () =>
        compressor.restore({
          n: 4,
          indices: Uint32Array.of(0, 1),
          values: Float32Array.of(1, NaN),
        }),
      'ERR_NON_FINITE',
    );
    assert.deepEqual(compressor.saveResidual(), before);
  });

  it('per-tensor scope selects within each tensor, indices global', () => {
    const sizes = [5, 0, 3, 8, 0];
    const n = 16;
    const gradient = Float32Array.from({ length: n }, (_, i) =>
      i % 2 === 0 ? i : -i / 3,
    );
    const compressor = new Compressor({
      n,
      density: 0.4,
      scope: 'per-tensor',
      tensorSizes: sizes,
    });
    assert.deepEqual(compressor.config.partKs, [2, 0, 1, 3, 0]);
    const { sent, stats } = compressor.compress(gradient, 1);

    const expected: number[] = [];
    let offset = 0;
    sizes.forEach((size, t) => {
      const part = gradient.subarray(offset, offset + size);
      const k = compressor.config.partKs[t];
      for (const i of referenceTopK(part, k)) expected.push(i + offset);
      offset += size;
    });
    assert.deepEqual([...sent.indices], expected);
    assert.equal(stats.k, 6);
    assert.equal(stats.gamma, Math.sqrt((3 - 1) / 3));
    const dense = toDense(sent);
    const residual = compressor.residualView();
    for (let i = 0; i < n; i++) {
      assert.ok(dense[i] + residual[i] === gradient[i], `at ${i}`);
    }
  });

  it('per-tensor K clamps to each tensor (a 1000 on a 10-element bias)', () => {
    const compressor = new Compressor({
      n: 5010,
      k: 1000,
      scope: 'per-tensor',
      tensorSizes: [5000, 10],
    });
    assert.deepEqual(compressor.config.partKs, [1000, 10]);
    const gradient = Float32Array.from({ length: 5010 }, (_, i) => i + 1);
    const { sent } = compressor.compress(gradient, 1);
    assert.equal(sent.indices.length, 1010);
    assert.equal(sent.indices[1000], 5000);
  });

  it('case 13: zero-element variables are a no-op', () => {
    for (const options of [
      { n: 0, k: 5, scope: 'per-tensor' as const, tensorSizes: [0, 0] },
      {
        n: 3,
        density: 1,
        scope: 'per-tensor' as const,
        tensorSizes: [0, 3, 0],
      },
    ]) {
      const compressor = new Compressor(options);
      const { sent, stats } = compressor.compress(
        new Float32Array(options.n).fill(2),
        1,
      );
      assert.equal(stats.skipped, false);
      assert.equal(sent.indices.length, options.n);
      compressor.restore(sent);
    }
  });

  it('saves, loads, resets and measures its residual', () => {
    const compressor = new Compressor({ n: 3, k: 1 });
    compressor.compress(Float32Array.from([3, 4, 12]), 1);
    assert.equal(compressor.residualNorm(), 5);
    const saved = compressor.saveResidual();

    const other = new Compressor({ n: 3, k: 1 });
    other.loadResidual(saved);
    assert.deepEqual(other.saveResidual(), saved);
    saved[0] = 100;
    assert.equal(other.residualView()[0], 3);

    assertCode(
      () => other.loadResidual(new Float32Array(4)),
      'ERR_BAD_CHECKPOINT',
    );
    assertCode(
      () => other.loadResidual(Float32Array.of(1, NaN, 1)),
      'ERR_BAD_CHECKPOINT',
    );
    assert.equal(other.residualNorm(), 5);

    other.reset();
    assert.equal(other.residualNorm(), 0);
  });
});
