import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.ts';
import { EigenError, symmetricEigen, symmetricEigenvalues } from './symmetricEigen.ts';
import { sinMatrix } from './testData.ts';

function symmetrize(a: Float64Array, n: number): Float64Array {
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s[i * n + j] = (a[i * n + j] + a[j * n + i]) / 2;
  return s;
}

function randomSymmetric(n: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) a[i] = rng.normal();
  return symmetrize(a, n);
}

describe('symmetricEigen', () => {
  it('matches numpy.linalg.eigvalsh on a fixed 6×6 matrix', () => {
    const a = symmetrize(sinMatrix(6, 6, 1.3, 0.7, 0.2), 6);
    // numpy.linalg.eigvalsh of the same matrix (see the formula in testData.ts)
    const numpy = [-2.856469818083032, -0.8970497721166321, -0.569070939773804, 0.3149827943235666, 0.49121233357415983, 2.200056808800044];
    const got = symmetricEigenvalues(a, 6);
    numpy.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 12));
  });

  it('gives the known spectrum of hand-checkable matrices', () => {
    expect(Array.from(symmetricEigenvalues([2, 1, 1, 2], 2))).toEqual([1, 3].map((v) => expect.closeTo(v, 14)));
    expect(Array.from(symmetricEigenvalues([5], 1))).toEqual([5]);
    expect(Array.from(symmetricEigenvalues([], 0))).toEqual([]);
    // diag(3, -1, 2) and the zero matrix
    expect(Array.from(symmetricEigenvalues([3, 0, 0, 0, -1, 0, 0, 0, 2], 3))).toEqual([-1, 2, 3]);
    expect(Array.from(symmetricEigenvalues(new Float64Array(16), 4))).toEqual([0, 0, 0, 0]);
    // tridiagonal [2 -1; -1 2 -1; …] of order 5: eigenvalues 2 − 2cos(kπ/6)
    const n = 5;
    const t = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      t[i * n + i] = 2;
      if (i + 1 < n) t[i * n + i + 1] = t[(i + 1) * n + i] = -1;
    }
    const expected = Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1))).sort((x, y) => x - y);
    symmetricEigenvalues(t, n).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 13));
  });

  it('returns orthonormal eigenvectors with A v = λ v, also for repeated eigenvalues', () => {
    for (const [n, a] of [
      [40, randomSymmetric(40, 7)],
      [6, Float64Array.from({ length: 36 }, (_, k) => (Math.floor(k / 6) === k % 6 ? 1 : 0))], // identity
      [8, (() => { const r = randomSymmetric(8, 3); const m = new Float64Array(64); for (let i = 0; i < 8; i++) for (let j = 0; j < 8; j++) for (let k = 0; k < 8; k++) m[i * 8 + j] += r[i * 8 + k] * r[j * 8 + k] * (k < 3 ? 1 : 0); return m; })()], // rank 3
    ] as [number, Float64Array][]) {
      const { values, vectors } = symmetricEigen(a, n, { vectors: true });
      expect(vectors).toBeDefined();
      const v = vectors!;
      let scale = 0;
      for (const x of a) scale = Math.max(scale, Math.abs(x));
      for (let k = 0; k < n; k++) {
        for (let i = 0; i < n; i++) {
          let av = 0;
          for (let j = 0; j < n; j++) av += a[i * n + j] * v[k * n + j];
          expect(Math.abs(av - values[k] * v[k * n + i])).toBeLessThan(1e-11 * Math.max(1, scale) * n);
        }
        for (let l = 0; l < n; l++) {
          let dot = 0;
          for (let j = 0; j < n; j++) dot += v[k * n + j] * v[l * n + j];
          expect(dot).toBeCloseTo(k === l ? 1 : 0, 12);
        }
      }
      for (let k = 1; k < n; k++) expect(values[k]).toBeGreaterThanOrEqual(values[k - 1]);
    }
  });

  it('keeps the trace and is unaffected by the upper triangle', () => {
    const n = 30;
    const a = randomSymmetric(n, 11);
    let tr = 0;
    for (let i = 0; i < n; i++) tr += a[i * n + i];
    const vals = symmetricEigenvalues(a, n);
    expect(vals.reduce((s, v) => s + v, 0)).toBeCloseTo(tr, 10);
    const garbledUpper = a.slice();
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) garbledUpper[i * n + j] = 99;
    symmetricEigenvalues(garbledUpper, n).forEach((v, i) => expect(v).toBeCloseTo(vals[i], 12));
  });

  it('rejects malformed input with a clear error', () => {
    expect(() => symmetricEigen([1, 2, 3], 2)).toThrow(EigenError);
    expect(() => symmetricEigen([1, 2, 3], 2)).toThrow(/3 values, expected 2×2/);
    expect(() => symmetricEigen([1, NaN, NaN, 1], 2)).toThrow(/entry \(1, 0\) is NaN/);
  });
});
