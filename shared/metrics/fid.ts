/**
 * Fréchet distance between two Gaussians fitted to feature sets (FID when the features are
 * InceptionV3 pool features):
 *
 *     FID = ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 · Tr √(Σ₁ Σ₂)
 *
 * Tr √(Σ₁Σ₂) is the sum of the square roots of the eigenvalues of Σ₁Σ₂ (real and ≥ 0, since both
 * are positive semi-definite). Two exact ways to get them, both through symmetric eigenvalue problems:
 *
 * - From the features (used when a set has no more vectors than dimensions, e.g. 1,000 tiles of
 *   2048-d features): with centred data A₁ (n₁×d), A₂ (n₂×d), Σᵢ = Aᵢᵀ Aᵢ / (nᵢ − 1). The non-zero
 *   eigenvalues of A₁ᵀA₁A₂ᵀA₂ are those of K Kᵀ with K = A₁ A₂ᵀ (n₁×n₂), so
 *   Tr √(Σ₁Σ₂) = Σ √λ(K Kᵀ) / √((n₁−1)(n₂−1)) — the nuclear norm of K, scaled. The eigen problem is
 *   min(n₁, n₂)-sized instead of d-sized.
 * - From the covariances (d×d): with Σ₁ = V Λ Vᵀ and B = Λ^½ Vᵀ (so Σ₁ = BᵀB), the non-zero
 *   eigenvalues of Σ₁Σ₂ are those of the symmetric B Σ₂ Bᵀ = √Σ₁ Σ₂ √Σ₁ up to a rotation.
 *
 * Tiny negative eigenvalues from rounding are clamped to 0.
 */
import { assertSameDim, FeatureError, type Features } from './features.ts';
import { multiplyABt, multiplyAtA } from './matrix.ts';
import { centered, covariance, mean } from './moments.ts';
import { symmetricEigen, symmetricEigenvalues } from './symmetricEigen.ts';

export interface GaussianStats {
  readonly dim: number;
  readonly count: number;
  readonly mean: Float64Array;
  /** `dim × dim` row-major sample covariance. */
  readonly cov: Float64Array;
}

export interface FidParts {
  fid: number;
  /** ‖μ₁ − μ₂‖² */
  meanTerm: number;
  traceCov1: number;
  traceCov2: number;
  traceSqrtProduct: number;
}

export function gaussianStats(f: Features): GaussianStats {
  if (f.rows < 2) throw new FeatureError(`FID needs at least 2 feature vectors per set, got ${f.rows}`);
  const mu = mean(f);
  return { dim: f.dim, count: f.rows, mean: mu, cov: covariance(f, mu) };
}

function sumSqrtNonNegative(values: Float64Array): number {
  let s = 0;
  for (const v of values) if (v > 0) s += Math.sqrt(v);
  return s;
}

function squaredDistance(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s;
}

function trace(m: Float64Array, d: number): number {
  let s = 0;
  for (let i = 0; i < d; i++) s += m[i * d + i];
  return s;
}

/** Tr √(Σ₁Σ₂) from two `d × d` covariance matrices. */
export function traceSqrtProductOfCovariances(cov1: Float64Array, cov2: Float64Array, d: number): number {
  const { values, vectors } = symmetricEigen(cov1, d, { vectors: true });
  // Keep the eigenpairs with λ > 0: B (r × d), row k = √λ_k v_kᵀ.
  const keep: number[] = [];
  for (let k = 0; k < d; k++) if (values[k] > 0) keep.push(k);
  const r = keep.length;
  if (r === 0) return 0;
  const b = new Float64Array(r * d);
  keep.forEach((k, row) => {
    const s = Math.sqrt(values[k]);
    for (let j = 0; j < d; j++) b[row * d + j] = s * vectors![k * d + j];
  });
  // C = B Σ₂ (r × d): Σ₂ is symmetric, so row i of C is Σ₂ b_i, i.e. C = B Σ₂ᵀ = multiplyABt(B, Σ₂).
  const c = multiplyABt(b, r, cov2, d, d);
  // M = C Bᵀ (r × r), symmetric.
  const m = multiplyABt(c, r, b, r, d);
  return sumSqrtNonNegative(symmetricEigenvalues(m, r));
}

/** Fréchet distance between two fitted Gaussians (the d×d route). */
export function frechetDistance(a: GaussianStats, b: GaussianStats): FidParts {
  if (a.dim !== b.dim) throw new FeatureError(`FID: feature dimensions differ (${a.dim} vs ${b.dim})`);
  const d = a.dim;
  const meanTerm = squaredDistance(a.mean, b.mean);
  const traceCov1 = trace(a.cov, d);
  const traceCov2 = trace(b.cov, d);
  const traceSqrtProduct = traceSqrtProductOfCovariances(a.cov, b.cov, d);
  return { fid: meanTerm + traceCov1 + traceCov2 - 2 * traceSqrtProduct, meanTerm, traceCov1, traceCov2, traceSqrtProduct };
}

/**
 * FID between two feature sets. Uses the n-sized route when min(n₁, n₂) ≤ dim (exact, and far
 * cheaper for 1,000 × 2048-d), the d×d route otherwise.
 */
export function fidParts(x: Features, y: Features): FidParts {
  assertSameDim(x, y, 'FID');
  if (x.rows < 2 || y.rows < 2) throw new FeatureError(`FID needs at least 2 feature vectors per set, got ${x.rows} and ${y.rows}`);
  const d = x.dim;
  if (Math.min(x.rows, y.rows) > d) return frechetDistance(gaussianStats(x), gaussianStats(y));
  const mu1 = mean(x);
  const mu2 = mean(y);
  const a1 = centered(x, mu1);
  const a2 = centered(y, mu2);
  let ss1 = 0;
  for (const v of a1) ss1 += v * v;
  let ss2 = 0;
  for (const v of a2) ss2 += v * v;
  const n1 = x.rows;
  const n2 = y.rows;
  const k = multiplyABt(a1, n1, a2, n2, d); // n1 × n2
  const g = n1 <= n2 ? multiplyABt(k, n1, k, n1, n2) : multiplyAtA(k, n1, n2);
  const size = Math.min(n1, n2);
  const traceSqrtProduct = sumSqrtNonNegative(symmetricEigenvalues(g, size)) / Math.sqrt((n1 - 1) * (n2 - 1));
  const meanTerm = squaredDistance(mu1, mu2);
  const traceCov1 = ss1 / (n1 - 1);
  const traceCov2 = ss2 / (n2 - 1);
  return { fid: meanTerm + traceCov1 + traceCov2 - 2 * traceSqrtProduct, meanTerm, traceCov1, traceCov2, traceSqrtProduct };
}

/** FID between two feature sets (see fidParts). */
export function fid(x: Features, y: Features): number {
  return fidParts(x, y).fid;
}
