/**
 * TopK compression with error feedback: steps 1-3 of the paper's
 * Algorithm 1 (see ALGORITHM.md), for one peer.
 *
 * The peer's residual (what earlier steps did not send) lives here, a dense
 * Float32Array over the whole flattened model. Every step adds the scaled
 * gradient to it, sends the K largest entries and keeps the rest, so
 * nothing a peer computed is ever dropped, only delayed.
 */
import createDebug from 'debug';

import {
  checkLearningRate,
  resolveCompressorConfig,
  type CompressorConfig,
  type CompressorOptions,
} from './compressor-config.ts';
import { topkError } from './errors.ts';
import { emptySparse, type SparseVector } from './sparse.ts';
import { TopkSelector } from './topk.ts';
import { countNonFinite } from './topk-scan.ts';

const log = createDebug('topk:compressor');

/**
 * Below this share of `||acc||^2` left in the residual, the residual's norm
 * obtained by subtraction has lost too many digits to cancellation and is
 * summed again directly (a rare extra pass).
 */
const CANCELLATION_SHARE = 1e-6;

/** What one call of {@link Compressor.compress} measured. */
export interface CompressStats {
  /** Entries sent. */
  readonly k: number;
  /**
   * NaN or infinite entries of `residual + lr * gradient` (a non-finite
   * gradient entry, or a float32 overflow of the sum).
   */
  readonly nonFinite: number;
  /**
   * True when `nonFinite > 0`: nothing is sent and the residual is left as
   * it was before the call; the caller skips the step.
   */
  readonly skipped: boolean;
  /** `||acc||`; NaN when skipped. */
  readonly accNorm: number;
  /** `||residual||` after the call (before it, when skipped). */
  readonly residualNorm: number;
  /**
   * The measured `||acc - TopK(acc)|| / ||acc||` (0 when acc is zero; NaN
   * when skipped): usually far below {@link gamma}.
   */
  readonly ratio: number;
  /** The paper's bound on {@link ratio}; see `CompressorConfig.gamma`. */
  readonly gamma: number;
  /** True when fast selection fell back to exact in some part. */
  readonly fellBack: boolean;
}

/** The outcome of {@link Compressor.compress}. */
export interface CompressResult {
  /** The entries to sum across peers (`S_p` of Algorithm 1). */
  readonly sent: SparseVector;
  /** Measurements of this step. */
  readonly stats: CompressStats;
}

/** One peer's error-feedback state and its TopK compressor. */
export class Compressor {
  /** The checked settings, with every K worked out. */
  readonly config: CompressorConfig;
  readonly #selector: TopkSelector;
  /** Holds `eps_p` between steps. */
  #residual: Float32Array;
  /**
   * Where the next `acc` is built. Swapped with the residual when a step
   * goes through, so the old residual survives untouched when it does not.
   */
  #spare: Float32Array;

  /** Throws `ERR_BAD_CONFIG` naming the bad setting. */
  constructor(options: CompressorOptions) {
    this.config = resolveCompressorConfig(options);
    this.#selector = new TopkSelector({ seed: this.config.seed });
    this.#residual = new Float32Array(this.config.n);
    this.#spare = new Float32Array(this.config.n);
  }

  /** Coordinates in the flattened model. */
  get n(): number {
    return this.config.n;
  }

  /**
   * Steps 1-3 of Algorithm 1:
   * 1. `acc = residual + lr * gradient`;
   * 2. `S = TopK(acc)` (per part, with per-tensor scope);
   * 3. `residual = acc - S`: the sent positions become exactly zero, so
   *    `acc === S + residual` holds bit for bit.
   *
   * A NaN or infinite entry in `acc` sends nothing and leaves the residual
   * as it was (`stats.skipped`). Throws `ERR_BAD_CONFIG` for a bad `lr`.
   */
  compress(gradient: Float32Array, lr: number): CompressResult {
    checkLearningRate(lr);
    this.#checkLength('gradient', gradient.length);
    const { n, gamma } = this.config;

    // Step 1, into the spare buffer. The sum of squares is infinite or NaN
    // exactly when some entry is, so finiteness costs no test per entry.
    const acc = this.#spare;
    const residual = this.#residual;
    const accSquares = accumulate(residual, gradient, lr, acc);
    if (!(accSquares < Infinity)) {
      const nonFinite = countNonFinite(acc);
      log('step skipped: %d non-finite entries in acc', nonFinite);
      return {
        sent: emptySparse(n),
        stats: {
          k: 0,
          nonFinite,
          skipped: true,
          accNorm: NaN,
          residualNorm: this.residualNorm(),
          ratio: NaN,
          gamma,
          fellBack: false,
        },
      };
    }

    // Step 2.
    const { sent, fellBack } = this.#select(acc);

    // Step 3.
    let sentSquares = 0;
    const { indices, values } = sent;
    for (let j = 0; j < indices.length; j++) {
      sentSquares += values[j] * values[j];
      acc[indices[j]] = 0;
    }
    this.#spare = residual;
    this.#residual = acc;

    let residualSquares = accSquares - sentSquares;
    if (indices.length === n) {
      residualSquares = 0;
    } else if (residualSquares <= CANCELLATION_SHARE * accSquares) {
      residualSquares = sumOfSquares(acc);
    }
    const accNorm = Math.sqrt(accSquares);
    const residualNorm = Math.sqrt(Math.max(0, residualSquares));
    return {
      sent,
      stats: {
        k: indices.length,
        nonFinite: 0,
        skipped: false,
        accNorm,
        residualNorm,
        ratio: accNorm > 0 ? residualNorm / accNorm : 0,
        gamma,
        fellBack,
      },
    };
  }

  /**
   * Adds `sent` back into the residual: a step whose all-reduce was aborted
   * then loses nothing. Right after the `compress` that produced `sent`,
   * this restores `acc` exactly (the sent positions held zeros).
   * Validates before touching anything: `ERR_INTERNAL` for a vector of the
   * wrong shape, `ERR_NON_FINITE` for a non-finite value.
   */
  restore(sent: SparseVector): void {
    this.#checkLength('restored vector', sent.n);
    const { indices, values } = sent;
    if (indices.length !== values.length) {
      throw topkError(
        'ERR_INTERNAL',
        `restore expects as many values as indices (${indices.length}), ` +
          `got ${values.length}`,
        { indices: indices.length, values: values.length },
      );
    }
    for (let j = 0; j < indices.length; j++) {
      if (indices[j] >= this.n) {
        throw topkError(
          'ERR_INTERNAL',
          `restore expects indices below n = ${this.n}, got ${indices[j]}`,
          { n: this.n, index: indices[j] },
        );
      }
      if (!Number.isFinite(values[j])) {
        throw topkError(
          'ERR_NON_FINITE',
          `restore expects finite values, got ${values[j]} at index ` +
            `${indices[j]}`,
          { index: indices[j], value: String(values[j]) },
        );
      }
    }

    const residual = this.#residual;
    for (let j = 0; j < indices.length; j++) {
      residual[indices[j]] += values[j];
    }
  }

  /** `||residual||`, summed in float64. */
  residualNorm(): number {
    return Math.sqrt(sumOfSquares(this.#residual));
  }

  /**
   * The live residual, for reading (metrics, the mean-residual gap of the
   * paper). Do not write to it, and do not keep it past the next
   * `compress`: the compressor swaps buffers.
   */
  residualView(): Float32Array {
    return this.#residual;
  }

  /** Empties the residual: a peer that joins a running ring starts empty. */
  reset(): void {
    this.#residual.fill(0);
  }

  /** A copy of the residual, for a checkpoint. */
  saveResidual(): Float32Array {
    return this.#residual.slice();
  }

  /**
   * Replaces the residual with a checkpointed one. Throws
   * `ERR_BAD_CHECKPOINT` when its length differs from n or it holds a
   * non-finite value; the residual is then left unchanged.
   */
  loadResidual(saved: Float32Array): void {
    if (saved.length !== this.n) {
      throw topkError(
        'ERR_BAD_CHECKPOINT',
        `residual must have n = ${this.n} entries, got ${saved.length}`,
        { n: this.n, length: saved.length },
      );
    }
    const nonFinite = countNonFinite(saved);
    if (nonFinite > 0) {
      throw topkError(
        'ERR_BAD_CHECKPOINT',
        `residual must be finite, got ${nonFinite} non-finite entries`,
        { nonFinite },
      );
    }
    this.#residual.set(saved);
  }

  /** Step 2: TopK over the whole model or over each part. */
  #select(acc: Float32Array): { sent: SparseVector; fellBack: boolean } {
    const { n, selection, partOffsets, partSizes, partKs, totalK } =
      this.config;
    if (partSizes.length === 1) {
      const picked = this.#selector.select(acc, partKs[0], selection);
      return {
        sent: { n, indices: picked.indices, values: picked.values },
        fellBack: picked.fellBack,
      };
    }

    // Parts follow each other in index order, so appending their picks
    // (shifted to global positions) keeps the indices increasing.
    const indices = new Uint32Array(totalK);
    const values = new Float32Array(totalK);
    let out = 0;
    let fellBack = false;
    for (let part = 0; part < partSizes.length; part++) {
      if (partKs[part] === 0) continue;
      const offset = partOffsets[part];
      const picked = this.#selector.select(
        acc.subarray(offset, offset + partSizes[part]),
        partKs[part],
        selection,
      );
      for (let j = 0; j < picked.indices.length; j++) {
        indices[out + j] = picked.indices[j] + offset;
      }
      values.set(picked.values, out);
      out += picked.indices.length;
      fellBack ||= picked.fellBack;
    }
    return { sent: { n, indices, values }, fellBack };
  }

  #checkLength(what: string, length: number): void {
    if (length !== this.n) {
      throw topkError(
        'ERR_INTERNAL',
        `${what} must have n = ${this.n} entries, got ${length}`,
        { n: this.n, length },
      );
    }
  }
}

/**
 * Step 1: `acc = residual + lr * gradient`, rounded to float32 once per
 * entry; returns `||acc||^2` summed in float64. A plain function over typed
 * arrays, which V8 compiles to a much tighter loop than the same code in a
 * class method reading private fields.
 */
function accumulate(
  residual: Float32Array,
  gradient: Float32Array,
  lr: number,
  acc: Float32Array,
): number {
  let squares = 0;
  for (let i = 0; i < acc.length; i++) {
    const value = Math.fround(residual[i] + lr * gradient[i]);
    acc[i] = value;
    squares += value * value;
  }
  return squares;
}

/** Sum of squares in float64. */
function sumOfSquares(values: Float32Array): number {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i] * values[i];
  return total;
}
