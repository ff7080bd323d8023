/**
 * Sparse vectors over a flat index space of `n` coordinates, the currency
 * of the compressor and the all-reduce.
 */

/** A sparse vector: K (index, value) pairs out of `n` coordinates. */
export interface SparseVector {
  /** Length of the dense vector this one is sparse in. */
  readonly n: number;
  /** Strictly increasing positions, each below `n`. */
  readonly indices: Uint32Array;
  /** Values at those positions; same length as `indices`. */
  readonly values: Float32Array;
}

/** An empty sparse vector of length `n`. */
export function emptySparse(n: number): SparseVector {
  return { n, indices: new Uint32Array(0), values: new Float32Array(0) };
}

/** Scatters `sparse` into a new dense Float32Array of length `sparse.n`. */
export function toDense(sparse: SparseVector): Float32Array {
  const dense = new Float32Array(sparse.n);
  const { indices, values } = sparse;
  for (let i = 0; i < indices.length; i++) dense[indices[i]] = values[i];
  return dense;
}
