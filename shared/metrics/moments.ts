import type { Features } from './features.ts';

/** Per-dimension mean (float64). */
export function mean(f: Features): Float64Array {
  const mu = new Float64Array(f.dim);
  for (let i = 0; i < f.rows; i++) {
    const o = i * f.dim;
    for (let j = 0; j < f.dim; j++) mu[j] += f.data[o + j];
  }
  if (f.rows > 0) for (let j = 0; j < f.dim; j++) mu[j] /= f.rows;
  return mu;
}

/** The rows minus their mean, float64, `rows × dim` row-major. */
export function centered(f: Features, mu: Float64Array = mean(f)): Float64Array {
  const out = new Float64Array(f.rows * f.dim);
  for (let i = 0; i < f.rows; i++) {
    const o = i * f.dim;
    for (let j = 0; j < f.dim; j++) out[o + j] = f.data[o + j] - mu[j];
  }
  return out;
}

/** Sample covariance (divisor rows − 1), `dim × dim` row-major. Needs at least 2 rows. */
export function covariance(f: Features, mu: Float64Array = mean(f)): Float64Array {
  if (f.rows < 2) throw new Error(`a covariance needs at least 2 feature vectors, got ${f.rows}`);
  const d = f.dim;
  const c = centered(f, mu);
  const cov = new Float64Array(d * d);
  for (let i = 0; i < f.rows; i++) {
    const o = i * d;
    for (let a = 0; a < d; a++) {
      const x = c[o + a];
      if (x === 0) continue;
      const ra = a * d;
      for (let b = a; b < d; b++) cov[ra + b] += x * c[o + b];
    }
  }
  const s = 1 / (f.rows - 1);
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b] * s;
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  }
  return cov;
}
