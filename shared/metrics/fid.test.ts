import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.ts';
import { features, FeatureError, type Features } from './features.ts';
import { fid, fidParts, frechetDistance, gaussianStats } from './fid.ts';
import { sinMatrix } from './testData.ts';

function gaussianSet(n: number, d: number, seed: number, shift = 0, scale = 1): Features {
  const rng = new Rng(seed);
  const data = new Float64Array(n * d);
  for (let i = 0; i < n * d; i++) data[i] = shift + scale * rng.normal();
  return features(data, n, d);
}

describe('FID', () => {
  it('matches NumPy/SciPy on fixed data, through the covariance (d×d) route', () => {
    const x = features(sinMatrix(12, 5, 1.1, 0.3, 0.1), 12, 5);
    const y = features(sinMatrix(9, 5, 0.9, 0.45, 1.0).map((v) => v + 0.5), 9, 5);
    // ((m1-m2)**2).sum() + tr S1 + tr S2 - 2 tr sqrtm(S1 @ S2) with scipy.linalg.sqrtm: 2.963892399268177
    expect(fid(x, y)).toBeCloseTo(2.9638923992681736, 10);
    expect(frechetDistance(gaussianStats(x), gaussianStats(y)).fid).toBeCloseTo(2.9638923992681736, 10);
  });

  it('matches NumPy on fixed data with fewer vectors than dimensions (feature route), and both routes agree', () => {
    const x = features(sinMatrix(8, 20, 1.1, 0.3, 0.1), 8, 20);
    const y = features(sinMatrix(10, 20, 0.9, 0.45, 1.0).map((v) => v * 1.5), 10, 20);
    // Reference: the trace term as the nuclear norm of A1·A2ᵀ (numpy.linalg.svd, confirmed with 50-digit
    // mpmath): 32.36440019984349. (scipy.linalg.sqrtm gives 32.3643998206 here: the covariances are
    // singular, and every eigenvalue route loses ~√ε·σmax on the null directions, hence 6 digits.)
    const parts = fidParts(x, y);
    expect(parts.fid).toBeCloseTo(32.36440019984349, 6);
    expect(frechetDistance(gaussianStats(x), gaussianStats(y)).fid).toBeCloseTo(32.36440019984349, 6);
    expect(parts.fid).toBeCloseTo(parts.meanTerm + parts.traceCov1 + parts.traceCov2 - 2 * parts.traceSqrtProduct, 12);
  });

  it('is ≈ 0 for a set against itself (both routes), and symmetric', () => {
    const x = gaussianSet(60, 16, 1);
    const wide = gaussianSet(30, 64, 2);
    expect(Math.abs(fid(x, x))).toBeLessThan(1e-9);
    expect(Math.abs(fid(wide, wide))).toBeLessThan(1e-9);
    const y = gaussianSet(50, 16, 3, 0.2);
    expect(fid(x, y)).toBeCloseTo(fid(y, x), 9);
  });

  it('is > 0 between different distributions and grows with the difference', () => {
    const ref = gaussianSet(400, 8, 10);
    const same = gaussianSet(400, 8, 11);
    const shifted = [0.5, 1, 2].map((s, i) => fid(ref, gaussianSet(400, 8, 20 + i, s)));
    const scaled = [1.5, 3].map((s, i) => fid(ref, gaussianSet(400, 8, 30 + i, 0, s)));
    const base = fid(ref, same);
    expect(base).toBeGreaterThan(0);
    expect(shifted[0]).toBeGreaterThan(base);
    expect(shifted[1]).toBeGreaterThan(shifted[0]);
    expect(shifted[2]).toBeGreaterThan(shifted[1]);
    expect(scaled[1]).toBeGreaterThan(scaled[0]);
    expect(scaled[0]).toBeGreaterThan(base);
    // For isotropic Gaussians FID → d·s² (mean shift s per dim): 8·4 = 32 at s = 2, up to sampling noise.
    expect(shifted[2]).toBeGreaterThan(28);
    expect(shifted[2]).toBeLessThan(36);
  });

  it('names what is wrong with its input', () => {
    expect(() => fid(gaussianSet(5, 4, 1), gaussianSet(5, 3, 1))).toThrow(/dimensions differ \(4 vs 3\)/);
    expect(() => fid(gaussianSet(1, 4, 1), gaussianSet(5, 4, 1))).toThrow(FeatureError);
    expect(() => features(new Float32Array([1, NaN]), 1, 2)).toThrow(/value 1 \(row 0\) is NaN/);
  });
});
