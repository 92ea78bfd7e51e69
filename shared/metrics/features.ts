/**
 * A set of feature vectors: `rows` vectors of length `dim`, row-major. Every metric in
 * shared/metrics takes features in this form, whichever network (or none) produced them.
 */
export interface Features {
  readonly rows: number;
  readonly dim: number;
  readonly data: Float32Array | Float64Array;
}

export class FeatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FeatureError';
  }
}

/** Wrap a flat array as features, checking its length and that every value is finite. */
export function features(data: Float32Array | Float64Array, rows: number, dim: number, what = 'features'): Features {
  if (!Number.isInteger(rows) || rows < 0) throw new FeatureError(`${what}: row count must be a non-negative integer, got ${rows}`);
  if (!Number.isInteger(dim) || dim < 1) throw new FeatureError(`${what}: dimension must be a positive integer, got ${dim}`);
  if (data.length !== rows * dim) throw new FeatureError(`${what}: ${data.length} values do not make ${rows} rows of ${dim}`);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new FeatureError(`${what}: value ${i} (row ${Math.floor(i / dim)}) is ${data[i]}`);
  }
  return { rows, dim, data };
}

/** Features from an array of equal-length vectors. */
export function featuresFromRows(rows: readonly ArrayLike<number>[], what = 'features'): Features {
  if (rows.length === 0) throw new FeatureError(`${what}: no rows`);
  const dim = rows[0].length;
  const data = new Float64Array(rows.length * dim);
  rows.forEach((r, i) => {
    if (r.length !== dim) throw new FeatureError(`${what}: row ${i} has ${r.length} values, row 0 has ${dim}`);
    for (let j = 0; j < dim; j++) data[i * dim + j] = r[j];
  });
  return features(data, rows.length, dim, what);
}

/** The rows at `indices`, in that order. */
export function selectRows(f: Features, indices: readonly number[]): Features {
  const out = new Float64Array(indices.length * f.dim);
  indices.forEach((r, i) => {
    if (!Number.isInteger(r) || r < 0 || r >= f.rows) throw new FeatureError(`row index ${r} is outside 0..${f.rows - 1}`);
    for (let j = 0; j < f.dim; j++) out[i * f.dim + j] = f.data[r * f.dim + j];
  });
  return { rows: indices.length, dim: f.dim, data: out };
}

/**
 * The rows of `parts`, one set after the other, checked like {@link features} (every part must have
 * dimension `dim`; every value finite). An empty list gives 0 rows.
 */
export function concatRows(parts: readonly Features[], dim: number, what = 'features'): Features {
  let rows = 0;
  for (const [i, p] of parts.entries()) {
    if (p.dim !== dim) throw new FeatureError(`${what}: part ${i} has dimension ${p.dim}, expected ${dim}`);
    rows += p.rows;
  }
  const data = new Float64Array(rows * dim);
  let at = 0;
  for (const p of parts) {
    data.set(p.data, at);
    at += p.data.length;
  }
  return features(data, rows, dim, what);
}

/** Row `i` as a view (no copy). */
export function row(f: Features, i: number): Float32Array | Float64Array {
  return f.data.subarray(i * f.dim, (i + 1) * f.dim);
}

export function assertSameDim(a: Features, b: Features, what: string): void {
  if (a.dim !== b.dim) throw new FeatureError(`${what}: feature dimensions differ (${a.dim} vs ${b.dim}); both sets must come from the same extractor`);
}
