/** Dense float64 matrix products on row-major typed arrays. */

/** `A · Bᵀ` for row-major A (n×k) and B (m×k): the n×m matrix of row dot products. */
export function multiplyABt(a: ArrayLike<number>, n: number, b: ArrayLike<number>, m: number, k: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    const oa = i * k;
    for (let j = 0; j < m; j++) {
      const ob = j * k;
      let acc = 0;
      for (let t = 0; t < k; t++) acc += a[oa + t] * b[ob + t];
      out[i * m + j] = acc;
    }
  }
  return out;
}

/** `Aᵀ · A` for row-major A (n×k): the symmetric k×k Gram matrix of the columns. */
export function multiplyAtA(a: ArrayLike<number>, n: number, k: number): Float64Array {
  const out = new Float64Array(k * k);
  for (let r = 0; r < n; r++) {
    const o = r * k;
    for (let i = 0; i < k; i++) {
      const x = a[o + i];
      if (x === 0) continue;
      const oi = i * k;
      for (let j = i; j < k; j++) out[oi + j] += x * a[o + j];
    }
  }
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) out[j * k + i] = out[i * k + j];
  return out;
}
