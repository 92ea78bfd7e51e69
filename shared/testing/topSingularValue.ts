/**
 * Tests' independent reference for spectral normalisation: the largest singular value of a row-major
 * [rows, cols] matrix by `iterations` power iterations in float64 (a conv kernel [k, k, in, out] is the
 * matrix [k·k·in, out]).
 */
export function topSingularValue(m: ArrayLike<number>, rows: number, cols: number, iterations = 500): number {
  let u = Array.from({ length: cols }, (_, i) => 1 + 0.37 * i);
  let s = 0;
  for (let it = 0; it < iterations; it++) {
    const v = Array.from({ length: rows }, (_, r) => u.reduce((a, uj, j) => a + m[r * cols + j] * uj, 0));
    const nv = Math.hypot(...v);
    const w = Array.from({ length: cols }, (_, j) => v.reduce((a, vr, r) => a + m[r * cols + j] * vr, 0) / nv);
    s = Math.hypot(...w);
    u = w.map((x) => x / s);
  }
  return s;
}
