import { describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../checkpoint.ts';
import { parseFedConfig } from '../config/fedConfig.ts';
import { roundCompleteSchema, roundConfigSchema, updateHeaderSchema } from '../protocol/messages.ts';
import type { WeightSet } from '../weights.ts';
import { bestQuality, latestQuality, probedModelRound, qualityRequest, simulationProbeDue } from './qualitySchedule.ts';
import { RoundAggregation, roundConfig } from './strategy.ts';

const MODEL = { imageSize: 16, latentDim: 8, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 } };

describe('quality schedule', () => {
  it('round r probes model r − 1 when it is a positive multiple of everyRounds; 0 is off', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((r) => probedModelRound(3, r))).toEqual([null, null, null, 3, null, null, 6]);
    expect([1, 2, 3].map((r) => probedModelRound(1, r))).toEqual([null, 1, 2]);
    expect(probedModelRound(0, 5)).toBeNull();
    expect(() => probedModelRound(2, 0)).toThrow(/round must be a positive integer, got 0/);
    expect(() => probedModelRound(-1, 3)).toThrow(/everyRounds must be an integer ≥ 0, got -1/);
  });

  it('the simulation probes after every N-th round and after the last of a run at least N rounds long', () => {
    expect([1, 2, 3, 4, 5, 6, 7].filter((r) => simulationProbeDue(3, r, 7))).toEqual([3, 6, 7]);
    expect([1, 2, 3, 4, 5, 6].filter((r) => simulationProbeDue(3, r, 6))).toEqual([3, 6]);
    expect([1, 2].filter((r) => simulationProbeDue(5, r, 2))).toEqual([]);
    expect([1, 2, 3].filter((r) => simulationProbeDue(0, r, 3))).toEqual([]);
  });

  it('FedConfig quality: defaults, validation naming the field, and the RoundConfig request of the rounds that probe', () => {
    const fed = parseFedConfig({ model: MODEL });
    expect(fed.quality).toEqual({ everyRounds: 5, perClass: 32, features: 'mobilenet-v2', seed: 4242, subsets: 20 });
    expect(() => parseFedConfig({ quality: { everyRounds: -1 } })).toThrow(/quality\.everyRounds: must be at least 0/);
    expect(() => parseFedConfig({ quality: { perClass: 1 } })).toThrow(/quality\.perClass: must be at least 2/);
    expect(() => parseFedConfig({ quality: { features: 'inception-v3' } })).toThrow(/quality\.features/);
    expect(() => parseFedConfig({ quality: { every: 2 } })).toThrow(/quality/);
    expect(qualityRequest(fed, 6)).toEqual({ features: 'mobilenet-v2', perClass: 32, seed: 4242, subsets: 20 });
    expect(qualityRequest(fed, 5)).toBeUndefined();
    expect(roundConfig(fed, 6, 2).quality).toEqual(qualityRequest(fed, 6));
    expect('quality' in roundConfig(fed, 5, 1)).toBe(false);
    expect(roundConfigSchema.parse(JSON.parse(JSON.stringify(roundConfig(fed, 6, 1)))).quality).toEqual(qualityRequest(fed, 6));
    const off = parseFedConfig({ model: MODEL, quality: { everyRounds: 0 } });
    expect([1, 2, 6, 11].map((r) => qualityRequest(off, r))).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('best and latest quality of a history: the lowest finite KID on the latest features, the earlier model on a tie', () => {
    const e = (round: number, kid?: number, features = 'tiny'): HistoryEntry => ({
      round,
      participants: 1,
      hospitals: ['a'],
      examples: 1,
      dLoss: 0,
      gLoss: 0,
      seconds: 0,
      attempts: 1,
      completedAt: '',
      ...(kid !== undefined ? { quality: { round: round - 1, kid, kidStd: 0, hospitals: 1, examples: 1, features } } : {}),
    });
    expect(bestQuality([])).toBeNull();
    expect(latestQuality([e(1), e(2)])).toBeNull();
    expect(bestQuality([e(1), e(2, 0.3), e(3), e(4, 0.1), e(5, 0.1), e(6, 0.2)])).toEqual({ round: 3, kid: 0.1, features: 'tiny' });
    expect(latestQuality([e(1), e(2, 0.3), e(3, 0.2), e(4)])).toMatchObject({ round: 2, kid: 0.2 });
    // Negative KIDs (unbiased estimator) are better than positive ones.
    expect(bestQuality([e(2, 0.01), e(3, -0.002)])).toMatchObject({ round: 2, kid: -0.002 });
    // After the features changed, only figures on the new features count.
    expect(bestQuality([e(2, 0.001, 'tiny'), e(3, 0.5, 'mobilenet-v2'), e(4, 0.4, 'mobilenet-v2')])).toEqual({ round: 3, kid: 0.4, features: 'mobilenet-v2' });
  });
});

describe('update header and round-complete: the quality fields (zod, both ways)', () => {
  const header = { type: 'update', round: 3, attempt: 1, examples: 10, dLoss: 1, gLoss: 2 };
  const good = { kid: 0.05, kidStd: 0.01, n: 64, features: 'mobilenet-v2' };

  it('accepts a bounded, finite probe and refuses others, naming the field', () => {
    expect(updateHeaderSchema.parse({ ...header, quality: good }).quality).toEqual(good);
    expect(updateHeaderSchema.parse({ ...header, quality: { ...good, kid: -0.003 } }).quality!.kid).toBe(-0.003);
    expect(updateHeaderSchema.parse(header).quality).toBeUndefined();
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ ...good, kid: Number.NaN }, /kid/],
      [{ ...good, kid: Infinity }, /kid/],
      [{ ...good, kid: 2e6 }, /within ±1e6/],
      [{ ...good, kidStd: -1 }, /kidStd/],
      [{ ...good, n: 1 }, /n/],
      [{ ...good, n: 2.5 }, /n/],
      [{ ...good, features: 'Mobile Net' }, /feature network name/],
      [{ ...good, features: '' }, /features/],
      [{ ...good, extra: 1 }, /extra|Unrecognized/],
      [{ kid: 0.1, kidStd: 0, n: 10 }, /features/],
    ];
    for (const [quality, message] of bad) {
      const r = updateHeaderSchema.safeParse({ ...header, quality });
      expect(r.success, JSON.stringify(quality)).toBe(false);
      expect(JSON.stringify(r.error!.issues)).toMatch(message);
      expect(r.error!.issues[0].path[0]).toBe('quality');
    }
  });

  it('round-complete carries the round quality; clients that do not know it still parse the message', () => {
    const msg = { type: 'round-complete', round: 6, participants: 2, examples: 40, dLoss: 1, gLoss: 2, seconds: 3 };
    const quality = { round: 5, kid: 0.2, kidStd: 0.02, hospitals: 2, examples: 40, features: 'tiny' };
    expect(roundCompleteSchema.parse({ ...msg, quality }).quality).toEqual(quality);
    expect(roundCompleteSchema.parse(msg).quality).toBeUndefined();
    expect(roundCompleteSchema.safeParse({ ...msg, quality: { ...quality, kid: 'x' } }).success).toBe(false);
  });
});

describe('RoundAggregation: the round quality figure', () => {
  const FP = 'fp';
  const w = (v: number): WeightSet => ({ fingerprint: FP, tensors: [{ name: 'g/dense/kernel', shape: [2], data: new Float32Array(2).fill(v) }] });
  const fed = parseFedConfig({ model: MODEL, minFit: 1, minAvailable: 1, minCompletion: 1, maxUpdateNorm: null, quality: { everyRounds: 2, features: 'tiny' } });
  const probe = (kid: number, kidStd = 0, features = 'tiny') => ({ kid, kidStd, n: 16, features });

  it('is the example-weighted mean of the counted probes, for the model the round started from (round − 1)', () => {
    const agg = new RoundAggregation(fed, w(0), roundConfig(fed, 5, 1));
    expect(agg.add('a', { weights: w(1), examples: 10, dLoss: 0, gLoss: 0, quality: probe(0.4, 0.04) })).toEqual({});
    expect(agg.add('b', { weights: w(1), examples: 30, dLoss: 0, gLoss: 0, quality: probe(0.2, 0.02) })).toEqual({});
    expect(agg.add('c', { weights: w(1), examples: 60, dLoss: 0, gLoss: 0 })).toEqual({}); // no probe: not in the figure
    expect(agg.add('d', { weights: w(1), examples: 50, dLoss: 0, gLoss: 0, quality: probe(0.01, 0, 'mobilenet-v2') })).toEqual({
      probeIgnored: 'the probe was made with mobilenet-v2 features, the round asked for tiny',
    });
    expect(agg.add('e', { weights: w(1), examples: 50, dLoss: 0, gLoss: 0, quality: probe(Number.NaN) }).probeIgnored).toMatch(/^invalid probe: kid: /);
    const { stats } = agg.result();
    expect(stats.participants).toBe(5); // every update counts in the model
    expect(stats.quality!.kid).toBeCloseTo((10 * 0.4 + 30 * 0.2) / 40, 14);
    expect(stats.quality!.kidStd).toBeCloseTo((10 * 0.04 + 30 * 0.02) / 40, 14);
    expect(stats.quality).toMatchObject({ round: 4, hospitals: 2, examples: 40, features: 'tiny' });
  });

  it('a round that did not ask, or an aggregation made without the round config, records no quality', () => {
    const notAsked = new RoundAggregation(fed, w(0), roundConfig(fed, 4, 1));
    expect(notAsked.add('a', { weights: w(1), examples: 10, dLoss: 0, gLoss: 0, quality: probe(0.4) })).toEqual({ probeIgnored: 'the round did not ask for a quality probe' });
    expect(notAsked.result().stats.quality).toBeUndefined();
    const bare = new RoundAggregation(fed, w(0));
    bare.add('a', { weights: w(1), examples: 10, dLoss: 0, gLoss: 0, quality: probe(0.4) });
    expect('quality' in bare.stats()).toBe(false);
  });
});
