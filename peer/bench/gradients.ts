/**
 * Synthetic TopK selections for benchmarks and tests: P sparse vectors of K
 * entries each, reproducible from a seed, with a chosen overlap between
 * the peers' index sets (random gradients overlap far less than real ones).
 */
import type { SparseVector } from '../../shared/sparse.ts';

/** A seeded generator of floats in [0, 1) (mulberry32: small and fast). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  };
}

/** What to draw. */
export interface SyntheticOptions {
  /** P, the number of vectors. */
  readonly peers: number;
  /** Length of each vector. */
  readonly n: number;
  /** Entries per vector (at most n). */
  readonly k: number;
  /**
   * Fraction of each vector's K indices taken from one set shared by all
   * peers: round(overlap * K) indices common to every peer, the rest drawn
   * independently (and so overlapping only by chance).
   */
  readonly overlap: number;
  /** The random source, e.g. {@link seededRandom}. */
  readonly random: () => number;
}

/** Draws P sparse vectors as {@link SyntheticOptions} describes. */
export function syntheticVectors(options: SyntheticOptions): SparseVector[] {
  const { peers, n, random } = options;
  const k = Math.min(options.k, n);
  const sharedMarks = new Uint8Array(n);
  const shared = drawDistinct(
    Math.round(options.overlap * k),
    sharedMarks,
    random,
  );
  return Array.from({ length: peers }, () => {
    const marks = sharedMarks.slice();
    const own = drawDistinct(k - shared.length, marks, random);
    const indices = new Uint32Array(k);
    indices.set(shared);
    indices.set(own, shared.length);
    indices.sort();
    const values = new Float32Array(k);
    for (let i = 0; i < k; i++) {
      // Uniform in (-1, 1), never exactly zero: a zero would shrink the
      // union the benchmark reports.
      values[i] = 2 * random() - 1 || 0.5;
    }
    return { n, indices, values };
  });
}

/**
 * Draws `count` distinct indices whose mark is 0 in `marks` (length n),
 * and marks them. Rejection sampling while few are taken, a partial
 * shuffle of what is left otherwise.
 */
function drawDistinct(
  count: number,
  marks: Uint8Array,
  random: () => number,
): Uint32Array {
  const n = marks.length;
  const drawn = new Uint32Array(count);
  let free = 0;
  for (let i = 0; i < n; i++) if (marks[i] === 0) free++;
  if (count * 2 <= free) {
    for (let taken = 0; taken < count;) {
      const index = Math.floor(random() * n);
      if (marks[index] === 0) {
        marks[index] = 1;
        drawn[taken++] = index;
      }
    }
    return drawn;
  }
  const candidates = new Uint32Array(free);
  for (let i = 0, j = 0; i < n; i++) if (marks[i] === 0) candidates[j++] = i;
  for (let taken = 0; taken < count; taken++) {
    const pick = taken + Math.floor(random() * (free - taken));
    const index = candidates[pick];
    candidates[pick] = candidates[taken];
    candidates[taken] = index;
    marks[index] = 1;
    drawn[taken] = index;
  }
  return drawn;
}
