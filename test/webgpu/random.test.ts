import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { philoxHost, philoxKey, toUnit } from '../../shared/kernels/webgpu/philox.ts';
import { hasChromium, openTestPage, type PageApi } from './harness.ts';

/** Kolmogorov–Smirnov statistic of a sample against a CDF. */
function ks(sample: number[], cdf: (x: number) => number): number {
  const s = [...sample].sort((a, b) => a - b);
  let d = 0;
  for (let i = 0; i < s.length; i++) {
    const f = cdf(s[i]);
    d = Math.max(d, Math.abs(f - i / s.length), Math.abs((i + 1) / s.length - f));
  }
  return d;
}
/** Standard normal CDF (Abramowitz–Stegun 7.1.26 erf, |error| < 1.5e-7). */
function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
  return 0.5 * (1 + Math.sign(x) * erf);
}
const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
const variance = (a: number[]) => {
  const m = mean(a);
  return a.reduce((s, x) => s + (x - m) ** 2, 0) / (a.length - 1);
};
// KS critical value at α = 0.001: 1.95/√n.
const ksLimit = (n: number) => 1.95 / Math.sqrt(n);

describe.skipIf(!hasChromium)('GPU Philox random numbers', () => {
  let page: PageApi;
  const draw = (kind: string, n: number, a: number, b: number, seed: number, stream = 0) => page.call<number[]>('draw', { kind, n, a, b, seed, stream });
  beforeAll(async () => {
    page = await openTestPage();
  });
  afterAll(async () => {
    await page?.close();
  });

  it('the WGSL generator matches the host reference bit for bit (top 24 bits of every word)', async () => {
    const seed = 12345;
    const stream = 7;
    const n = 4 * 300 + 3; // a partial last block
    const got = await draw('uniform', n, 0, 1, seed, stream);
    const key = philoxKey(seed);
    const want: number[] = [];
    for (let block = 0; want.length < n; block++) want.push(...philoxHost([block, stream, 0, 0], key).map(toUnit));
    expect(got).toEqual(want.slice(0, n));
  });

  it('the host reference reproduces the Philox4x32-10 known-answer vectors (Random123)', () => {
    expect(philoxHost([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    expect(philoxHost([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])).toEqual([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    expect(philoxHost([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])).toEqual([0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
  });

  it('uniform: range, mean, variance and KS against U(a, b)', async () => {
    const n = 40000;
    const u = await draw('uniform', n, -2, 3, 99);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u)).toBeLessThan(3);
    expect(Math.abs(mean(u) - 0.5)).toBeLessThan(4 * Math.sqrt(25 / 12 / n));
    expect(Math.abs(variance(u) / (25 / 12) - 1)).toBeLessThan(0.03);
    expect(ks(u, (x) => (x + 2) / 5)).toBeLessThan(ksLimit(n));
  });

  it('normal: mean, standard deviation and KS against N(μ, σ²); no infinities', async () => {
    const n = 40000;
    const z = await draw('normal', n, 1.5, 2, 7);
    expect(z.every(Number.isFinite)).toBe(true);
    expect(Math.abs(mean(z) - 1.5)).toBeLessThan(4 * (2 / Math.sqrt(n)));
    expect(Math.abs(Math.sqrt(variance(z)) / 2 - 1)).toBeLessThan(0.03);
    expect(ks(z, (x) => normalCdf((x - 1.5) / 2))).toBeLessThan(ksLimit(n));
  });

  it('uniform integers: only values in [min, max), each about equally often (χ²)', async () => {
    const n = 30000;
    const k = 5;
    const v = await draw('int', n, 0, k, 3);
    const counts = new Array(k).fill(0);
    for (const x of v) {
      expect(Number.isInteger(x) && x >= 0 && x < k).toBe(true);
      counts[x]++;
    }
    const chi2 = counts.reduce((s, c) => s + (c - n / k) ** 2 / (n / k), 0);
    expect(chi2).toBeLessThan(18.47); // χ²(4 dof) at α = 0.001
  });

  it('dropout masks: values 0 or 1/(1 − rate), kept with probability 1 − rate', async () => {
    const n = 40000;
    const rate = 0.25;
    const m = await draw('dropout', n, rate, 0, 21);
    const kept = m.filter((x) => x !== 0);
    expect(kept.every((x) => Math.abs(x - 1 / (1 - rate)) < 1e-6)).toBe(true);
    const p = kept.length / n;
    expect(Math.abs(p - 0.75)).toBeLessThan(4 * Math.sqrt((0.75 * 0.25) / n));
  });

  it('seeded and reproducible: same (seed, stream) gives the same numbers, other seeds or streams do not', async () => {
    const a = await draw('normal', 1000, 0, 1, 5, 1);
    const b = await draw('normal', 1000, 0, 1, 5, 1);
    const c = await draw('normal', 1000, 0, 1, 6, 1);
    const d = await draw('normal', 1000, 0, 1, 5, 2);
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    expect(d).not.toEqual(a);
    // Different streams are uncorrelated.
    const ma = mean(a);
    const md = mean(d);
    let cov = 0;
    for (let i = 0; i < a.length; i++) cov += (a[i] - ma) * (d[i] - md);
    const corr = cov / (a.length - 1) / Math.sqrt(variance(a) * variance(d));
    expect(Math.abs(corr)).toBeLessThan(0.13);
  });
});
