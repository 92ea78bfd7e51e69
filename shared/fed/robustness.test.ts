/**
 * No single hospital can take over the global model (issue 15, finding 3), at the level of the round
 * strategy: several honest hospitals and one attacker, for each attack the issue found plus sign-flipping
 * and scaled updates. The stated bound, for FedAvg with the update-norm bound B and the attacker's counted
 * share s = cap / (cap + Σ honest examples):
 *
 *   ‖global − honestMean‖₂ ≤ s · (B + ‖honestMean − previous‖₂)
 *
 * because global − honestMean = s·(attacker − honestMean) and the attacker is within B of the previous
 * global (else refused). A refused attacker leaves the honest mean itself (s = 0).
 */
import { describe, expect, it } from 'vitest';
import { AggregationError } from '../aggregate/types.ts';
import { parseFedConfig, type FedConfig, type FedConfigInput } from '../config/fedConfig.ts';
import { Rng } from '../rng.ts';
import type { WeightSet } from '../weights.ts';
import {
  AUTO_NORM_FACTOR,
  autoMaxUpdateNorm,
  LOSS_LIMIT,
  lowerMedian,
  medianExampleCap,
  examplesMedianBase,
  RoundAggregation,
  roundConfig,
  updateNormBound,
  withoutBatchNorm,
} from './strategy.ts';

const FP = '0123456789abcdef';
/** A small model with the names of the real one: generator, its batch norm, discriminator, generator average. */
const SPEC = [
  { name: 'g/dense/kernel', shape: [8, 16] },
  { name: 'g/dense/bias', shape: [16] },
  { name: 'g/bn1/gamma', shape: [16] },
  { name: 'g/bn1/beta', shape: [16] },
  { name: 'g/bn1/movingMean', shape: [16] },
  { name: 'g/bn1/movingVariance', shape: [16] },
  { name: 'd/conv1/kernel', shape: [3, 3, 4, 8] },
  { name: 'd/conv1/bias', shape: [8] },
  { name: 'ema/g/dense/kernel', shape: [8, 16] },
  { name: 'ema/g/bn1/movingVariance', shape: [16] },
];
const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function weights(value: (name: string, i: number) => number): WeightSet {
  return {
    fingerprint: FP,
    tensors: SPEC.map((s) => {
      const data = new Float32Array(sizeOf(s.shape));
      for (let i = 0; i < data.length; i++) data[i] = value(s.name, i);
      return { name: s.name, shape: [...s.shape], data };
    }),
  };
}

const rng = new Rng(2024);
/** The global model the round starts from: small kernels, gamma 1, beta 0, moving variance about 1. */
const PREVIOUS = weights((name) => (name.endsWith('gamma') || name.endsWith('movingVariance') ? 1 + 0.1 * rng.normal() : 0.1 * rng.normal()));

const fedOf = (input: FedConfigInput = {}): FedConfig =>
  parseFedConfig({ minFit: 1, minAvailable: 1, minCompletion: 1, localSteps: 50, ...input, model: { imageSize: 16, ...((input.model as object) ?? {}) } });

/** w = a + t·(b − a), per value (float64, then float32 as weights are). */
const lerp = (a: WeightSet, b: WeightSet, t: number): WeightSet => ({
  fingerprint: a.fingerprint,
  tensors: a.tensors.map((x, k) => ({ ...x, data: x.data.map((v, i) => v + t * (b.tensors[k].data[i] - v)) })),
});
const dist = (a: WeightSet, b: WeightSet, bn = true) => {
  const [x, y] = bn ? [a, b] : [withoutBatchNorm(a), withoutBatchNorm(b)];
  let s = 0;
  x.tensors.forEach((t, k) => t.data.forEach((v, i) => (s += (v - y.tensors[k].data[i]) ** 2)));
  return Math.sqrt(s);
};
/** Σ nₖwₖ / Σ nₖ in float64 (the reference the aggregate is compared with). */
function mean(items: { w: WeightSet; n: number }[]): WeightSet {
  const total = items.reduce((s, x) => s + x.n, 0);
  return {
    fingerprint: FP,
    tensors: items[0].w.tensors.map((t, k) => ({ ...t, data: Float64Array.from(t.data, (_, i) => items.reduce((s, x) => s + x.n * x.w.tensors[k].data[i], 0) / total) as unknown as Float32Array })),
  };
}

/**
 * An honest update: what local Adam training does to a model, a fraction of (steps × learning rate) per
 * weight, zig-zagging, plus a drift every hospital shares (the data's common signal); moving statistics
 * re-estimated on the hospital's own tiles (a shift they share, plus their own). Each is about a sixth of
 * the default bound, as real updates are (docs/configuration.md).
 */
function honest(seed: number, fed: FedConfig): WeightSet {
  const r = new Rng(seed);
  const travel = fed.localSteps * fed.model.optimizerG.learningRate;
  return weights((name, i) => {
    const k = SPEC.findIndex((s) => s.name === name);
    const p = PREVIOUS.tensors[k].data[i];
    if (/moving/.test(name)) return p + 0.5 + 0.3 * r.normal();
    return p + travel * (0.15 * r.normal() + 0.1 * Math.sin(i + k));
  });
}

const HONEST = [101, 102, 103, 104];
const HONEST_EXAMPLES = [800, 1200, 1000, 1000];
/** The attacker's cap (its tokens-file maxExamples) in the cases that set one. */
const CAP = 1000;

interface Attack {
  name: string;
  /** The attacker's update given the honest mean and the bound. */
  weights: (honestMean: WeightSet, bound: number) => WeightSet;
  examples: number;
  dLoss?: number;
  gLoss?: number;
  /** Whether the default configuration refuses it (else it is accepted, bounded). */
  refused: boolean;
}

/** A unit-norm direction away from the honest mean (the attacker's best use of its budget). */
function away(honestMean: WeightSet, bound: number): WeightSet {
  const d = dist(honestMean, PREVIOUS);
  // previous − (B·0.999/d)·(honestMean − previous): as far from the honest mean as the bound allows.
  return lerp(PREVIOUS, honestMean, (-0.999 * bound) / d);
}

const ATTACKS: Attack[] = [
  { name: 'huge-norm update (every weight + 1000)', weights: () => weights((name, i) => PREVIOUS.tensors[SPEC.findIndex((s) => s.name === name)].data[i] + 1000), examples: 1000, refused: true },
  { name: 'every weight 3e38', weights: () => weights(() => 3e38), examples: 1000, refused: true },
  { name: 'claims 1e7 examples, sends the farthest update the bound allows', weights: away, examples: 10_000_000, refused: false },
  { name: 'losses ±1e308 (and an honest-looking update)', weights: (m) => lerp(PREVIOUS, m, 1.01), examples: 1000, dLoss: 1e308, gLoss: -1e308, refused: false },
  { name: 'sign-flipped honest update', weights: (m) => lerp(PREVIOUS, m, -1), examples: 1000, refused: false },
  { name: 'scaled honest update ×10', weights: (m) => lerp(PREVIOUS, m, 10), examples: 1000, refused: true },
  { name: 'scaled honest update ×100', weights: (m) => lerp(PREVIOUS, m, 100), examples: 1000, refused: true },
];

function runRound(fed: FedConfig, attack: Attack | null, cap: number | undefined, previousMedian?: number) {
  const agg = new RoundAggregation(fed, PREVIOUS, roundConfig(fed, 1, 1, PREVIOUS), {
    exampleCap: (h) => (h === 'attacker' ? cap : undefined),
    previousExamplesMedian: previousMedian,
  });
  const honestUpdates = HONEST.map((seed, k) => ({ w: honest(seed, fed), n: HONEST_EXAMPLES[k] }));
  honestUpdates.forEach((u, k) => agg.add(`hospital-${k}`, { weights: u.w, examples: u.n, dLoss: 0.6 + 0.1 * k, gLoss: 1.2 + 0.1 * k }));
  const honestMean = mean(honestUpdates);
  let refusedWith: string | null = null;
  let added = {};
  if (attack) {
    try {
      added = agg.add('attacker', { weights: attack.weights(honestMean, agg.maxUpdateNorm ?? Infinity), examples: attack.examples, dLoss: attack.dLoss ?? 0.7, gLoss: attack.gLoss ?? 1.3 });
    } catch (e) {
      if (!(e instanceof AggregationError)) throw e;
      refusedWith = e.reason;
    }
  }
  return { ...agg.result(), honestMean, honestUpdates, refusedWith, added, bound: agg.maxUpdateNorm };
}

describe('one attacking hospital among four honest ones (FedAvg, the default update-norm bound)', () => {
  const fed = fedOf();
  const B = updateNormBound(fed, PREVIOUS)!;
  const honestTotal = HONEST_EXAMPLES.reduce((a, b) => a + b, 0);

  it('honest updates are all within the default bound (none refused)', () => {
    const { refusedWith, honestUpdates, stats } = runRound(fed, null, CAP);
    expect(refusedWith).toBeNull();
    expect(stats.participants).toBe(4);
    for (const u of honestUpdates) expect(dist(u.w, PREVIOUS) / B).toBeGreaterThan(0.1);
    for (const u of honestUpdates) expect(dist(u.w, PREVIOUS) / B).toBeLessThan(0.25);
  });

  for (const attack of ATTACKS) {
    it(`${attack.name}: the global stays within s·(B + ‖honestMean − previous‖) of the honest mean`, () => {
      const { weights: global, honestMean, refusedWith, stats, added } = runRound(fed, attack, CAP);
      expect(refusedWith).toBe(attack.refused ? 'norm' : null);
      const claimed = Math.min(attack.examples, CAP);
      const s = attack.refused ? 0 : claimed / (claimed + honestTotal);
      const d = dist(honestMean, PREVIOUS);
      const epsilon = s * (B + d);
      // Float32 rounding of the aggregate: half an ulp per value at most.
      const rounding = 1e-6 * Math.sqrt(global.tensors.reduce((n, t) => n + t.data.length, 0));
      expect(dist(global, honestMean)).toBeLessThanOrEqual(epsilon + rounding);
      // The stated bound is a real restriction: here at most a fifth of the way to the bound's edge.
      expect(epsilon).toBeLessThanOrEqual(0.2 * (B + d));
      // The round's statistics stay finite and within the loss limit whatever the attacker reports.
      expect(Number.isFinite(stats.dLoss) && Number.isFinite(stats.gLoss)).toBe(true);
      expect(Math.abs(stats.dLoss)).toBeLessThanOrEqual(LOSS_LIMIT);
      expect(Math.abs(stats.gLoss)).toBeLessThanOrEqual(LOSS_LIMIT);
      if (attack.examples > CAP && !attack.refused) {
        expect(added).toMatchObject({ examplesClipped: { claimed: attack.examples, counted: CAP } });
        expect(stats.examples).toBe(honestTotal + CAP);
      }
    });
  }

  it('without a cap of its own an attacker claiming 1e7 examples still moves the global at most B + ‖honestMean − previous‖', () => {
    const attack = ATTACKS.find((a) => a.examples === 10_000_000)!;
    const { weights: global, honestMean } = runRound(fed, attack, undefined);
    expect(dist(global, honestMean)).toBeLessThanOrEqual(B + dist(honestMean, PREVIOUS) + 1e-4);
  });

  it('clamps losses beyond ±1e6 in the statistics, says so, and keeps the update', () => {
    const attack = ATTACKS.find((a) => a.dLoss === 1e308)!;
    const { stats, added } = runRound(fed, attack, CAP);
    expect(stats.participants).toBe(5);
    expect(added).toEqual({ lossClamped: 'dLoss 1e+308, gLoss -1e+308 counted as dLoss 1000000, gLoss -1000000', norm: expect.any(Number) });
    // Example-weighted: honest losses 0.6…0.9 / 1.2…1.5, the attacker's at ±1e6 with 1000 of 5000 examples.
    const total = honestTotal + 1000;
    const dHonest = HONEST_EXAMPLES.reduce((s, n, k) => s + n * (0.6 + 0.1 * k), 0);
    expect(stats.dLoss).toBeCloseTo((dHonest + 1000 * 1e6) / total, 6);
  });

  it('maxUpdateNorm null turns the bound off: the same huge update is then accepted and takes the model far away', () => {
    const off = fedOf({ maxUpdateNorm: null });
    const { refusedWith, weights: global, honestMean, bound } = runRound(off, ATTACKS[0], CAP);
    expect(bound).toBeNull();
    expect(refusedWith).toBeNull();
    expect(dist(global, honestMean)).toBeGreaterThan(100);
    expect('maxUpdateNorm' in roundConfig(off, 1, 1, PREVIOUS)).toBe(false);
  });

  it('a number overrides the default bound', () => {
    const scaled100 = ATTACKS.find((a) => a.name.endsWith('×100'))!;
    const loose = fedOf({ maxUpdateNorm: 1e6 });
    expect(updateNormBound(loose, PREVIOUS)).toBe(1e6);
    expect(roundConfig(loose, 1, 1).maxUpdateNorm).toBe(1e6);
    expect(runRound(loose, scaled100, CAP).refusedWith).toBeNull();
    // Just above the largest honest update: every honest update passes.
    const largest = Math.max(...runRound(fed, null, CAP).honestUpdates.map((u) => dist(u.w, PREVIOUS)));
    const tight = fedOf({ maxUpdateNorm: largest * 1.01 });
    expect(runRound(tight, null, CAP).stats.participants).toBe(4);
  });
});

describe('the median cap (examples.medianFactor, default 4): a cap no operator has to declare', () => {
  const fed = fedOf();
  const B = updateNormBound(fed, PREVIOUS)!;
  const honestTotal = HONEST_EXAMPLES.reduce((a, b) => a + b, 0);
  const claim = ATTACKS.find((a) => a.examples === 10_000_000)!;

  it('previous-round median 600: a claim of 1e7 without a tokens-file cap counts as 4 × 600 = 2400, and the global stays within s·(B + d) of the honest mean', () => {
    expect(fed.examples.medianFactor).toBe(4);
    const { weights: global, honestMean, refusedWith, stats, added } = runRound(fed, claim, undefined, 600);
    expect(refusedWith).toBeNull();
    expect(added).toMatchObject({ examplesClipped: { claimed: 10_000_000, counted: 2400, by: 'median' } });
    // The honest counts (800…1200) are below the cap and count in full.
    expect(stats.examples).toBe(honestTotal + 2400);
    // Counted counts 800, 1000, 1000, 1200, 2400: the median the next round is capped by.
    expect(stats.examplesMedian).toBe(1000);
    const s = 2400 / (2400 + honestTotal); // 0.375
    const d = dist(honestMean, PREVIOUS);
    const rounding = 1e-6 * Math.sqrt(global.tensors.reduce((n, t) => n + t.data.length, 0));
    expect(dist(global, honestMean)).toBeLessThanOrEqual(s * (B + d) + rounding);
    // Without the median cap (the claim counted in full) the same update takes the global almost all the way.
    const uncapped = runRound(fedOf({ examples: { medianFactor: null } }), claim, undefined, 600);
    expect(uncapped.added).not.toHaveProperty('examplesClipped');
    expect(dist(uncapped.weights, uncapped.honestMean)).toBeGreaterThan(0.98 * (B + d));
    expect(dist(uncapped.weights, uncapped.honestMean)).toBeGreaterThan(2 * s * (B + d));
  });

  it('the smaller of the tokens-file cap and the median cap wins', () => {
    expect(runRound(fed, claim, 1000, 600).added).toMatchObject({ examplesClipped: { claimed: 10_000_000, counted: 1000, by: 'hospital' } });
    expect(runRound(fed, claim, 5000, 600).added).toMatchObject({ examplesClipped: { claimed: 10_000_000, counted: 2400, by: 'median' } });
    // A factor that is not whole: ⌊2.5 × 601⌋ = 1502.
    const r = runRound(fedOf({ examples: { medianFactor: 2.5 } }), claim, undefined, 601);
    expect(r.added).toMatchObject({ examplesClipped: { counted: 1502, by: 'median' } });
    // An honest hospital above the cap is clipped too (1200 > 2 × 500): the price of the default.
    const tight = new RoundAggregation(fedOf({ examples: { medianFactor: 2 } }), PREVIOUS, undefined, { previousExamplesMedian: 500 });
    expect(tight.add('big', { weights: honest(101, fed), examples: 1200, dLoss: 1, gLoss: 1 }).examplesClipped).toEqual({ claimed: 1200, counted: 1000, by: 'median' });
  });

  it('the first round has no previous median: only examples.max and the tokens file cap a claim there', () => {
    const { added, stats } = runRound(fed, claim, undefined, undefined);
    expect(added).not.toHaveProperty('examplesClipped');
    expect(stats.examples).toBe(honestTotal + 10_000_000);
    expect(new RoundAggregation(fed, PREVIOUS).medianCap).toBeNull();
    expect(new RoundAggregation(fed, PREVIOUS, undefined, { previousExamplesMedian: 600 }).medianCap).toBe(2400);
  });

  it('one hospital of two cannot raise its cap round after round (the LOWER median of an even number of counts)', () => {
    // An honest hospital with 600 tiles and an attacker claiming 1e7 every round, each round capped by the last.
    let median: number | undefined;
    const counted: number[] = [];
    for (let round = 1; round <= 5; round++) {
      const agg = new RoundAggregation(fed, PREVIOUS, undefined, { previousExamplesMedian: median });
      agg.add('honest', { weights: honest(101, fed), examples: 600, dLoss: 1, gLoss: 1 });
      agg.add('attacker', { weights: honest(102, fed), examples: 10_000_000, dLoss: 1, gLoss: 1 });
      const { stats } = agg.result();
      counted.push(stats.examples - 600);
      median = stats.examplesMedian;
    }
    // Round 1: no cap; then 4 × 600 every round. (With the mean of the two middle counts the median would be
    // (600 + 1e7)/2 after round 1, and the cap 2·10⁷: no cap at all.)
    expect(counted).toEqual([10_000_000, 2400, 2400, 2400, 2400]);
    expect(median).toBe(600);
  });

  it('lowerMedian: the middle count; of an even number, the lower of the two middle ones', () => {
    expect(lowerMedian([600])).toBe(600);
    expect(lowerMedian([1000, 600])).toBe(600);
    expect(lowerMedian([5, 1, 3])).toBe(3);
    expect(lowerMedian([4, 1, 3, 2])).toBe(2);
    expect(lowerMedian([10, 10, 1e7, 1e7])).toBe(10);
    expect(() => lowerMedian([])).toThrow(RangeError);
  });

  it('medianExampleCap and examplesMedianBase (what the server reads from its history)', () => {
    expect(medianExampleCap(fed, 600)).toBe(2400);
    expect(medianExampleCap(fed, undefined)).toBeNull();
    expect(medianExampleCap(fedOf({ examples: { medianFactor: null } }), 600)).toBeNull();
    expect(() => medianExampleCap(fed, 0)).toThrow(/previous median must be a positive number, got 0/);
    const entry = (round: number, participants: number, examplesMedian?: unknown) => ({ round, participants, ...(examplesMedian !== undefined ? { examplesMedian } : {}) });
    expect(examplesMedianBase([])).toBeUndefined();
    expect(examplesMedianBase([entry(1, 3, 1), entry(2, 5, 600)])).toEqual({ round: 2, median: 600 });
    // An entry written before the median was recorded, or a value no round could have written: no median cap.
    expect(examplesMedianBase([entry(1, 2, 600), entry(2, 2)])).toBeUndefined();
    for (const bad of [0, -5, Number.NaN, Infinity, '600', null]) expect(examplesMedianBase([entry(1, 2, bad)])).toBeUndefined();
  });

  it('a round of a single update does not set the median: a hospital alone in its rounds cannot raise its own cap', () => {
    // fraction < 1 with minCompletion 1: round 1 had two hospitals (lower median 600), then the attacker trains
    // alone. Were its own counted count the next median, its cap would grow 2400, 9600, 38400, …
    const rounds: { round: number; participants: number; examplesMedian: number }[] = [];
    const counted: number[] = [];
    for (let round = 1; round <= 4; round++) {
      const agg = new RoundAggregation(fed, PREVIOUS, undefined, { previousExamplesMedian: examplesMedianBase(rounds)?.median });
      if (round === 1) agg.add('honest', { weights: honest(101, fed), examples: 600, dLoss: 1, gLoss: 1 });
      agg.add('attacker', { weights: honest(102, fed), examples: 10_000_000, dLoss: 1, gLoss: 1 });
      const { stats } = agg.result();
      counted.push(round === 1 ? stats.examples - 600 : stats.examples);
      rounds.push({ round, participants: stats.participants, examplesMedian: stats.examplesMedian });
    }
    expect(counted).toEqual([10_000_000, 2400, 2400, 2400]);
    expect(rounds.map((r) => r.examplesMedian)).toEqual([600, 2400, 2400, 2400]);
    expect(examplesMedianBase(rounds)).toEqual({ round: 1, median: 600 });
  });
});

describe('autoMaxUpdateNorm: the default bound', () => {
  it('is 2·√(Σ trained Pₜ(Tₜηₜ)² + Σ moving (1 + |g|)²), pinned against a hand computation', () => {
    const fed = fedOf({ localSteps: 50 });
    // Trained: g/dense 128+16, g/bn1 gamma+beta 32, d/conv1 288+8, ema/g/dense 128: all at 50·2e-4 = 0.01.
    // Moving: 48 values (mean, variance, ema variance).
    const moving = PREVIOUS.tensors.filter((t) => /moving/.test(t.name)).flatMap((t) => [...t.data]);
    expect(moving).toHaveLength(48);
    const trained = (128 + 16 + 32 + 288 + 8 + 128) * 0.01 ** 2;
    const expected = 2 * Math.sqrt(trained + moving.reduce((s, v) => s + (1 + Math.abs(v)) ** 2, 0));
    expect(AUTO_NORM_FACTOR).toBe(2);
    expect(autoMaxUpdateNorm(fed, PREVIOUS)).toBeCloseTo(expected, 10);
    expect(roundConfig(fed, 3, 1, PREVIOUS).maxUpdateNorm).toBe(autoMaxUpdateNorm(fed, PREVIOUS));
    // Without the global weights the config cannot say the default bound's value, so it leaves it out.
    expect('maxUpdateNorm' in roundConfig(fed, 3, 1)).toBe(false);
  });

  it('counts the WGAN-GP critic nCritic times per step at its own rate, and leaves batch norm out under FedBN', () => {
    // WGAN-GP defaults: both rates 1e-4; nCritic 5. G-side travel 50·1e-4 = 0.005, critic 50·5·1e-4 = 0.025.
    const wgan = fedOf({ localSteps: 50, batchNorm: 'local', model: { gan: 'wgan-gp' } });
    expect(wgan.model.nCritic).toBe(5);
    const expected = 2 * Math.sqrt((128 + 16 + 128) * 0.005 ** 2 + (288 + 8) * 0.025 ** 2);
    expect(autoMaxUpdateNorm(wgan, PREVIOUS)).toBeCloseTo(expected, 12);
  });

  it('scales with the round budget and the learning rate', () => {
    const local = (localSteps: number, lr: number) =>
      autoMaxUpdateNorm(fedOf({ localSteps, batchNorm: 'local', model: { optimizerG: { learningRate: lr }, optimizerD: { learningRate: lr } } }), PREVIOUS);
    expect(local(100, 2e-4) / local(50, 2e-4)).toBeCloseTo(2, 12);
    expect(local(50, 4e-4) / local(50, 2e-4)).toBeCloseTo(2, 12);
  });
});
