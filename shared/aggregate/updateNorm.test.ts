import { describe, expect, it } from 'vitest';
import { l2Distance } from './updateNorm.ts';
import { ws } from './testUtil.ts';

describe('l2Distance', () => {
  it('is the L2 norm of the difference across all tensors', () => {
    expect(l2Distance(ws([1, 2, 3, 4], [0, 0, 1]), ws([1, 2, 3, 4], [0, 0, 1]))).toBe(0);
    // differences: a = [1, -2, 0, 0], b = [2, 0, -4] → sqrt(1 + 4 + 4 + 16) = 5
    expect(l2Distance(ws([2, 0, 3, 4], [2, 0, -3]), ws([1, 2, 3, 4], [0, 0, 1]))).toBe(5);
  });

  it('is symmetric', () => {
    const a = ws([0.5, -1, 2, 0], [3, 3, 3]);
    const b = ws([1, 1, 1, 1], [0, 1, 2]);
    expect(l2Distance(a, b)).toBeCloseTo(Math.sqrt(0.25 + 4 + 1 + 1 + 9 + 4 + 1), 12);
    expect(l2Distance(a, b)).toBe(l2Distance(b, a));
  });

  it('refuses weight sets with different layouts', () => {
    const b = ws([1, 1, 1, 1], [0, 1, 2]);
    b.tensors[1].shape = [1, 3];
    expect(() => l2Distance(ws([0, 0, 0, 0], [0, 0, 0]), b)).toThrow(/different layouts: tensor #1/);
  });
});
