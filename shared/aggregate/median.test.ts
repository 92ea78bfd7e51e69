import { describe, expect, it } from 'vitest';
import { coordinateMedian, MedianAggregator } from './median.ts';
import { AggregationError } from './types.ts';
import { upd, values } from './testUtil.ts';

describe('MedianAggregator', () => {
  it('takes the coordinate-wise middle value for an odd count, ignoring example counts', () => {
    const r = coordinateMedian([
      upd([1, 9, -3, 0], [5, 5, 100], 1),
      upd([2, 8, -1, 0], [6, -5, 0], 1000),
      upd([30, 7, -2, 1], [7, 0, -100], 1),
    ]);
    expect(values(r)).toEqual([
      [2, 8, -2, 0],
      [6, 0, 0],
    ]);
  });

  it('averages the two middle values for an even count', () => {
    const r = coordinateMedian([
      upd([1, 0, 4, 10], [1, 2, 3]),
      upd([3, 0, 1, -10], [1, 2, 3]),
      upd([100, 1, 2, 0], [1, 2, 3]),
      upd([-100, 1, 3, 0], [1, 2, 4]),
    ]);
    // sorted columns: [-100,1,3,100] → 2; [0,0,1,1] → 0.5; [1,2,3,4] → 2.5; [-10,0,0,10] → 0
    expect(values(r)).toEqual([
      [2, 0.5, 2.5, 0],
      [1, 2, 3],
    ]);
  });

  it('resists one extreme client out of three', () => {
    const r = coordinateMedian([upd([1, 1, 1, 1], [1, 1, 1]), upd([1.5, 1.5, 1.5, 1.5], [1, 1, 1]), upd([1e30, -1e30, 1e30, -1e30], [1e30, 1e30, 1e30])]);
    expect(values(r)[0]).toEqual([1.5, 1, 1.5, 1]);
  });

  it('uses the typed-array sort path for many clients', () => {
    const updates = Array.from({ length: 41 }, (_, i) => upd([(i * 17) % 41, -i, i, 0], [0, 0, 0]));
    expect(values(coordinateMedian(updates))[0]).toEqual([20, -20, 20, 0]);
  });

  it('counts updates and examples and refuses bad ones', () => {
    const agg = new MedianAggregator();
    agg.add(upd([1, 1, 1, 1], [1, 1, 1], 4));
    agg.add(upd([1, 1, 1, 1], [1, 1, 1], 6));
    expect(agg.count()).toBe(2);
    expect(agg.totalExamples()).toBe(10);
    expect(agg.name).toBe('median');
    try {
      agg.add(upd([1, 1, NaN, 1], [1, 1, 1]));
      expect.unreachable();
    } catch (e) {
      expect((e as AggregationError).reason).toBe('non-finite');
    }
    expect(agg.count()).toBe(2);
    expect(() => new MedianAggregator().result()).toThrow(/no update/);
  });
});
