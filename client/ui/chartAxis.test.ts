import { describe, expect, it } from 'vitest';
import { axisTicks, niceStep } from './chartAxis.ts';

describe('chart value axis', () => {
  it('steps are 1, 2 or 5 times a power of ten, the smallest at least the raw step', () => {
    expect([0.3, 1, 1.2, 2, 3, 7, 0.0009, 0.011].map(niceStep)).toEqual([0.5, 1, 2, 2, 5, 10, 0.001, 0.02]);
  });

  it('labels a KID axis with round values, as many decimals as the step needs', () => {
    // The console's quality chart: KID 0.36 at most, the axis to 0.396; its ticks read 0, 0.099, 0.20, … before.
    expect(axisTicks(0, 0.396).map((t) => t.label)).toEqual(['0.0', '0.1', '0.2', '0.3']);
    expect(axisTicks(0, 0.0352).map((t) => t.label)).toEqual(['0.00', '0.01', '0.02', '0.03']); // raw step 0.0088 → 0.01
    expect(axisTicks(0, 0.0044).map((t) => t.label)).toEqual(['0.000', '0.002', '0.004']); // raw 0.0011 → 0.002
  });

  it('labels a loss axis in whole numbers or halves, negative values included, without drift', () => {
    expect(axisTicks(0, 3.03).map((t) => t.label)).toEqual(['0', '1', '2', '3']);
    expect(axisTicks(-1.2, 1.3).map((t) => t.label)).toEqual(['-1', '0', '1']); // raw step 0.625 → 1
    expect(axisTicks(-1.2, 1.3, 8).map((t) => t.label)).toEqual(['-1.0', '-0.5', '0.0', '0.5', '1.0']); // raw 0.3125 → 0.5
    const many = axisTicks(0, 0.7, 7);
    expect(many.map((t) => t.value)).toEqual([0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6000000000000001, 0.7000000000000001]);
    expect(many.map((t) => t.label).at(-1)).toBe('0.7');
  });

  it('gives no ticks for an empty or invalid range', () => {
    expect(axisTicks(1, 1)).toEqual([]);
    expect(axisTicks(0, Number.NaN)).toEqual([]);
  });
});
