/**
 * In-memory data splits: dense features (bytes or floats) and sparse
 * features (compressed rows), with class labels or real-valued targets.
 * Features stay in their compact form and are widened to floats only for
 * the batch being gathered: MNIST's 60k images are 47 MB as bytes and
 * would be 188 MB as floats in every peer process. Runs in a browser.
 */
import { topkError } from '../../shared/errors.ts';
import type { Batch, DataSplit } from './dataset.ts';

/** Targets of a split: class ids (one-hot on gather) or real values. */
export type Targets =
  | {
      readonly kind: 'classes';
      readonly labels: Uint8Array;
      readonly numClasses: number;
    }
  | {
      readonly kind: 'values';
      readonly values: Float32Array;
      readonly width: number;
    };

/** Width of one target row. */
export function targetWidth(targets: Targets): number {
  return targets.kind === 'classes' ? targets.numClasses : targets.width;
}

/** Number of samples `targets` describes. */
function targetCount(targets: Targets): number {
  return targets.kind === 'classes'
    ? targets.labels.length
    : targets.values.length / targets.width;
}

/** Writes the targets of sample `index` at row `row` of `y`. */
function writeTarget(
  targets: Targets,
  index: number,
  y: Float32Array,
  row: number,
): void {
  if (targets.kind === 'classes') {
    y[row * targets.numClasses + targets.labels[index]] = 1;
    return;
  }
  const { values, width } = targets;
  y.set(values.subarray(index * width, (index + 1) * width), row * width);
}

/** Throws ERR_BAD_CONFIG unless every index is a sample of the split. */
function checkIndices(indices: ArrayLike<number>, size: number): void {
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i];
    if (!Number.isInteger(index) || index < 0 || index >= size) {
      throw topkError(
        'ERR_BAD_CONFIG',
        `sample index ${index} is outside the split of ${size} samples`,
        { index, size },
      );
    }
  }
}

/** A split whose features are a dense row-major array. */
export class DenseSplit implements DataSplit {
  readonly size: number;

  /**
   * @param features `size * featureSize` values, sample after sample.
   * @param featureSize values per sample.
   * @param targets the labels or target values of every sample.
   * @param scale multiplies every feature on gather (1/255 for pixels).
   * @param offset is added after scaling (to centre the features).
   */
  constructor(
    readonly features: Uint8Array | Float32Array,
    readonly featureSize: number,
    readonly targets: Targets,
    readonly scale = 1,
    readonly offset = 0,
  ) {
    this.size = targetCount(targets);
    if (features.length !== this.size * featureSize) {
      throw topkError(
        'ERR_BAD_CONFIG',
        `dense split expected ${this.size} x ${featureSize} features, got ` +
          `${features.length} values`,
        { size: this.size, featureSize, length: features.length },
      );
    }
  }

  /** The samples at `indices`. */
  gather(indices: ArrayLike<number>): Batch {
    checkIndices(indices, this.size);
    const n = indices.length;
    const width = targetWidth(this.targets);
    const x = new Float32Array(n * this.featureSize);
    const y = new Float32Array(n * width);
    const { features, featureSize, scale, offset } = this;
    for (let row = 0; row < n; row++) {
      const from = indices[row] * featureSize;
      const to = row * featureSize;
      for (let j = 0; j < featureSize; j++) {
        x[to + j] = features[from + j] * scale + offset;
      }
      writeTarget(this.targets, indices[row], y, row);
    }
    return { size: n, x, y };
  }
}

/** Sparse features in compressed-row form. */
export interface SparseRows {
  /** Row r's entries are at positions rowStart[r] .. rowStart[r + 1]. */
  readonly rowStart: Uint32Array;
  /** Feature index of each entry. */
  readonly columns: Uint32Array;
  /** Value of each entry. */
  readonly values: Float32Array;
  /** Number of features (the dense width). */
  readonly width: number;
}

/** A split whose features are sparse rows, made dense on gather. */
export class SparseSplit implements DataSplit {
  readonly size: number;

  constructor(
    readonly rows: SparseRows,
    readonly targets: Targets,
  ) {
    this.size = targetCount(targets);
    if (rows.rowStart.length !== this.size + 1) {
      throw topkError(
        'ERR_BAD_CONFIG',
        `sparse split expected ${this.size + 1} row starts, got ` +
          `${rows.rowStart.length}`,
        { size: this.size, rowStarts: rows.rowStart.length },
      );
    }
  }

  /** The samples at `indices`, as dense rows. */
  gather(indices: ArrayLike<number>): Batch {
    checkIndices(indices, this.size);
    const n = indices.length;
    const { rowStart, columns, values, width } = this.rows;
    const x = new Float32Array(n * width);
    const y = new Float32Array(n * targetWidth(this.targets));
    for (let row = 0; row < n; row++) {
      const sample = indices[row];
      for (let k = rowStart[sample]; k < rowStart[sample + 1]; k++) {
        x[row * width + columns[k]] = values[k];
      }
      writeTarget(this.targets, sample, y, row);
    }
    return { size: n, x, y };
  }
}
