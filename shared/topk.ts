/**
 * TopK selection by magnitude: the K entries of a Float32Array with the
 * largest absolute values, ties broken towards the lower index, so that the
 * choice is a pure function of the input and every run is reproducible.
 *
 * Two methods return the identical set:
 * - `exact`: copy the finite magnitudes, find the K-th largest with a linear
 *   selection, then collect in index order.
 * - `fast`: estimate a threshold a little below the K-th largest magnitude
 *   from a seeded sample, collect the candidates above it in one pass, and
 *   select exactly among those few. Falls back to `exact` whenever the
 *   estimate was off (fewer than K candidates, or far more than expected),
 *   so the answer never depends on the sample; only the time does.
 *
 * NaN and infinite entries are never selected. They are counted and
 * reported, and K shrinks to the number of finite entries when fewer exist.
 */
import createDebug from 'debug';

import { describeValue, topkError } from './errors.ts';
import { selectDescending } from './select.ts';
import {
  collectCandidates,
  collectRange,
  countAbove,
  countNonFinite,
  gatherAtOrAbove,
  UNROLL,
} from './topk-scan.ts';

const log = createDebug('topk:select');

/** How {@link TopkSelector.select} finds the K-th largest magnitude. */
export type SelectionMethod = 'exact' | 'fast';

/** The methods, for validating user input. */
export const SELECTION_METHODS: readonly SelectionMethod[] = ['exact', 'fast'];

/** The outcome of one selection. */
export interface TopkSelection {
  /** Selected positions, strictly increasing. Owned by the caller. */
  readonly indices: Uint32Array;
  /** The input's values at those positions (signed, not magnitudes). */
  readonly values: Float32Array;
  /** Number of NaN or infinite entries seen (never selected). */
  readonly nonFinite: number;
  /** True when the fast method had to fall back to the exact one. */
  readonly fellBack: boolean;
}

/** Tuning of {@link TopkSelector}; the defaults suit 1e5..1e8 entries. */
export interface TopkSelectorOptions {
  /** Seed of the sampling generator; the same seed, the same timings. */
  readonly seed?: number;
  /** Inputs shorter than this use the exact method (sampling is overhead). */
  readonly minFastLength?: number;
  /** Upper bound on the sample drawn to estimate the threshold. */
  readonly maxSampleSize?: number;
}

const DEFAULT_SEED = 0x9e3779b9;
const DEFAULT_MIN_FAST_LENGTH = 1 << 14;
const DEFAULT_MAX_SAMPLE_SIZE = 1 << 17;
/** Fewer sample draws than this make a poor quantile estimate. */
const MIN_SAMPLE_SIZE = 1024;
/** The sample should expect about this many entries above the K-th. */
const SAMPLE_HITS_WANTED = 64;
/** Standard deviations of slack below the estimated K-th magnitude. */
const THRESHOLD_SLACK_SIGMAS = 3;
/** Neighbouring entries read at each random place of the sample. */
const SAMPLE_RUN = 16;

/**
 * Selects the K largest-magnitude entries, reusing its scratch buffers from
 * call to call (the compressor calls it every step on the whole model).
 * Not safe for concurrent use: one selector per caller.
 */
export class TopkSelector {
  readonly #minFastLength: number;
  readonly #maxSampleSize: number;
  #state: number;
  #magnitudes = new Float32Array(0);
  #candidates = new Uint32Array(0);
  #candidateMagnitudes = new Float32Array(0);
  #sample = new Float32Array(0);

  constructor(options: TopkSelectorOptions = {}) {
    this.#state = (options.seed ?? DEFAULT_SEED) >>> 0 || DEFAULT_SEED;
    // The sample needs a few runs of neighbours to be worth drawing.
    this.#minFastLength = Math.max(
      4 * SAMPLE_RUN,
      options.minFastLength ?? DEFAULT_MIN_FAST_LENGTH,
    );
    this.#maxSampleSize = Math.max(
      MIN_SAMPLE_SIZE,
      options.maxSampleSize ?? DEFAULT_MAX_SAMPLE_SIZE,
    );
  }

  /**
   * Returns the `k` entries of `x` with the largest magnitudes (fewer only
   * when `x` has fewer finite entries), ties going to the lower index.
   * A `k` above `x.length` is clamped; a negative or fractional `k` is an
   * `ERR_BAD_CONFIG`. Both methods give the same result.
   */
  select(
    x: Float32Array,
    k: number,
    method: SelectionMethod = 'fast',
  ): TopkSelection {
    if (!Number.isInteger(k) || k < 0) {
      throw topkError(
        'ERR_BAD_CONFIG',
        `k must be a non-negative integer, got ${describeValue(k)}`,
        { setting: 'k', value: k },
      );
    }
    const wanted = Math.min(k, x.length);
    if (wanted === 0) return emptySelection(countNonFinite(x), false);

    // Sampling is overhead on short inputs, and a candidate buffer of a
    // quarter of the input or more saves nothing over exact selection.
    if (
      method === 'exact' ||
      x.length < this.#minFastLength ||
      4 * wanted >= x.length
    ) {
      return this.#selectExact(x, wanted, false);
    }
    return this.#selectFast(x, wanted) ?? this.#selectExact(x, wanted, true);
  }

  /** Exact selection: one copy of the magnitudes, one linear select. */
  #selectExact(x: Float32Array, k: number, fellBack: boolean): TopkSelection {
    const n = x.length;
    const magnitudes = this.#magnitudeScratch(n);
    let finite = 0;
    for (let i = 0; i < n; i++) {
      const magnitude = Math.abs(x[i]);
      // NaN fails this comparison too.
      if (magnitude < Infinity) magnitudes[finite++] = magnitude;
    }
    const nonFinite = n - finite;
    const taken = Math.min(k, finite);
    if (taken === 0) return emptySelection(nonFinite, fellBack);

    // Everything finite goes: no threshold to find.
    if (taken === finite) {
      return { ...collectRange(x, taken, -1, 0), nonFinite, fellBack };
    }
    const threshold = selectDescending(magnitudes, finite, taken - 1);
    const above = countAbove(magnitudes, finite - taken + 1, finite, threshold);
    return {
      ...collectRange(x, taken, threshold, taken - above),
      nonFinite,
      fellBack,
    };
  }

  /**
   * Fast selection; `undefined` when the sampled threshold was off and the
   * caller must fall back to exact selection.
   */
  #selectFast(x: Float32Array, k: number): TopkSelection | undefined {
    const n = x.length;
    const estimate = this.#estimateThreshold(x, k);
    if (estimate === undefined) return undefined;
    const { threshold, capacity } = estimate;

    const candidates = this.#candidateScratch(capacity + UNROLL);
    const pass = gatherAtOrAbove(x, threshold, candidates, capacity);
    if (pass === undefined) {
      log('fallback: over %d candidates at threshold %s', capacity, threshold);
      return undefined;
    }
    const { count, nonFinite } = pass;
    const taken = Math.min(k, n - nonFinite);
    if (taken === 0) return emptySelection(nonFinite, false);
    if (count < taken) {
      log('fallback: %d candidates for K = %d', count, taken);
      return undefined;
    }

    // Every entry at or above the threshold is a candidate, so the K-th
    // largest among candidates is the K-th largest overall, and the ties at
    // it are all present, in index order.
    const magnitudes = this.#candidateMagnitudeScratch(count);
    for (let c = 0; c < count; c++) magnitudes[c] = Math.abs(x[candidates[c]]);
    const kth = selectDescending(magnitudes, count, taken - 1);
    const above = countAbove(magnitudes, count - taken + 1, count, kth);
    return {
      ...collectCandidates(x, candidates, count, taken, kth, taken - above),
      nonFinite,
      fellBack: false,
    };
  }

  /**
   * Draws a stratified sample and picks a sample quantile a few standard
   * deviations below the K-th largest, so that the true K-th magnitude lies
   * above it with high probability.
   *
   * The sample is read in runs of {@link SAMPLE_RUN} neighbours (one cache
   * line), one run at a random place in each of equal strata: a random read
   * costs a cache miss, a neighbour is nearly free, and the strata keep the
   * reads moving forward through memory.
   */
  #estimateThreshold(
    x: Float32Array,
    k: number,
  ): { threshold: number; capacity: number } | undefined {
    const n = x.length;
    const wantedDraws = Math.ceil((SAMPLE_HITS_WANTED * n) / k);
    const runs = Math.ceil(
      Math.min(n, this.#maxSampleSize, Math.max(MIN_SAMPLE_SIZE, wantedDraws)) /
        SAMPLE_RUN,
    );
    const sample = this.#sampleScratch(runs * SAMPLE_RUN);
    const stride = (n - SAMPLE_RUN) / runs;
    let state = this.#state;
    let finite = 0;
    for (let r = 0; r < runs; r++) {
      // xorshift32, inlined: this loop runs thousands of times.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      const uniform = (state >>> 0) / 4294967296;
      const place = Math.floor((r + uniform) * stride);
      const start = place - (place % SAMPLE_RUN);
      for (let at = start; at < start + SAMPLE_RUN; at++) {
        const magnitude = Math.abs(x[at]);
        if (magnitude < Infinity) sample[finite++] = magnitude;
      }
    }
    this.#state = state >>> 0 || DEFAULT_SEED;
    if (finite === 0) return undefined;

    const expectedHits = (k * finite) / n;
    const rank = Math.min(
      finite,
      Math.ceil(
        expectedHits + THRESHOLD_SLACK_SIGMAS * Math.sqrt(expectedHits) + 1,
      ),
    );
    const threshold = selectDescending(sample, finite, rank - 1);
    const expectedCandidates = (n * rank) / finite;
    const capacity = Math.min(
      n,
      Math.max(4 * k, Math.ceil(2 * expectedCandidates)),
    );
    return { threshold, capacity };
  }

  #magnitudeScratch(length: number): Float32Array {
    if (this.#magnitudes.length < length) {
      this.#magnitudes = new Float32Array(length);
    }
    return this.#magnitudes;
  }

  #candidateScratch(length: number): Uint32Array {
    if (this.#candidates.length < length) {
      this.#candidates = new Uint32Array(grow(length));
    }
    return this.#candidates;
  }

  #candidateMagnitudeScratch(length: number): Float32Array {
    if (this.#candidateMagnitudes.length < length) {
      this.#candidateMagnitudes = new Float32Array(grow(length));
    }
    return this.#candidateMagnitudes;
  }

  #sampleScratch(length: number): Float32Array {
    if (this.#sample.length < length) this.#sample = new Float32Array(length);
    return this.#sample;
  }
}

/** One default selector for callers that do not keep their own. */
const sharedSelector = new TopkSelector();

/**
 * TopK of `x` by magnitude with a module-wide selector; see
 * {@link TopkSelector.select}. Not for concurrent use from workers sharing
 * this module instance (there are none: JavaScript runs one call at a time).
 */
export function selectTopK(
  x: Float32Array,
  k: number,
  method: SelectionMethod = 'fast',
): TopkSelection {
  return sharedSelector.select(x, k, method);
}

function emptySelection(nonFinite: number, fellBack: boolean): TopkSelection {
  return {
    indices: new Uint32Array(0),
    values: new Float32Array(0),
    nonFinite,
    fellBack,
  };
}

/** Grows scratch buffers by a quarter beyond the need, to amortise. */
function grow(length: number): number {
  return length + (length >>> 2) + 16;
}
