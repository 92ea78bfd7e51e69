/**
 * Eigen-decomposition of a real symmetric matrix in plain typed arrays (float64):
 * Householder reduction to tridiagonal form, then the implicit QL algorithm with Wilkinson-style
 * shifts. Cost ≈ (4/3)·n³ for the reduction plus O(n²) for the eigenvalues alone; asking for the
 * eigenvectors adds about (4/3)·n³ to accumulate the reflections and ≈ 3·n³ for the rotations.
 *
 * Used by FID (the trace of a matrix square root) and anything else that needs a symmetric spectrum.
 */

export interface SymmetricEigen {
  /** Eigenvalues in ascending order. */
  values: Float64Array;
  /**
   * Eigenvectors, one per row (row k belongs to values[k]), `n × n` row-major, orthonormal.
   * Present only when requested.
   */
  vectors?: Float64Array;
}

export class EigenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EigenError';
  }
}

/**
 * Eigenvalues (and optionally eigenvectors) of the symmetric `n × n` row-major matrix `a`.
 * `a` is not modified. Only the lower triangle is read, so a matrix that is symmetric up to rounding
 * is treated as exactly symmetric.
 */
export function symmetricEigen(a: ArrayLike<number>, n: number, opts: { vectors?: boolean } = {}): SymmetricEigen {
  if (!Number.isInteger(n) || n < 0) throw new EigenError(`matrix order must be a non-negative integer, got ${n}`);
  if (a.length !== n * n) throw new EigenError(`matrix holds ${a.length} values, expected ${n}×${n} = ${n * n}`);
  const wantVectors = opts.vectors === true;
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      const v = a[i * n + j];
      if (!Number.isFinite(v)) throw new EigenError(`matrix entry (${i}, ${j}) is ${v}; eigen-decomposition needs finite values`);
      m[i * n + j] = v;
      m[j * n + i] = v;
    }
  }
  const diag = new Float64Array(n);
  const off = new Float64Array(n); // off[i] couples i and i+1; off[n-1] = 0
  const reflectors = tridiagonalize(m, n, diag, off, wantVectors);
  // z holds the transposed accumulated transform: row k is the k-th column of Q.
  const z = wantVectors ? accumulateReflectors(reflectors!, n) : null;
  implicitQL(diag, off, n, z);
  return sortAscending(diag, z, n);
}

/** Eigenvalues only (ascending). */
export function symmetricEigenvalues(a: ArrayLike<number>, n: number): Float64Array {
  return symmetricEigen(a, n).values;
}

interface Reflectors {
  /** Householder vectors v_k (length n, zeros above k+1), stored row k of an n×n array. */
  v: Float64Array;
  beta: Float64Array;
}

/**
 * In-place Householder tridiagonalisation: for k = 0..n-3, a reflector H_k = I − β v vᵀ zeroes
 * column k below the sub-diagonal, and the trailing block is updated as A ← H A H by the rank-2
 * update A − v wᵀ − w vᵀ with p = β A v, w = p − (β/2)(pᵀv) v.
 */
function tridiagonalize(m: Float64Array, n: number, diag: Float64Array, off: Float64Array, keep: boolean): Reflectors | null {
  const refl: Reflectors | null = keep ? { v: new Float64Array(n * n), beta: new Float64Array(n) } : null;
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const s = k + 1; // first row of the trailing block
    // x = m[s.., k]
    let scale = 0;
    for (let i = s; i < n; i++) scale = Math.max(scale, Math.abs(m[i * n + k]));
    if (scale === 0) {
      off[k] = 0;
      continue;
    }
    let sigma = 0;
    for (let i = s; i < n; i++) {
      const xi = m[i * n + k] / scale;
      v[i] = xi;
      sigma += xi * xi;
    }
    const x0 = v[s];
    const normX = Math.sqrt(sigma);
    const alpha = x0 >= 0 ? -normX : normX; // H x = alpha·e1, sign chosen to avoid cancellation
    v[s] = x0 - alpha;
    const vtv = sigma - x0 * x0 + v[s] * v[s];
    if (vtv === 0) {
      off[k] = m[s * n + k];
      continue;
    }
    const beta = 2 / vtv;
    off[k] = alpha * scale;
    // p = beta · A22 · v  (A22 = m[s.., s..], symmetric)
    let ptv = 0;
    for (let i = s; i < n; i++) {
      let acc = 0;
      const row = i * n;
      for (let j = s; j < n; j++) acc += m[row + j] * v[j];
      p[i] = beta * acc;
      ptv += p[i] * v[i];
    }
    const half = (beta * ptv) / 2;
    for (let i = s; i < n; i++) p[i] -= half * v[i]; // p is now w
    for (let i = s; i < n; i++) {
      const row = i * n;
      const vi = v[i];
      const wi = p[i];
      for (let j = s; j < n; j++) m[row + j] -= vi * p[j] + wi * v[j];
    }
    if (refl) {
      refl.beta[k] = beta;
      const base = k * n;
      for (let i = s; i < n; i++) refl.v[base + i] = v[i];
    }
  }
  for (let i = 0; i < n; i++) diag[i] = m[i * n + i];
  if (n >= 2) off[n - 2] = m[(n - 1) * n + (n - 2)];
  if (n >= 1) off[n - 1] = 0;
  return refl;
}

/**
 * Q = H_0 H_1 … H_{n-3}; returns Qᵀ row-major (row k = column k of Q), built by applying the
 * reflectors to the identity from the last to the first (each H is symmetric).
 */
function accumulateReflectors(refl: Reflectors, n: number): Float64Array {
  // Q = H_0 (H_1 (… (H_{n-3} I))). Applying H_k from the left to a matrix X touches rows ≥ k+1:
  // X ← X − β v (vᵀ X). X is kept row-major and transposed at the end.
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  const t = new Float64Array(n);
  for (let k = n - 3; k >= 0; k--) {
    const beta = refl.beta[k];
    if (beta === 0) continue;
    const s = k + 1;
    const base = k * n;
    // t = vᵀ X  (only columns ≥ s are non-trivial, since X's leading block is still the identity)
    t.fill(0, s, n);
    for (let i = s; i < n; i++) {
      const vi = refl.v[base + i];
      if (vi === 0) continue;
      const row = i * n;
      for (let j = s; j < n; j++) t[j] += vi * q[row + j];
    }
    for (let i = s; i < n; i++) {
      const f = beta * refl.v[base + i];
      if (f === 0) continue;
      const row = i * n;
      for (let j = s; j < n; j++) q[row + j] -= f * t[j];
    }
  }
  // transpose in place
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const a = q[i * n + j];
      q[i * n + j] = q[j * n + i];
      q[j * n + i] = a;
    }
  }
  return q;
}

/**
 * Implicit QL iterations on the symmetric tridiagonal matrix (diag, off). When `z` (rows =
 * current basis vectors) is given, every plane rotation is applied to it as well.
 */
function implicitQL(d: Float64Array, e: Float64Array, n: number, z: Float64Array | null): void {
  const EPS = 2.220446049250313e-16;
  for (let l = 0; l < n; l++) {
    let iterations = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= EPS * dd) break;
      }
      if (m === l) break;
      if (++iterations > 60) throw new EigenError(`eigenvalue ${l} did not converge after 60 QL iterations`);
      // Shift from the leading 2×2 block.
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = Math.hypot(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let i = m - 1;
      let deflated = false;
      for (; i >= l; i--) {
        const f = s * e[i];
        const b = c * e[i];
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          // Underflow: the matrix splits; recover and restart this eigenvalue.
          d[i + 1] -= p;
          e[m] = 0;
          deflated = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        if (z) {
          const ri = i * n;
          const rj = (i + 1) * n;
          for (let k = 0; k < n; k++) {
            const zi = z[ri + k];
            const zj = z[rj + k];
            z[rj + k] = s * zi + c * zj;
            z[ri + k] = c * zi - s * zj;
          }
        }
      }
      if (deflated) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
}

function sortAscending(d: Float64Array, z: Float64Array | null, n: number): SymmetricEigen {
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[x] - d[y]);
  const values = Float64Array.from(order, (i) => d[i]);
  if (!z) return { values };
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => vectors.set(z.subarray(src * n, src * n + n), dst * n));
  return { values, vectors };
}
