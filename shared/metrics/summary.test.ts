import { describe, expect, it } from 'vitest';
import { meanSd, percentile, summariseRuns } from './summary.ts';

describe('summaries', () => {
  it('mean ± sample sd', () => {
    const s = meanSd([2, 4, 4, 4, 5, 5, 7, 9]);
    expect(s.mean).toBe(5);
    expect(s.sd).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(meanSd([3])).toEqual({ mean: 3, sd: 0, n: 1 });
    expect(summariseRuns([{ a: 1, b: 2 }, { a: 3, b: 2 }], ['a', 'b'])).toEqual({ a: { mean: 2, sd: Math.SQRT2, n: 2 }, b: { mean: 2, sd: 0, n: 2 } });
  });

  it('percentiles interpolate like numpy.percentile', () => {
    const v = [10, 1, 7, 3, 5];
    expect(percentile(v, 50)).toBe(5);
    expect(percentile(v, 0)).toBe(1);
    expect(percentile(v, 100)).toBe(10);
    // numpy.percentile([1,3,5,7,10], 5) = 1.4 ; 90 → 8.8
    expect(percentile(v, 5)).toBeCloseTo(1.4, 12);
    expect(percentile(v, 90)).toBeCloseTo(8.8, 12);
    expect(() => percentile([], 5)).toThrow(/no values/);
  });
});
