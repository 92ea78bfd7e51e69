import { describe, expect, it } from 'vitest';
import { AggregationError } from '../aggregate/types.ts';
import { parseFedConfig, type FedConfigInput } from '../config/fedConfig.ts';
import type { WeightSet } from '../weights.ts';
import { sampleClients } from './sampling.ts';
import { configureRound, exampleWeightedMean, RoundAggregation, roundConfig, samplingRound, withoutBatchNorm } from './strategy.ts';

const FP = 'feedfacecafebeef';
/** [kernel 2×2, bias 2, bn gamma 2]: the third is a batch-norm tensor (isBatchNormWeight). */
function w(kernel: number[], bias: number[], gamma: number[], fingerprint = FP): WeightSet {
  return {
    fingerprint,
    tensors: [
      { name: 'g/dense/kernel', shape: [2, 2], data: new Float32Array(kernel) },
      { name: 'g/dense/bias', shape: [2], data: new Float32Array(bias) },
      { name: 'g/bn1/gamma', shape: [2], data: new Float32Array(gamma) },
    ],
  };
}
/** Hand-made weights move arbitrarily far: these tests turn the model-derived norm bound off unless they set one. */
const fedOf = (input: FedConfigInput = {}) => parseFedConfig({ minFit: 1, minAvailable: 1, minCompletion: 1, maxUpdateNorm: null, ...input, model: { imageSize: 16 } });
const vals = (ws: WeightSet) => ws.tensors.map((t) => [...t.data]);
const reasonOf = (f: () => void) => {
  try {
    f();
  } catch (e) {
    return e instanceof AggregationError ? e.reason : `not an AggregationError: ${e}`;
  }
  return 'accepted';
};

describe('configureRound', () => {
  it('samples with the seeded sampler under the attempt-aware key and sends the round config the server sends', () => {
    const fed = fedOf({ fraction: 0.5, minFit: 2, minAvailable: 2, seed: 5, maxUpdateNorm: 3, localSteps: 40, rounds: 9 });
    const ids = ['d', 'a', 'c', 'b', 'e'];
    const first = configureRound(fed, { round: 3, attempt: 1, available: ids });
    expect(first.sampled).toEqual(sampleClients(ids, { fraction: 0.5, minCount: 2, seed: 5, round: 3 }));
    expect(first.sampled).toHaveLength(3);
    const again = configureRound(fed, { round: 3, attempt: 2, available: ids });
    expect(again.sampled).toEqual(sampleClients(ids, { fraction: 0.5, minCount: 2, seed: 5, round: 3 + 2 * 1_000_000 }));
    expect(first.config).toEqual({
      round: 3,
      attempt: 1,
      rounds: 9,
      ganType: 'acgan',
      localSteps: 40,
      learningRate: { generator: 2e-4, discriminator: 2e-4 },
      imageSize: 16,
      batchNorm: 'average',
      examples: { min: 1, max: 10_000_000 },
      maxUpdateNorm: 3,
      deadlineSeconds: 900,
      model: fed.model,
    });
    expect(again.config).toMatchObject({ round: 3, attempt: 2 });
    expect('maxUpdateNorm' in roundConfig(fedOf(), 1, 1)).toBe(false);
  });

  it('keys sampling by the round on a first attempt and apart per repeated attempt', () => {
    expect(samplingRound(4, 1)).toBe(4);
    expect(samplingRound(4, 2)).toBe(2_000_004);
    expect(samplingRound(4, 3)).toBe(3_000_004);
  });

  it('refuses too few hospitals and bad round numbers, naming them', () => {
    const fed = fedOf({ minFit: 3, minAvailable: 3 });
    expect(() => configureRound(fed, { round: 1, attempt: 1, available: ['a', 'b'] })).toThrow(/at least 3 clients but only 2 are available/);
    expect(() => configureRound(fed, { round: 0, attempt: 1, available: ['a', 'b', 'c'] })).toThrow(/round must be a positive integer, got 0/);
    expect(() => configureRound(fed, { round: 1, attempt: 0.5, available: ['a', 'b', 'c'] })).toThrow(/attempt must be a positive integer/);
  });
});

describe('exampleWeightedMean', () => {
  it('is Σ nₖxₖ / Σ nₖ', () => {
    expect(exampleWeightedMean([{ examples: 10, value: 0.5 }, { examples: 30, value: 0.7 }])).toBeCloseTo((10 * 0.5 + 30 * 0.7) / 40, 14);
    expect(exampleWeightedMean([{ examples: 3, value: -2 }, { examples: 1, value: 6 }])).toBeCloseTo(0, 14);
    expect(exampleWeightedMean([{ examples: 7, value: 0 }])).toBe(0);
  });

  it('stays finite where the plain sum of products overflows', () => {
    const items = [
      { examples: 9_000_000, value: 1e308 },
      { examples: 1_000_000, value: 1.5e308 },
    ];
    expect(items.reduce((s, i) => s + i.examples * i.value, 0)).toBe(Infinity);
    const m = exampleWeightedMean(items);
    expect(Number.isFinite(m)).toBe(true);
    expect(m / 1e308).toBeCloseTo(0.9 * 1 + 0.1 * 1.5, 12);
  });

  it('refuses an empty list, non-finite values and non-positive counts', () => {
    expect(() => exampleWeightedMean([])).toThrow(/no values/);
    expect(() => exampleWeightedMean([{ examples: 1, value: NaN }])).toThrow(/finite, got NaN/);
    expect(() => exampleWeightedMean([{ examples: 0, value: 1 }])).toThrow(/positive, got 0/);
  });
});

describe('RoundAggregation', () => {
  const previous = w([0, 0, 0, 0], [0, 0], [1, 1]);

  it('averages weights by examples (every tensor under batchNorm average) and reports the round statistics', () => {
    const agg = new RoundAggregation(fedOf(), previous);
    agg.add('h2', { weights: w([1, 2, 3, 4], [1, 1], [2, 4]), examples: 10, dLoss: 0.5, gLoss: 1.5 });
    agg.add('h1', { weights: w([5, 6, 7, 8], [3, 3], [6, 8]), examples: 30, dLoss: 0.7, gLoss: 1.1 });
    expect(agg.count).toBe(2);
    const { weights, stats } = agg.result();
    const mean = (a: number, b: number) => Math.fround((10 * a + 30 * b) / 40);
    expect(vals(weights)).toEqual([
      [mean(1, 5), mean(2, 6), mean(3, 7), mean(4, 8)],
      [mean(1, 3), mean(1, 3)],
      [mean(2, 6), mean(4, 8)],
    ]);
    expect(weights.fingerprint).toBe(FP);
    // examplesMedian: the lower of the two middle counts, 10 (not their mean, 20).
    expect(stats).toEqual({ participants: 2, hospitals: ['h1', 'h2'], examples: 40, examplesMedian: 10, dLoss: expect.any(Number), gLoss: expect.any(Number) });
    expect(stats.dLoss).toBeCloseTo((10 * 0.5 + 30 * 0.7) / 40, 14);
    expect(stats.gLoss).toBeCloseTo((10 * 1.5 + 30 * 1.1) / 40, 14);
  });

  it('under FedBN ignores the batch-norm tensors of updates: the result keeps (copies of) the previous global ones', () => {
    const agg = new RoundAggregation(fedOf({ batchNorm: 'local' }), previous);
    agg.add('h1', { weights: w([2, 2, 2, 2], [2, 2], [100, 200]), examples: 1, dLoss: 1, gLoss: 1 });
    agg.add('h2', { weights: w([4, 4, 4, 4], [4, 4], [-50, 9]), examples: 3, dLoss: 1, gLoss: 1 });
    const { weights } = agg.result();
    expect(vals(weights)).toEqual([[3.5, 3.5, 3.5, 3.5], [3.5, 3.5], [1, 1]]);
    expect(weights.tensors.map((t) => t.name)).toEqual(previous.tensors.map((t) => t.name));
    expect(weights.tensors[2].data).not.toBe(previous.tensors[2].data);
  });

  it('bounds the update norm, without batch-norm tensors under FedBN', () => {
    // Non-BN distance: sqrt(4·0.5² + 2·0.5²) = sqrt(1.5) ≈ 1.22; the BN tensor moves by 30.
    const update = { weights: w([0.5, 0.5, 0.5, 0.5], [0.5, 0.5], [31, 1]), examples: 1, dLoss: 1, gLoss: 1 };
    expect(reasonOf(() => new RoundAggregation(fedOf({ maxUpdateNorm: 1.3, batchNorm: 'local' }), previous).add('h', update))).toBe('accepted');
    expect(reasonOf(() => new RoundAggregation(fedOf({ maxUpdateNorm: 1.2, batchNorm: 'local' }), previous).add('h', update))).toBe('norm');
    expect(reasonOf(() => new RoundAggregation(fedOf({ maxUpdateNorm: 29, batchNorm: 'average' }), previous).add('h', update))).toBe('norm');
    expect(reasonOf(() => new RoundAggregation(fedOf({ maxUpdateNorm: 31, batchNorm: 'average' }), previous).add('h', update))).toBe('accepted');
    expect(() => new RoundAggregation(fedOf({ maxUpdateNorm: 1.2, batchNorm: 'local' }), previous).add('h', update)).toThrow(/update norm ‖w − global‖₂ = 1\.225 exceeds maxUpdateNorm 1\.2/);
  });

  it("clips an example count above its hospital's cap (counted at the cap, said in the result) and reports the measured norm", () => {
    const caps: Record<string, number> = { a: 10, b: 1000 };
    const agg = new RoundAggregation(fedOf({ examples: { min: 1, max: 100 }, maxUpdateNorm: 50 }), previous, undefined, { exampleCap: (h) => caps[h] });
    // a: cap 10 < its claim 40. b: its cap (1000) is above examples.max, which still refuses a claim above 100. c: no cap of its own.
    expect(agg.add('a', { weights: w([1, 1, 1, 1], [1, 1], [1, 1]), examples: 40, dLoss: 1, gLoss: 1 })).toEqual({ examplesClipped: { claimed: 40, counted: 10, by: 'hospital' }, norm: Math.sqrt(6) });
    expect(reasonOf(() => agg.add('b', { weights: w([4, 4, 4, 4], [4, 4], [1, 1]), examples: 101, dLoss: 1, gLoss: 1 }))).toBe('examples');
    expect(agg.add('b', { weights: w([4, 4, 4, 4], [4, 4], [1, 1]), examples: 30, dLoss: 3, gLoss: 1 })).toEqual({ norm: Math.sqrt(6 * 16) });
    expect(agg.add('c', { weights: w([7, 7, 7, 7], [7, 7], [1, 1]), examples: 60, dLoss: 5, gLoss: 1 })).toEqual({ norm: Math.sqrt(6 * 49) });
    const { weights, stats } = agg.result();
    // Weights 10, 30, 60 (a counted at its cap): (10·1 + 30·4 + 60·7) / 100 = 5.5.
    expect(vals(weights)[0]).toEqual([5.5, 5.5, 5.5, 5.5]);
    expect(stats.examples).toBe(100);
    expect(stats.dLoss).toBeCloseTo((10 * 1 + 30 * 3 + 60 * 5) / 100, 14);
  });

  it('counts a loss beyond ±1e6 at the limit in the statistics and says so; the update still counts', () => {
    const agg = new RoundAggregation(fedOf(), previous);
    expect(agg.add('a', { weights: w([1, 1, 1, 1], [1, 1], [1, 1]), examples: 1, dLoss: 1e308, gLoss: -2e6 })).toEqual({ lossClamped: 'dLoss 1e+308, gLoss -2000000 counted as dLoss 1000000, gLoss -1000000' });
    expect(agg.add('b', { weights: w([1, 1, 1, 1], [1, 1], [1, 1]), examples: 1, dLoss: 1, gLoss: 1e6 })).toEqual({});
    const { stats } = agg.result();
    expect(stats.dLoss).toBeCloseTo((1e6 + 1) / 2, 6);
    expect(stats.gLoss).toBe(0);
  });

  it('refuses bad updates with the AggregationError reasons, adding nothing', () => {
    const fed = fedOf({ examples: { min: 2, max: 100 } });
    const agg = new RoundAggregation(fed, previous);
    const ok = (over: Partial<{ weights: WeightSet; examples: number; dLoss: number; gLoss: number }> = {}) => ({ weights: w([1, 1, 1, 1], [1, 1], [1, 1]), examples: 10, dLoss: 1, gLoss: 1, ...over });
    const nan = w([1, NaN, 1, 1], [1, 1], [1, 1]);
    const otherShape: WeightSet = { ...previous, tensors: previous.tensors.map((t, i) => (i === 1 ? { ...t, shape: [1, 2] } : t)) };
    expect(reasonOf(() => agg.add('a', ok({ examples: 1 })))).toBe('examples');
    expect(reasonOf(() => agg.add('a', ok({ examples: 101 })))).toBe('examples');
    expect(reasonOf(() => agg.add('a', ok({ examples: 2.5 })))).toBe('examples');
    expect(reasonOf(() => agg.add('a', ok({ weights: nan })))).toBe('non-finite');
    expect(reasonOf(() => agg.add('a', ok({ dLoss: NaN })))).toBe('non-finite');
    expect(reasonOf(() => agg.add('a', ok({ gLoss: -Infinity })))).toBe('non-finite');
    expect(reasonOf(() => agg.add('a', ok({ weights: w([1, 1, 1, 1], [1, 1], [1, 1], '0000000000000000') })))).toBe('fingerprint');
    expect(reasonOf(() => agg.add('a', ok({ weights: otherShape })))).toBe('shape');
    expect(() => agg.add('a', ok({ examples: 101 }))).toThrow('examples must be an integer in 2…100, got 101');
    expect(agg.count).toBe(0);
    expect(reasonOf(() => agg.stats())).toBe('empty');
    expect(reasonOf(() => agg.result())).toBe('empty');
    // A refused update left nothing behind: the first good one is the whole aggregate.
    const agg2 = new RoundAggregation(fed, previous);
    expect(reasonOf(() => agg2.add('a', ok({ weights: w([9, 9, 9, 9], [9, 9], [9, 9]), dLoss: NaN })))).toBe('non-finite');
    agg2.add('a', ok({ weights: w([2, 2, 2, 2], [2, 2], [2, 2]) }));
    expect(vals(agg2.result().weights)).toEqual([[2, 2, 2, 2], [2, 2], [2, 2]]);
  });

  it('skips the value scan only when the caller vouches for it (finiteChecked)', () => {
    const nan = w([1, NaN, 1, 1], [1, 1], [1, 1]);
    const fed = fedOf({ aggregator: { type: 'median' } });
    expect(reasonOf(() => new RoundAggregation(fed, previous).add('a', { weights: nan, examples: 1, dLoss: 1, gLoss: 1 }))).toBe('non-finite');
    expect(reasonOf(() => new RoundAggregation(fed, previous).add('a', { weights: nan, examples: 1, dLoss: 1, gLoss: 1 }, { finiteChecked: true }))).toBe('accepted');
  });

  it('uses the configured aggregator and says whether it keeps updates', () => {
    const values = [1, 2, 3, 4, 100];
    for (const [aggregator, expected, retains] of [
      [{ type: 'fedavg' }, 22, false],
      [{ type: 'median' }, 3, true],
      [{ type: 'trimmed-mean', beta: 0.2 }, 3, true],
    ] as const) {
      const agg = new RoundAggregation(fedOf({ aggregator }), previous);
      expect(agg.retainsUpdates).toBe(retains);
      values.forEach((v, i) => agg.add(`h${i}`, { weights: w([v, v, v, v], [v, v], [v, v]), examples: 10, dLoss: 1, gLoss: 1 }));
      expect(vals(agg.result().weights).flat().every((x) => x === expected)).toBe(true);
    }
  });

  it('takes each hospital once and gives its result once', () => {
    const agg = new RoundAggregation(fedOf(), previous);
    agg.add('a', { weights: w([1, 1, 1, 1], [1, 1], [1, 1]), examples: 1, dLoss: 1, gLoss: 1 });
    expect(() => agg.add('a', { weights: w([1, 1, 1, 1], [1, 1], [1, 1]), examples: 1, dLoss: 1, gLoss: 1 })).toThrow(/a already contributed/);
    agg.result();
    expect(() => agg.result()).toThrow(/already taken/);
    expect(() => agg.add('b', { weights: w([1, 1, 1, 1], [1, 1], [1, 1]), examples: 1, dLoss: 1, gLoss: 1 })).toThrow(/already aggregated/);
  });

  it('gives the same loss means whatever the order the updates arrive in (the server: arrival order; the simulation: sorted)', () => {
    // Summed in the order given, these three means differ in the last bit (1.1998285714285715 vs …12).
    const items = [
      { id: 'a', examples: 7, dLoss: 0.333, gLoss: 0.707 },
      { id: 'b', examples: 13, dLoss: 0.381, gLoss: 0.981 },
      { id: 'c', examples: 15, dLoss: 2.314, gLoss: 1.168 },
    ];
    expect(exampleWeightedMean(items.map((i) => ({ examples: i.examples, value: i.dLoss })))).not.toBe(
      exampleWeightedMean([...items].reverse().map((i) => ({ examples: i.examples, value: i.dLoss }))),
    );
    const statsIn = (order: typeof items) => {
      const agg = new RoundAggregation(fedOf(), previous);
      for (const i of order) agg.add(i.id, { weights: w([1, 2, 3, 4], [1, 1], [1, 1]), examples: i.examples, dLoss: i.dLoss, gLoss: i.gLoss });
      return agg.result().stats;
    };
    const sorted = statsIn(items);
    expect(statsIn([...items].reverse())).toEqual(sorted);
    expect(statsIn([items[1], items[2], items[0]])).toEqual(sorted);
    expect(sorted.dLoss).toBe(exampleWeightedMean(items.map((i) => ({ examples: i.examples, value: i.dLoss }))));
  });

  it('withoutBatchNorm keeps the other tensors, the same objects', () => {
    const f = withoutBatchNorm(previous);
    expect(f.tensors.map((t) => t.name)).toEqual(['g/dense/kernel', 'g/dense/bias']);
    expect(f.tensors[0]).toBe(previous.tensors[0]);
  });
});
