import { describe, expect, it } from 'vitest';
import { trimCount, trimmedMean, TrimmedMeanAggregator } from './trimmedMean.ts';
import { upd, values } from './testUtil.ts';

describe('TrimmedMeanAggregator', () => {
  const five = [
    upd([1, 10, 0, 0], [0, 0, 0], 1),
    upd([2, 20, 0, 0], [0, 0, 0], 50),
    upd([3, 30, 0, 0], [0, 0, 0], 1),
    upd([4, 40, 0, 0], [0, 0, 0], 1),
    upd([100, -1000, 0, 5], [0, 0, 0], 1),
  ];

  it('drops floor(β·n) values at each end and averages the rest (unweighted)', () => {
    // β = 0.2, n = 5 → trim 1 each side.
    // col0 sorted [1,2,3,4,100] → mean(2,3,4) = 3; col1 sorted [-1000,10,20,30,40] → mean(10,20,30) = 20;
    // col3 sorted [0,0,0,0,5] → 0.
    expect(values(trimmedMean(five, 0.2))[0]).toEqual([3, 20, 0, 0]);
    // β = 0.4 → trim 2 each side → the median.
    expect(values(trimmedMean(five, 0.4))[0]).toEqual([3, 20, 0, 0]);
  });

  it('is the plain unweighted mean with β = 0, and β·n < 1 trims nothing', () => {
    expect(values(trimmedMean(five, 0))[0]).toEqual([22, -180, 0, 1]);
    expect(values(trimmedMean(five, 0.19))[0]).toEqual([22, -180, 0, 1]);
  });

  it('handles even counts', () => {
    const four = five.slice(0, 4);
    // β = 0.25, n = 4 → trim 1: col0 mean(2,3) = 2.5
    expect(values(trimmedMean(four, 0.25))[0]).toEqual([2.5, 25, 0, 0]);
  });

  it('computes the trim count robustly against float error', () => {
    expect(trimCount(0.29, 100)).toBe(29);
    expect(trimCount(0.1, 30)).toBe(3);
    expect(trimCount(0.49, 2)).toBe(0);
  });

  it('refuses β outside [0, 0.5)', () => {
    for (const beta of [-0.1, 0.5, 0.7, NaN]) {
      expect(() => new TrimmedMeanAggregator(beta)).toThrow(/beta must be in \[0, 0.5\)/);
    }
  });

  it('reports its name, count and examples', () => {
    const agg = new TrimmedMeanAggregator(0.1);
    for (const u of five) agg.add(u);
    expect(agg.name).toBe('trimmed-mean');
    expect(agg.count()).toBe(5);
    expect(agg.totalExamples()).toBe(54);
  });
});
