/**
 * The settings of the TopK compressor, checked once when the compressor is
 * made, and the rule that turns a density into a count K.
 *
 * K from a density: `K = round(density * n)`, but at least 1 when the
 * density is above zero and the vector is not empty. Rounding rather than
 * `ceil` because `density * n` carries binary rounding error
 * (`0.1 * 30 = 3.0000000000000004`, whose ceil would be 4); the floor of 1
 * keeps a tiny density from silently sending nothing.
 */
import { describeValue, topkError } from './errors.ts';
import { SELECTION_METHODS, type SelectionMethod } from './topk.ts';

/** TopK over the whole flattened model (the paper's) or per model variable. */
export type TopkScope = 'global' | 'per-tensor';

/** The scopes, for validating user input. */
export const TOPK_SCOPES: readonly TopkScope[] = ['global', 'per-tensor'];

/** What a caller gives to make a compressor. */
export interface CompressorOptions {
  /** Coordinates in the flattened model. */
  readonly n: number;
  /**
   * Entries to send, as a count. With `per-tensor` scope, each tensor sends
   * up to `k` of its own. Clamped to the length it applies to (case 14).
   * Exactly one of `k` and `density` must be given.
   */
  readonly k?: number;
  /** Entries to send as a fraction of the length, in [0, 1]. */
  readonly density?: number;
  /** Default `global`. */
  readonly scope?: TopkScope;
  /**
   * Element counts of the model variables in flattening order, summing to
   * `n`; required with `per-tensor` scope, zeros allowed (case 13).
   */
  readonly tensorSizes?: readonly number[];
  /** Default `fast`; both methods send the same entries. */
  readonly selection?: SelectionMethod;
  /** Seed of the fast selection's sampling (affects speed, not results). */
  readonly seed?: number;
}

/** Checked settings with every K worked out. */
export interface CompressorConfig {
  readonly n: number;
  readonly scope: TopkScope;
  readonly selection: SelectionMethod;
  readonly seed: number | undefined;
  /** First coordinate of each part that is selected on its own. */
  readonly partOffsets: readonly number[];
  /** Length of each part (one part, of length n, in global scope). */
  readonly partSizes: readonly number[];
  /** K of each part, already clamped to its length. */
  readonly partKs: readonly number[];
  /** Entries sent per step in total. */
  readonly totalK: number;
  /**
   * The paper's gamma, `sqrt((n - K) / n)`: TopK keeps at least K/n of the
   * squared norm, so `||acc - TopK(acc)|| <= gamma * ||acc||`. Per tensor
   * the bound holds with the worst part's `(n_t - K_t) / n_t`; 0 when there
   * is nothing to compress.
   */
  readonly gamma: number;
}

/**
 * K for `n` coordinates at `density` (see the module comment for why
 * rounding). The density must already be checked.
 */
export function kForDensity(density: number, n: number): number {
  if (density === 0 || n === 0) return 0;
  return Math.min(n, Math.max(1, Math.round(density * n)));
}

/** Throws `ERR_BAD_CONFIG` unless `density` is a number in [0, 1]. */
export function checkDensity(density: unknown): number {
  if (typeof density !== 'number' || !(density >= 0 && density <= 1)) {
    throw badSetting('density', 'must be in [0, 1]', density);
  }
  return density;
}

/** Throws `ERR_BAD_CONFIG` unless `k` is an integer >= 0. */
export function checkK(k: unknown): number {
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 0) {
    throw badSetting('k', 'must be an integer >= 0', k);
  }
  return k;
}

/**
 * Throws `ERR_BAD_CONFIG` unless the learning rate is a finite number
 * >= 0 (0 is allowed: the step then only re-sends what the residual holds).
 */
export function checkLearningRate(learningRate: unknown): number {
  if (
    typeof learningRate !== 'number' ||
    !(learningRate >= 0 && learningRate < Infinity)
  ) {
    throw badSetting(
      'learning rate',
      'must be a finite number >= 0',
      learningRate,
    );
  }
  return learningRate;
}

/** Checks `options` and works out every K; throws `ERR_BAD_CONFIG`. */
export function resolveCompressorConfig(
  options: CompressorOptions,
): CompressorConfig {
  const n = options.n;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    throw badSetting('n', 'must be an integer >= 0', n);
  }
  if ((options.k === undefined) === (options.density === undefined)) {
    throw topkError(
      'ERR_BAD_CONFIG',
      'exactly one of k and density must be given, got ' +
        (options.k === undefined ? 'neither' : 'both'),
      { setting: 'k', k: options.k, density: options.density },
    );
  }
  const k = options.k === undefined ? undefined : checkK(options.k);
  const density =
    options.density === undefined ? undefined : checkDensity(options.density);

  const scope = options.scope ?? 'global';
  if (!TOPK_SCOPES.includes(scope)) {
    throw badSetting(
      'scope',
      `must be one of ${TOPK_SCOPES.join(', ')}`,
      scope,
    );
  }
  const selection = options.selection ?? 'fast';
  if (!SELECTION_METHODS.includes(selection)) {
    throw badSetting(
      'selection',
      `must be one of ${SELECTION_METHODS.join(', ')}`,
      selection,
    );
  }

  const partSizes = scope === 'global' ? [n] : checkTensorSizes(options, n);
  const partOffsets: number[] = [];
  const partKs: number[] = [];
  let offset = 0;
  let totalK = 0;
  let worstKept = 0;
  for (const size of partSizes) {
    const partK =
      k !== undefined ? Math.min(k, size) : kForDensity(density ?? 0, size);
    partOffsets.push(offset);
    partKs.push(partK);
    offset += size;
    totalK += partK;
    if (size > 0) worstKept = Math.max(worstKept, (size - partK) / size);
  }

  return {
    n,
    scope,
    selection,
    seed: options.seed,
    partOffsets,
    partSizes,
    partKs,
    totalK,
    gamma: Math.sqrt(worstKept),
  };
}

function checkTensorSizes(options: CompressorOptions, n: number): number[] {
  const sizes = options.tensorSizes;
  if (sizes === undefined) {
    throw topkError(
      'ERR_BAD_CONFIG',
      'tensorSizes must be given with per-tensor scope, got undefined',
      { setting: 'tensorSizes' },
    );
  }
  let sum = 0;
  for (const size of sizes) {
    if (!Number.isInteger(size) || size < 0) {
      throw badSetting('tensorSizes', 'must hold integers >= 0', size);
    }
    sum += size;
  }
  if (sum !== n) {
    throw topkError(
      'ERR_BAD_CONFIG',
      `tensorSizes must sum to n = ${n}, got ${sum}`,
      { setting: 'tensorSizes', n, sum },
    );
  }
  return [...sizes];
}

function badSetting(setting: string, rule: string, value: unknown) {
  return topkError(
    'ERR_BAD_CONFIG',
    `${setting} ${rule}, got ${describeValue(value)}`,
    { setting, value: typeof value === 'number' ? value : String(value) },
  );
}
