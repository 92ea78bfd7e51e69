import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.ts';
import { features, featuresFromRows, type Features } from './features.ts';
import { kid, mmd2, mmd2Unbiased, polynomialKernel } from './kid.ts';

const k = (a: number[], b: number[]) => polynomialKernel(a, 0, b, 0, a.length);

function gaussianSet(n: number, d: number, rng: Rng, shift = 0): Features {
  const data = new Float64Array(n * d);
  for (let i = 0; i < n * d; i++) data[i] = shift + rng.normal();
  return features(data, n, d);
}

describe('KID', () => {
  it('uses the cubic polynomial kernel (xᵀy/d + 1)³', () => {
    expect(k([1, 2], [3, 4])).toBeCloseTo((11 / 2 + 1) ** 3, 12);
    expect(k([0, 0, 0], [5, 5, 5])).toBe(1);
  });

  it('computes the unbiased MMD² by hand on a 2 + 2 example', () => {
    const x = [[1, 0], [0, 1]];
    const y = [[1, 1], [2, 0]];
    const expected = (2 * k(x[0], x[1])) / 2 + (2 * k(y[0], y[1])) / 2 - (2 * (k(x[0], y[0]) + k(x[0], y[1]) + k(x[1], y[0]) + k(x[1], y[1]))) / 4;
    expect(mmd2(featuresFromRows(x), featuresFromRows(y))).toBeCloseTo(expected, 12);
  });

  it('is exactly unbiased: its expectation over every possible sample equals the population MMD²', () => {
    // Two discrete distributions on the plane; samples of 2 from each: enumerate all 4⁴ outcomes.
    const P = { points: [[0, 0], [1, 2], [2, -1], [-1, 1]], probs: [0.1, 0.2, 0.3, 0.4] };
    const Q = { points: [[1, 1], [0, 2], [3, 0], [-2, -1]], probs: [0.25, 0.25, 0.4, 0.1] };
    const expectK = (A: typeof P, B: typeof P) => {
      let s = 0;
      A.points.forEach((a, i) => B.points.forEach((b, j) => (s += A.probs[i] * B.probs[j] * k(a, b))));
      return s;
    };
    const population = expectK(P, P) + expectK(Q, Q) - 2 * expectK(Q, P);
    let expectation = 0;
    let biasedExpectation = 0;
    for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) for (let c = 0; c < 4; c++) for (let d = 0; d < 4; d++) {
      const w = P.probs[a] * P.probs[b] * Q.probs[c] * Q.probs[d];
      const xs = [P.points[a], P.points[b]];
      const ys = [Q.points[c], Q.points[d]];
      expectation += w * mmd2(featuresFromRows(xs), featuresFromRows(ys));
      // The biased (V-statistic) estimate keeps the diagonal terms.
      let sxx = 0, syy = 0, sxy = 0;
      for (const u of xs) for (const v of xs) sxx += k(u, v);
      for (const u of ys) for (const v of ys) syy += k(u, v);
      for (const u of xs) for (const v of ys) sxy += k(u, v);
      biasedExpectation += w * (sxx / 4 + syy / 4 - (2 * sxy) / 4);
    }
    expect(population).toBeGreaterThan(0);
    expect(expectation).toBeCloseTo(population, 10);
    expect(Math.abs(biasedExpectation - population)).toBeGreaterThan(0.1 * population);
  });

  it('averages ≈ 0 (and goes negative) for two samples of one distribution, unlike a biased estimate', () => {
    const rng = new Rng(5);
    const runs: number[] = [];
    for (let r = 0; r < 40; r++) runs.push(mmd2(gaussianSet(20, 4, rng), gaussianSet(20, 4, rng)));
    const mean = runs.reduce((s, v) => s + v, 0) / runs.length;
    const sd = Math.sqrt(runs.reduce((s, v) => s + (v - mean) ** 2, 0) / (runs.length - 1));
    expect(Math.abs(mean)).toBeLessThan(3 * (sd / Math.sqrt(runs.length)));
    expect(runs.some((v) => v < 0)).toBe(true);
  });

  it('reports mean and std over subsets, grows with the shift, and is reproducible by seed', () => {
    const rng = new Rng(9);
    const ref = gaussianSet(120, 8, rng);
    const same = kid(ref, gaussianSet(120, 8, rng), { subsets: 20, seed: 1 });
    const near = kid(ref, gaussianSet(120, 8, rng, 0.5), { subsets: 20, seed: 1 });
    const far = kid(ref, gaussianSet(120, 8, rng, 1.5), { subsets: 20, seed: 1 });
    expect(same.subsetSize).toBe(60);
    expect(same.subsets).toBe(20);
    expect(same.std).toBeGreaterThan(0);
    expect(Math.abs(same.mean)).toBeLessThan(near.mean);
    expect(near.mean).toBeGreaterThan(0);
    expect(far.mean).toBeGreaterThan(near.mean);
    const other = gaussianSet(120, 8, new Rng(1));
    expect(kid(ref, other, { subsets: 5, seed: 3 })).toEqual(kid(ref, other, { subsets: 5, seed: 3 }));
    // With the whole sets as the single subset, KID is the plain unbiased MMD².
    expect(kid(ref, other, { subsets: 1, subsetSize: 120 }).mean).toBeCloseTo(mmd2(ref, other), 9);
  });

  it('names bad options', () => {
    const a = gaussianSet(10, 3, new Rng(1));
    expect(() => kid(a, a, { subsetSize: 11 })).toThrow(/subset size 11 exceeds the smaller set \(10 and 10 vectors\)/);
    expect(() => kid(a, a, { subsets: 0 })).toThrow(/subsets must be a positive integer/);
    expect(() => mmd2Unbiased(1, 1, 1, 2, 1)).toThrow(/at least 2 vectors/);
  });
});
