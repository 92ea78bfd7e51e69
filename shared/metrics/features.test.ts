import { describe, expect, it } from 'vitest';
import { concatRows, features, FeatureError } from './features.ts';

describe('concatRows', () => {
  it('puts the parts one after the other, row by row', () => {
    const a = features(Float32Array.from([1, 2, 3, 4]), 2, 2);
    const b = features(Float64Array.from([5, 6]), 1, 2);
    const c = concatRows([a, b], 2);
    expect(c.rows).toBe(3);
    expect(c.dim).toBe(2);
    expect(Array.from(c.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('gives 0 rows for no parts', () => {
    const c = concatRows([], 5);
    expect([c.rows, c.dim, c.data.length]).toEqual([0, 5, 0]);
  });

  it('refuses a part of another dimension, naming it', () => {
    const a = features(Float32Array.from([1, 2]), 1, 2);
    const b = features(Float32Array.from([1, 2, 3]), 1, 3);
    expect(() => concatRows([a, b], 2, 'quality-check features')).toThrow(new FeatureError('quality-check features: part 1 has dimension 3, expected 2'));
  });

  it('refuses a value that is not finite, as features() does', () => {
    const bad = { rows: 1, dim: 2, data: Float32Array.from([1, Number.NaN]) };
    expect(() => concatRows([bad], 2, 'x')).toThrow('x: value 1 (row 0) is NaN');
  });
});
