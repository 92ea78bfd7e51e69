/**
 * Kernel Inception Distance (Bińkowski et al., 2018): the unbiased estimate of the squared MMD
 * between two feature sets under the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³, averaged over
 * random subsets, with its standard deviation over those subsets. Unlike FID its estimator is
 * unbiased, so it is comparable across sample sizes and usable at small N.
 *
 *     MMD²ᵤ = Σ_{i≠j} k(xᵢ,xⱼ) / (m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ) / (n(n−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ) / (m n)
 */
import { assertSameDim, FeatureError, type Features } from './features.ts';
import { Rng } from '../rng.ts';

export interface KidOptions {
  /** Number of random subset pairs (default 100). */
  subsets?: number;
  /**
   * Vectors per subset, drawn without replacement within a subset (default: min(1000, ⌊n_min / 2⌋),
   * at least 2), so that the subsets differ and their spread says something.
   */
  subsetSize?: number;
  seed?: number;
}

export interface KidResult {
  mean: number;
  std: number;
  subsets: number;
  subsetSize: number;
}

/** The cubic polynomial kernel of KID. */
export function polynomialKernel(x: ArrayLike<number>, xo: number, y: ArrayLike<number>, yo: number, d: number): number {
  let dot = 0;
  for (let t = 0; t < d; t++) dot += x[xo + t] * y[yo + t];
  const v = dot / d + 1;
  return v * v * v;
}

/**
 * Unbiased MMD² from kernel sums: `sumXX`/`sumYY` exclude the diagonal (i ≠ j), `sumXY` is over all pairs.
 */
export function mmd2Unbiased(sumXX: number, m: number, sumYY: number, n: number, sumXY: number): number {
  if (m < 2 || n < 2) throw new FeatureError(`the unbiased MMD² needs at least 2 vectors per set, got ${m} and ${n}`);
  return sumXX / (m * (m - 1)) + sumYY / (n * (n - 1)) - (2 * sumXY) / (m * n);
}

/** Unbiased MMD² between two whole feature sets (no subsets). */
export function mmd2(x: Features, y: Features): number {
  assertSameDim(x, y, 'MMD²');
  const d = x.dim;
  let sxx = 0;
  for (let i = 0; i < x.rows; i++) for (let j = i + 1; j < x.rows; j++) sxx += 2 * polynomialKernel(x.data, i * d, x.data, j * d, d);
  let syy = 0;
  for (let i = 0; i < y.rows; i++) for (let j = i + 1; j < y.rows; j++) syy += 2 * polynomialKernel(y.data, i * d, y.data, j * d, d);
  let sxy = 0;
  for (let i = 0; i < x.rows; i++) for (let j = 0; j < y.rows; j++) sxy += polynomialKernel(x.data, i * d, y.data, j * d, d);
  return mmd2Unbiased(sxx, x.rows, syy, y.rows, sxy);
}

/** Lazily filled kernel matrix between two row sets (each entry computed once). */
class KernelCache {
  private readonly values: Float64Array;
  private readonly known: Uint8Array;
  constructor(
    private readonly a: Features,
    private readonly b: Features,
  ) {
    this.values = new Float64Array(a.rows * b.rows);
    this.known = new Uint8Array(a.rows * b.rows);
  }
  get(i: number, j: number): number {
    const k = i * this.b.rows + j;
    if (!this.known[k]) {
      this.values[k] = polynomialKernel(this.a.data, i * this.a.dim, this.b.data, j * this.b.dim, this.a.dim);
      this.known[k] = 1;
    }
    return this.values[k];
  }
}

function sampleWithoutReplacement(rng: Rng, n: number, k: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(n - i);
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return idx.slice(0, k);
}

export function defaultKidSubsetSize(nx: number, ny: number): number {
  return Math.max(2, Math.min(1000, Math.floor(Math.min(nx, ny) / 2)));
}

/** KID mean and standard deviation over random subsets. */
export function kid(x: Features, y: Features, opts: KidOptions = {}): KidResult {
  assertSameDim(x, y, 'KID');
  const subsets = opts.subsets ?? 100;
  const m = opts.subsetSize ?? defaultKidSubsetSize(x.rows, y.rows);
  if (!Number.isInteger(subsets) || subsets < 1) throw new FeatureError(`KID: subsets must be a positive integer, got ${subsets}`);
  if (!Number.isInteger(m) || m < 2) throw new FeatureError(`KID: subset size must be an integer ≥ 2, got ${m}`);
  if (m > x.rows || m > y.rows) throw new FeatureError(`KID: subset size ${m} exceeds the smaller set (${x.rows} and ${y.rows} vectors)`);
  // Kernel entries are cached only while the full matrices stay modest (≤ ~64 MB each).
  const cacheable = x.rows * x.rows <= 8_000_000 && y.rows * y.rows <= 8_000_000 && x.rows * y.rows <= 8_000_000;
  const kxx = cacheable ? new KernelCache(x, x) : null;
  const kyy = cacheable ? new KernelCache(y, y) : null;
  const kxy = cacheable ? new KernelCache(x, y) : null;
  const d = x.dim;
  const rng = new Rng(opts.seed ?? 0);
  const values: number[] = [];
  for (let s = 0; s < subsets; s++) {
    const ix = sampleWithoutReplacement(rng, x.rows, m);
    const iy = sampleWithoutReplacement(rng, y.rows, m);
    let sxx = 0;
    let syy = 0;
    let sxy = 0;
    for (let a = 0; a < m; a++) {
      for (let b = a + 1; b < m; b++) {
        const p = Math.min(ix[a], ix[b]);
        const q = Math.max(ix[a], ix[b]);
        sxx += 2 * (kxx ? kxx.get(p, q) : polynomialKernel(x.data, p * d, x.data, q * d, d));
        const u = Math.min(iy[a], iy[b]);
        const v = Math.max(iy[a], iy[b]);
        syy += 2 * (kyy ? kyy.get(u, v) : polynomialKernel(y.data, u * d, y.data, v * d, d));
      }
      for (let b = 0; b < m; b++) sxy += kxy ? kxy.get(ix[a], iy[b]) : polynomialKernel(x.data, ix[a] * d, y.data, iy[b] * d, d);
    }
    values.push(mmd2Unbiased(sxx, m, syy, m, sxy));
  }
  const mean = values.reduce((t, v) => t + v, 0) / values.length;
  const std = Math.sqrt(values.reduce((t, v) => t + (v - mean) ** 2, 0) / values.length);
  return { mean, std, subsets, subsetSize: m };
}
