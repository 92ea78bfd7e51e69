/**
 * Privacy accountant for DP-SGD: Rényi differential privacy (RDP) of the Poisson-subsampled Gaussian
 * mechanism, composed over steps and converted to (ε, δ).
 *
 * - RDP of one step (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian
 *   Mechanism", §3.3): each example is in the batch independently with probability q (Poisson sampling),
 *   the sum of the batch's clipped gradients (each clipped to L2 norm C) gets N(0, σ²C²) noise. For an
 *   order α > 1, RDP(α) = log(A_α) / (α − 1) with A_α = E_{z∼N(0,σ²)}[((1 − q) + q·e^{(2z − 1)/(2σ²)})^α]:
 *   a finite binomial sum for integer α, an erfc series for fractional α (the same two computations as
 *   TensorFlow Privacy's rdp_accountant and Opacus's analysis/rdp.py; this code is written from the paper).
 *   Adjacency: add or remove one example. q = 1 (every example every step) gives the Gaussian mechanism's
 *   closed form α/(2σ²).
 * - Composition: RDP adds up over steps (and over rounds with different settings, order by order).
 * - Conversion to (ε, δ): the improved bound of Balle, Barthe, Gaboardi, Hsu, Sato 2020 ("Hypothesis
 *   testing interpretations and Rényi differential privacy", Thm 21), ε = RDP(α) + log((α − 1)/α) −
 *   (log δ + log α)/(α − 1), minimised over the orders. Opacus (privacy_analysis.get_privacy_spent) and
 *   TensorFlow Privacy since 2021 (compute_epsilon / dp_accounting's RdpAccountant) use this one. The
 *   classic bound ε = RDP(α) − log δ/(α − 1) (Mironov 2017, Prop. 3) is kept as `conversion: 'classic'`
 *   to compare with figures published before that change; it is never smaller.
 *
 * Nothing here knows about GANs or hospitals: shared/privacy/budget.ts maps a hospital's rounds to
 * (q, σ, steps).
 */

/** The orders Opacus uses by default (opacus/accountants/rdp.py DEFAULT_ALPHAS): 1.1…10.9 by 0.1, then 12…63. */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
]);

/** The classic orders plus large ones, for small q·steps where the optimum sits beyond 63. */
export const EXTENDED_ORDERS: readonly number[] = Object.freeze([...DEFAULT_ORDERS, 80, 96, 128, 192, 256, 384, 512, 768, 1024]);

export type Conversion = 'balle2020' | 'classic';

// ---------------------------------------------------------------------------------------------------------
// Numerics in log space
// ---------------------------------------------------------------------------------------------------------

function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log1p(Math.exp(Math.min(a, b) - m));
}

/** log(e^a − e^b) for a ≥ b. */
function logSub(a: number, b: number): number {
  if (b === -Infinity) return a;
  if (a < b) throw new RangeError('log of a negative difference');
  if (a === b) return -Infinity;
  return a + Math.log(-Math.expm1(b - a));
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

/**
 * log(erfc(x)), accurate in double precision over the whole line (no underflow for large x).
 * |x| < 2: erf from its series with positive terms, erf(x) = (2/√π)·e^{−x²}·Σ 2ⁿx^{2n+1}/(1·3·…·(2n+1));
 * x ≥ 2: the continued fraction of e^{x²}·erfc(x) (Lentz's method), in log form.
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < -2) {
    // erfc(x) = 2 − erfc(−x), erfc(−x) < 0.005.
    return Math.log(2 - Math.exp(logErfcLarge(-x)));
  }
  if (x < 2) return Math.log1p(-erfSeries(x));
  return logErfcLarge(x);
}

function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/** log erfc(x) for x ≥ 2: erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))). */
function logErfcLarge(x: number): number {
  // Lentz: f = b0 + a1/(b1 + a2/(b2 + …)) with b_k = x, a_k = k/2.
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 5000; k++) {
    const a = k / 2;
    d = x + a * d;
    d = d === 0 ? tiny : d;
    c = x + a / c;
    c = c === 0 ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -x * x - LOG_SQRT_PI - Math.log(f);
}

// ---------------------------------------------------------------------------------------------------------
// RDP of the sampled Gaussian mechanism
// ---------------------------------------------------------------------------------------------------------

/** log A_α for integer α ≥ 2: log Σ_{i=0}^{α} C(α, i)·(1 − q)^{α−i}·q^i·e^{(i² − i)/(2σ²)}. */
function logAInt(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  let logBinom = 0; // log C(α, 0)
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    logA = logAdd(logA, logBinom + i * lq + (alpha - i) * l1q + (i * i - i) / (2 * sigma * sigma));
  }
  return logA;
}

/**
 * log A_α for fractional α > 1 (Mironov et al. 2019, §3.3): A_α = A₀ + A₁ with
 * A₀ = Σ_i C(α,i)·q^i(1−q)^{α−i}·e^{(i²−i)/(2σ²)}·½erfc((i − z₀)/(√2σ)),
 * A₁ = Σ_i C(α,i)·q^{α−i}(1−q)^i·e^{((α−i)² − (α−i))/(2σ²)}·½erfc((z₀ − (α − i))/(√2σ)),
 * z₀ = σ²·log(1/q − 1) + ½; the generalised binomial coefficients alternate in sign from i > α on, and the
 * series stops once both terms fall below e^{−30} relative to 1 (as the reference implementations do).
 */
function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  let logAbsBinom = 0; // log |C(α, 0)|
  let positive = true;
  for (let i = 0; i < 100_000; i++) {
    if (i > 0) {
      const f = alpha - i + 1;
      logAbsBinom += Math.log(Math.abs(f)) - Math.log(i);
      if (f < 0) positive = !positive;
    }
    const j = alpha - i;
    const logT0 = logAbsBinom + i * lq + j * l1q;
    const logT1 = logAbsBinom + j * lq + i * l1q;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (positive) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

function checkRate(q: number): void {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`the sampling rate must be in 0…1, got ${q}`);
}
function checkSigma(sigma: number): void {
  if (!(sigma >= 0) || !Number.isFinite(sigma)) throw new RangeError(`the noise multiplier must be a finite number ≥ 0, got ${sigma}`);
}
function checkOrders(orders: readonly number[]): void {
  if (orders.length === 0) throw new RangeError('the accountant needs at least one RDP order');
  for (const a of orders) if (!(a > 1) || !Number.isFinite(a)) throw new RangeError(`RDP orders must be finite numbers above 1, got ${a}`);
}

/** RDP at order α of ONE step of the Poisson-subsampled Gaussian mechanism (q, σ). */
export function rdpStep(q: number, sigma: number, alpha: number): number {
  checkRate(q);
  checkSigma(sigma);
  if (!(alpha > 1)) throw new RangeError(`RDP orders must be above 1, got ${alpha}`);
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (alpha === Infinity) return Infinity;
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** RDP of `steps` steps of (q, σ) at each order: steps · RDP_step(α). */
export function rdpSubsampledGaussian(q: number, sigma: number, steps: number, orders: readonly number[] = DEFAULT_ORDERS): number[] {
  if (!(steps >= 0) || !Number.isFinite(steps)) throw new RangeError(`the number of steps must be a finite number ≥ 0, got ${steps}`);
  checkOrders(orders);
  return orders.map((a) => (steps === 0 ? 0 : steps * rdpStep(q, sigma, a)));
}

/** ε at δ from an RDP curve (see the top of this file for the two conversions), with the order that gave it. */
export function rdpToEpsilon(orders: readonly number[], rdp: readonly number[], delta: number, conversion: Conversion = 'balle2020'): { epsilon: number; order: number } {
  checkOrders(orders);
  if (orders.length !== rdp.length) throw new RangeError(`${orders.length} orders but ${rdp.length} RDP values`);
  if (!(delta > 0 && delta < 1)) throw new RangeError(`δ must be in (0, 1), got ${delta}`);
  let best = { epsilon: Infinity, order: orders[0] };
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k];
    const r = rdp[k];
    if (!(r >= 0)) throw new RangeError(`RDP values must be ≥ 0, got ${r} at order ${a}`);
    let eps: number;
    if (conversion === 'classic') eps = r - Math.log(delta) / (a - 1);
    else if (delta * delta + Math.expm1(-r) > 0) eps = 0; // so little divergence that δ alone covers it
    else eps = r + Math.log1p(-1 / a) - Math.log(delta * a) / (a - 1);
    if (eps < best.epsilon) best = { epsilon: eps, order: a };
  }
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}

export interface MechanismSteps {
  /** Poisson sampling rate q: the expected batch over the tiles. */
  sampleRate: number;
  /** σ: noise std over the clip norm. */
  noiseMultiplier: number;
  /** Steps with these settings. */
  steps: number;
}

/** RDP of several runs of steps (rounds with different settings), composed: the order-by-order sum. */
export function composeRdp(parts: readonly MechanismSteps[], orders: readonly number[] = DEFAULT_ORDERS): number[] {
  checkOrders(orders);
  const total = orders.map(() => 0);
  for (const p of parts) {
    const r = rdpSubsampledGaussian(p.sampleRate, p.noiseMultiplier, p.steps, orders);
    for (let k = 0; k < orders.length; k++) total[k] += r[k];
  }
  return total;
}

export interface EpsilonQuery {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
  orders?: readonly number[];
  conversion?: Conversion;
}

/** ε of `steps` steps of the Poisson-subsampled Gaussian (q, σ) at δ. */
export function epsilonFor(p: EpsilonQuery): number {
  const orders = p.orders ?? DEFAULT_ORDERS;
  return rdpToEpsilon(orders, rdpSubsampledGaussian(p.sampleRate, p.noiseMultiplier, p.steps, orders), p.delta, p.conversion).epsilon;
}

/** The default δ for a hospital with `tiles` training tiles: 1/(10·N). */
export function defaultDelta(tiles: number): number {
  if (!Number.isSafeInteger(tiles) || tiles < 1) throw new RangeError(`δ's default needs the number of training tiles (a whole number ≥ 1), got ${tiles}`);
  return 1 / (10 * tiles);
}

export interface NoiseQuery {
  targetEpsilon: number;
  sampleRate: number;
  steps: number;
  delta: number;
  /** RDP already spent (on the same orders), composed before the planned steps; default none. */
  spentRdp?: readonly number[];
  orders?: readonly number[];
  conversion?: Conversion;
  /** Bisection stops when the bracket is this narrow, relative (default 1e-4). */
  tolerance?: number;
}

/** The largest σ the bisection tries; a target that needs more is refused as unreachable. */
export const MAX_NOISE_MULTIPLIER = 1000;

/**
 * The smallest noise multiplier σ (to `tolerance`) with ε(spent ∘ steps × (q, σ)) ≤ targetEpsilon at δ, by
 * bisection (ε falls as σ grows). The result errs on the safe side: the bracket's upper end, whose ε is ≤
 * the target. Throws when the target is out of reach (already spent, or needing σ > MAX_NOISE_MULTIPLIER).
 */
export function noiseMultiplierFor(p: NoiseQuery): number {
  const orders = p.orders ?? DEFAULT_ORDERS;
  if (!(p.targetEpsilon > 0) || !Number.isFinite(p.targetEpsilon)) throw new RangeError(`the target ε must be a finite number above 0, got ${p.targetEpsilon}`);
  if (p.spentRdp && p.spentRdp.length !== orders.length) throw new RangeError(`the spent RDP has ${p.spentRdp.length} values for ${orders.length} orders`);
  const eps = (sigma: number) => {
    const r = rdpSubsampledGaussian(p.sampleRate, sigma, p.steps, orders);
    if (p.spentRdp) for (let k = 0; k < r.length; k++) r[k] += p.spentRdp[k];
    return rdpToEpsilon(orders, r, p.delta, p.conversion).epsilon;
  };
  if (p.spentRdp && rdpToEpsilon(orders, p.spentRdp, p.delta, p.conversion).epsilon >= p.targetEpsilon) {
    throw new RangeError(`the target ε ${p.targetEpsilon} is already spent`);
  }
  if (p.steps === 0 || p.sampleRate === 0) return 0;
  let hi = 1;
  while (eps(hi) > p.targetEpsilon) {
    hi *= 2;
    if (hi > MAX_NOISE_MULTIPLIER) throw new RangeError(`ε ${p.targetEpsilon} is out of reach: it would need a noise multiplier above ${MAX_NOISE_MULTIPLIER}`);
  }
  let lo = hi === 1 ? 0 : hi / 2;
  const tol = p.tolerance ?? 1e-4;
  while (hi - lo > tol * hi) {
    const mid = (lo + hi) / 2;
    if (eps(mid) > p.targetEpsilon) lo = mid;
    else hi = mid;
  }
  return hi;
}
