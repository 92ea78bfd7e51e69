/** Deterministic test matrices that a NumPy script can reproduce exactly (same formula, same order of operations). */
export function sinMatrix(n: number, d: number, a: number, b: number, c: number): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[i * d + j] = Math.sin(a * i + b * j * j + c) + 0.3 * Math.cos(0.7 * i * j + c);
  return out;
}
