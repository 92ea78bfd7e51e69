import { describe, expect, it } from 'vitest';
import { roundThreshold, secureAggregationOf, secureAggregationProblems, secureAggregationSchema } from './config.ts';

const base = { aggregator: { type: 'fedavg' }, maxUpdateNorm: 'auto' as const, minCompletion: 2 };

describe('privacy.secureAggregation config', () => {
  it('defaults: off, clip 0.5, maxExamples 100000, threshold from the roster, 60 s phases', () => {
    expect(secureAggregationOf({})).toEqual({ enabled: false, clip: 0.5, maxExamples: 100_000, threshold: null, phaseSeconds: 60 });
    expect(secureAggregationOf({ privacy: { secureAggregation: { enabled: true } } }).enabled).toBe(true);
  });

  it('refuses robust aggregators and a numeric maxUpdateNorm with secure aggregation, naming why', () => {
    const on = { privacy: { secureAggregation: { enabled: true } } };
    for (const type of ['median', 'trimmed-mean']) {
      const p = secureAggregationProblems({ ...base, ...on, aggregator: { type } });
      expect(p).toHaveLength(1);
      expect(p[0].path).toBe('aggregator.type');
      expect(p[0].message).toMatch(new RegExp(`${type} cannot be used with privacy.secureAggregation: the server sees only the sum`));
    }
    const n = secureAggregationProblems({ ...base, ...on, maxUpdateNorm: 10 });
    expect(n.map((x) => x.path)).toEqual(['maxUpdateNorm']);
    expect(n[0].message).toMatch(/per-update norm bound cannot be checked/);
    expect(secureAggregationProblems({ ...base, ...on })).toEqual([]);
    expect(secureAggregationProblems({ ...base, ...on, maxUpdateNorm: null })).toEqual([]);
    // Off: nothing is refused.
    expect(secureAggregationProblems({ ...base, aggregator: { type: 'median' }, maxUpdateNorm: 10 })).toEqual([]);
  });

  it('refuses clip × maxExamples beyond a 32-bit integer', () => {
    const p = secureAggregationProblems({ ...base, privacy: { secureAggregation: { enabled: true, clip: 10, maxExamples: 300_000_000 } } });
    expect(p).toEqual([{ path: 'privacy.secureAggregation.maxExamples', message: 'clip × maxExamples (10 × 300000000) must be at most 2147483647: updates are summed as 32-bit integers; lower maxExamples or clip' }]);
    expect(secureAggregationProblems({ ...base, privacy: { secureAggregation: { enabled: true, clip: 1, maxExamples: 2_000_000_000 } } })).toEqual([]);
  });

  it('refuses a threshold of 1 and one below minCompletion', () => {
    expect(() => secureAggregationSchema.parse({ threshold: 1 })).toThrow(/at least 2/);
    const p = secureAggregationProblems({ ...base, minCompletion: 3, privacy: { secureAggregation: { enabled: true, threshold: 2 } } });
    expect(p).toEqual([{ path: 'privacy.secureAggregation.threshold', message: 'must be at least minCompletion (3)' }]);
  });

  it('the default threshold is a majority of the roster, at least 2 and minCompletion', () => {
    const cfg = secureAggregationOf({});
    expect([2, 3, 4, 5, 10].map((n) => roundThreshold(cfg, n, 2))).toEqual([2, 2, 3, 3, 6]);
    expect(roundThreshold(cfg, 3, 3)).toBe(3);
    expect(roundThreshold({ ...cfg, threshold: 4 }, 10, 2)).toBe(4);
  });
});
