import { describe, expect, it } from 'vitest';
import {
  composeRdp,
  DEFAULT_ORDERS,
  defaultDelta,
  epsilonFor,
  logErfc,
  noiseMultiplierFor,
  rdpStep,
  rdpSubsampledGaussian,
  rdpToEpsilon,
} from './accountant.ts';

const MNIST_Q = 256 / 60000;
/** Steps of the TF Privacy MNIST tutorial: epochs · 60000 // 256 (tutorials/mnist_dpsgd_tutorial.py). */
const mnistSteps = (epochs: number) => Math.floor((epochs * 60000) / 256);

describe('published outputs of the reference accountants', () => {
  it('Opacus: σ 1.5, q 0.04, 90 epochs (2250 steps) → ε 7.32911117143 at δ 1e-5', () => {
    // https://github.com/pytorch/opacus/blob/main/opacus/tests/accountants_test.py test_rdp_accountant
    // (assertAlmostEqual: 7 places). Opacus's RDPAccountant: DEFAULT_ALPHAS and the Balle et al. 2020 conversion.
    expect(epsilonFor({ sampleRate: 0.04, noiseMultiplier: 1.5, steps: Math.floor(90 / 0.04), delta: 1e-5 })).toBeCloseTo(7.32911117143, 7);
  });

  it("Opacus get_noise_multiplier: ε 8, δ 1e-5, q 0.04 → σ 1.416 (90 epochs) and 1.3562 (2000 steps)", () => {
    // https://github.com/pytorch/opacus/blob/main/opacus/tests/accountants_test.py
    // test_get_noise_multiplier_rdp_epochs (1.416, places=4) and test_get_noise_multiplier_rdp_steps (1.3562, places=4).
    // Opacus's bisection (opacus/accountants/utils.py) stops once ε is within epsilon_tolerance 0.01 below the
    // target, from the bracket [0, 20]: its answers are σ whose ε lies in [7.99, 8).
    for (const [sigma, steps] of [
      [1.416, 2250],
      [1.3562, 2000],
    ]) {
      const eps = epsilonFor({ sampleRate: 0.04, noiseMultiplier: sigma, steps, delta: 1e-5 });
      expect(eps).toBeLessThan(8);
      expect(eps).toBeGreaterThan(7.99);
    }
    // Ours bisects to 1e-4 relative: the smallest σ with ε ≤ 8, just below Opacus's coarser answer.
    const ours = noiseMultiplierFor({ targetEpsilon: 8, sampleRate: 0.04, steps: 2250, delta: 1e-5 });
    expect(ours).toBeLessThanOrEqual(1.416);
    expect(ours).toBeGreaterThan(1.41);
    expect(epsilonFor({ sampleRate: 0.04, noiseMultiplier: ours, steps: 2250, delta: 1e-5 })).toBeLessThanOrEqual(8);
    expect(epsilonFor({ sampleRate: 0.04, noiseMultiplier: ours * 0.999, steps: 2250, delta: 1e-5 })).toBeGreaterThan(8);
  });

  it('TensorFlow Privacy MNIST table (q 256/60000, δ 1e-5, classic conversion of the time): 2.92, 9.74, 1.20', () => {
    // https://github.com/tensorflow/privacy/blob/master/tutorials/README.md "Select Parameters": σ 1.12 / 60
    // epochs → 2.92; σ 0.6 / 30 epochs → 9.74; σ 1.2 / 10 epochs → 1.20. Those figures predate TF Privacy's
    // switch to the Balle et al. conversion (they are the classic ε = RDP − log δ/(α − 1)), printed to two
    // decimals; our value for the second row is 9.7527 (0.013 above the table: the table's orders or step
    // count may differ slightly, so the tolerance there is 0.015).
    const classic = (sigma: number, epochs: number) =>
      epsilonFor({ sampleRate: MNIST_Q, noiseMultiplier: sigma, steps: mnistSteps(epochs), delta: 1e-5, conversion: 'classic' });
    expect(Math.abs(classic(1.12, 60) - 2.92)).toBeLessThan(0.005);
    expect(Math.abs(classic(0.6, 30) - 9.74)).toBeLessThan(0.015);
    expect(Math.abs(classic(1.2, 10) - 1.2)).toBeLessThan(0.005);
    // The improved conversion is never worse, and here clearly better (2.52 instead of 2.92).
    const improved = epsilonFor({ sampleRate: MNIST_Q, noiseMultiplier: 1.12, steps: mnistSteps(60), delta: 1e-5 });
    expect(improved).toBeCloseTo(2.5186, 3);
    expect(improved).toBeLessThan(classic(1.12, 60));
  });

  it('dp_accounting (TF Privacy): RDP of 50 steps of q 0.01, σ 2.5 at orders 2.5, 5, 50, 100', () => {
    // https://github.com/google/differential-privacy/blob/main/python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant_test.py
    // test_compute_rdp_poisson_sampled_gaussian (np.allclose, rtol 1e-4). That test also lists 6.70579741e-4 at
    // order 1.5; we get 6.50071e-4 there, and so does the direct numerical integration of
    // shared/privacy/rdpReference.py (6.500709e-4, agreeing with ours to 1e-9), so that one value is not
    // pinned here: the published one is 3 % larger (a looser fractional-order computation, presumably).
    const expected = [1.0854871e-3, 2.18075656e-3, 2.38460375e-2, 1.67416308e2];
    const got = rdpSubsampledGaussian(0.01, 2.5, 50, [2.5, 5, 50, 100]);
    got.forEach((v, k) => expect(Math.abs(v - expected[k]) / expected[k]).toBeLessThan(1e-4));
    expect(rdpSubsampledGaussian(0.01, 2.5, 50, [1.5])[0]).toBeCloseTo(6.500708972e-4, 12);
  });

  it('dp_accounting: constant RDP 1.1 over orders 2…32 → ε 1.32783806176 at order 32 (δ 1e-5)', () => {
    // Same file, test_compute_epsilon_delta_pure_dp (the conversion alone).
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const r = rdpToEpsilon(
      orders,
      orders.map(() => 1.1),
      1e-5,
    );
    expect(r.epsilon).toBeCloseTo(1.32783806176, 9);
    expect(r.order).toBe(32);
  });

  it('dp_accounting: the Gaussian mechanism with σ 4.530877117 is (1, 1e-6)-DP over fine orders', () => {
    // Same file, test_compute_epsilon_delta_gaussian (orders 1.000…99.999 by 0.001, q = 1).
    const orders = Array.from({ length: 99000 }, (_, i) => 0.001 * (i + 1000)).filter((a) => a > 1);
    const eps = rdpToEpsilon(orders, rdpSubsampledGaussian(1, 4.530877117, 1, orders), 1e-6).epsilon;
    expect(eps).toBeCloseTo(1, 6);
  });
});

describe('RDP values against an independent computation', () => {
  // shared/privacy/rdpReference.py: A_α by direct numerical integration at 40 digits (mpmath.quad), not by the
  // binomial / erfc series used here. Printed by `python3 shared/privacy/rdpReference.py` (numpy 2.4, mpmath 1.3).
  const REFERENCE: [number, number, number, number][] = [
    [0.01, 1.1, 2, 0.0001285100816051618],
    [0.01, 1.1, 2.5, 0.00016207740937000372],
    [0.01, 1.1, 8, 0.0005840703355202511],
    [0.01, 1.1, 32.5, 8.678386001712239],
    [0.004266666666666667, 1.1, 3.7, 4.3862775365084625e-5],
    [0.004266666666666667, 1.1, 20, 2.52037121133917],
    [0.1, 0.8, 4.5, 0.6467076146418441],
    [0.1, 0.8, 10, 5.254079931289743],
    [0.5, 2.0, 1.5, 0.04981937763209318],
    [0.5, 2.0, 6, 0.2736656644633292],
  ];
  it.each(REFERENCE)('q %f, σ %f, α %f', (q, sigma, alpha, expected) => {
    expect(Math.abs(rdpStep(q, sigma, alpha) - expected) / expected).toBeLessThan(1e-8);
  });

  it('q = 1 is the Gaussian mechanism: α/(2σ²); q = 0 spends nothing; σ = 0 is not private', () => {
    for (const alpha of [1.5, 2, 7.3, 40]) expect(rdpStep(1, 1.7, alpha)).toBeCloseTo(alpha / (2 * 1.7 * 1.7), 14);
    expect(rdpStep(0, 1, 3)).toBe(0);
    expect(rdpStep(0.1, 0, 3)).toBe(Infinity);
  });

  it('integer α by closed form at α 2: log(1 + q²(e^{1/σ²} − 1))', () => {
    const q = 0.03;
    const s = 0.9;
    expect(rdpStep(q, s, 2)).toBeCloseTo(Math.log1p(q * q * Math.expm1(1 / (s * s))), 15);
  });

  it('RDP is continuous across integer orders (the fractional series meets the binomial sum)', () => {
    const at = (a: number) => rdpStep(0.02, 1.3, a);
    expect(Math.abs(at(5 - 1e-7) - at(5)) / at(5)).toBeLessThan(1e-5);
    expect(Math.abs(at(5 + 1e-7) - at(5)) / at(5)).toBeLessThan(1e-5);
  });

  it('log erfc matches known values, far into the tail', () => {
    // erfc(0.5) = 0.4795001221869535, erfc(3) = 2.209049699858544e-5, erfc(10) = 2.088487583762545e-45,
    // erfc(−1) = 1.842700792949715 (Abramowitz & Stegun table 7.1 / mpmath.erfc).
    expect(logErfc(0.5)).toBeCloseTo(Math.log(0.4795001221869535), 13);
    expect(logErfc(3)).toBeCloseTo(Math.log(2.209049699858544e-5), 12);
    expect(logErfc(10)).toBeCloseTo(Math.log(2.088487583762545e-45), 11);
    expect(logErfc(-1)).toBeCloseTo(Math.log(1.842700792949715), 13);
    expect(logErfc(-3)).toBeCloseTo(Math.log(2 - 2.209049699858544e-5), 13);
    expect(logErfc(40)).toBeCloseTo(-1604.2615566532736, 9); // mpmath.log(mpmath.erfc(40))
  });
});

describe('composition, conversion and the inverse', () => {
  it('composes rounds with different settings order by order', () => {
    const a = rdpSubsampledGaussian(0.01, 1.0, 100);
    const b = rdpSubsampledGaussian(0.02, 1.5, 30);
    const c = composeRdp([
      { sampleRate: 0.01, noiseMultiplier: 1.0, steps: 100 },
      { sampleRate: 0.02, noiseMultiplier: 1.5, steps: 30 },
    ]);
    c.forEach((v, k) => expect(v).toBeCloseTo(a[k] + b[k], 12));
    expect(c.length).toBe(DEFAULT_ORDERS.length);
  });

  it('ε grows with steps and falls with noise; the improved conversion never exceeds the classic one', () => {
    const e = (sigma: number, steps: number, conversion?: 'classic') => epsilonFor({ sampleRate: 0.05, noiseMultiplier: sigma, steps, delta: 1e-5, conversion });
    expect(e(1, 200)).toBeGreaterThan(e(1, 100));
    expect(e(2, 100)).toBeLessThan(e(1, 100));
    for (const s of [0.7, 1, 3]) expect(e(s, 100)).toBeLessThanOrEqual(e(s, 100, 'classic'));
  });

  it('the inverse accounts for what was already spent', () => {
    const spent = rdpSubsampledGaussian(0.05, 1.2, 100);
    const sigma = noiseMultiplierFor({ targetEpsilon: 4, sampleRate: 0.05, steps: 100, delta: 1e-5, spentRdp: spent });
    const total = composeRdp([
      { sampleRate: 0.05, noiseMultiplier: 1.2, steps: 100 },
      { sampleRate: 0.05, noiseMultiplier: sigma, steps: 100 },
    ]);
    const eps = rdpToEpsilon(DEFAULT_ORDERS, total, 1e-5).epsilon;
    expect(eps).toBeLessThanOrEqual(4);
    expect(eps).toBeGreaterThan(3.99);
    expect(() => noiseMultiplierFor({ targetEpsilon: 0.5, sampleRate: 0.05, steps: 10, delta: 1e-5, spentRdp: spent })).toThrow(/already spent/);
  });

  it('refuses unreachable targets and bad input with a reason', () => {
    expect(() => noiseMultiplierFor({ targetEpsilon: 1e-6, sampleRate: 1, steps: 1e6, delta: 1e-5 })).toThrow(/out of reach/);
    expect(() => epsilonFor({ sampleRate: 1.5, noiseMultiplier: 1, steps: 1, delta: 1e-5 })).toThrow(/sampling rate/);
    expect(() => epsilonFor({ sampleRate: 0.1, noiseMultiplier: 1, steps: 1, delta: 0 })).toThrow(/δ/);
    expect(() => rdpSubsampledGaussian(0.1, 1, 1, [1])).toThrow(/above 1/);
  });

  it('default δ is 1/(10·N)', () => {
    expect(defaultDelta(5000)).toBe(1 / 50000);
    expect(() => defaultDelta(0)).toThrow(/training tiles/);
  });
});
