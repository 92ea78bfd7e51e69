import { describe, expect, it } from 'vitest';
import { AggregationError, layoutOf, validateUpdate, type AggregationErrorReason, type ClientUpdate } from './types.ts';
import { FP, upd, ws } from './testUtil.ts';

const reference = layoutOf(ws([0, 0, 0, 0], [0, 0, 0]));

function reasonOf(fn: () => void): AggregationErrorReason | 'none' {
  try {
    fn();
  } catch (e) {
    if (e instanceof AggregationError) return e.reason;
    throw e;
  }
  return 'none';
}

describe('validateUpdate', () => {
  it('accepts a matching update', () => {
    expect(reasonOf(() => validateUpdate(upd([1, 2, 3, 4], [5, 6, 7], 10), reference))).toBe('none');
  });

  it('refuses another fingerprint', () => {
    const u: ClientUpdate = { weights: ws([1, 2, 3, 4], [5, 6, 7], 'ffffffffffffffff'), examples: 1 };
    expect(reasonOf(() => validateUpdate(u, reference))).toBe('fingerprint');
    expect(() => validateUpdate(u, reference, { source: 'hospital-3' })).toThrow(
      /update from hospital-3 refused: weights fingerprint ffffffffffffffff does not match 0123456789abcdef/,
    );
  });

  it('refuses other shapes, names, order, and data of the wrong length', () => {
    const reshaped = upd([1, 2, 3, 4], [5, 6, 7]);
    reshaped.weights.tensors[0].shape = [4];
    expect(reasonOf(() => validateUpdate(reshaped, reference))).toBe('shape');

    const swapped = upd([1, 2, 3, 4], [5, 6, 7]);
    swapped.weights.tensors.reverse();
    expect(reasonOf(() => validateUpdate(swapped, reference))).toBe('shape');

    const missing = upd([1, 2, 3, 4], [5, 6, 7]);
    missing.weights.tensors.pop();
    expect(reasonOf(() => validateUpdate(missing, reference))).toBe('shape');

    const short = upd([1, 2, 3], [5, 6, 7]);
    expect(reasonOf(() => validateUpdate(short, reference))).toBe('shape');
    expect(() => validateUpdate(short, reference)).toThrow(/tensor a has 3 values but shape \[2, 2\] needs 4/);
  });

  it('refuses NaN and Infinity, naming the tensor and index', () => {
    expect(reasonOf(() => validateUpdate(upd([1, 2, 3, 4], [5, NaN, 7]), reference))).toBe('non-finite');
    expect(() => validateUpdate(upd([1, 2, Infinity, 4], [5, 6, 7]), reference)).toThrow(/tensor a holds Infinity at index 2/);
  });

  it('skips only the finite check for an update marked finiteChecked', () => {
    // The caller vouches for finiteness (the server decodes with the check fused into the checksum pass).
    const vouched: ClientUpdate = { ...upd([1, 2, 3, 4], [5, NaN, 7]), finiteChecked: true };
    expect(reasonOf(() => validateUpdate(vouched, reference))).toBe('none');
    expect(reasonOf(() => validateUpdate({ ...vouched, finiteChecked: false }, reference))).toBe('non-finite');
    // Everything else is still checked.
    expect(reasonOf(() => validateUpdate({ ...upd([1, 2, 3, 4], [5, 6, 7], 0), finiteChecked: true }, reference))).toBe('examples');
    const other: ClientUpdate = { weights: ws([1, 2, 3, 4], [5, 6, 7], 'ffffffffffffffff'), examples: 1, finiteChecked: true };
    expect(reasonOf(() => validateUpdate(other, reference))).toBe('fingerprint');
    const short: ClientUpdate = { ...upd([1, 2, 3], [5, 6, 7]), finiteChecked: true };
    expect(reasonOf(() => validateUpdate(short, reference))).toBe('shape');
  });

  it('refuses example counts that are not positive integers', () => {
    for (const examples of [0, -3, 1.5, NaN, Infinity]) {
      expect(reasonOf(() => validateUpdate(upd([1, 2, 3, 4], [5, 6, 7], examples), reference))).toBe('examples');
    }
  });

  it('bounds the update norm against the base weights', () => {
    const base = ws([0, 0, 0, 0], [0, 0, 0]);
    const u = upd([3, 0, 0, 0], [4, 0, 0]); // distance 5
    expect(reasonOf(() => validateUpdate(u, reference, { base, maxNorm: 5 }))).toBe('none');
    expect(reasonOf(() => validateUpdate(u, reference, { base, maxNorm: 4.9 }))).toBe('norm');
    expect(() => validateUpdate(u, reference, { base, maxNorm: 4.9 })).toThrow(/update norm 5.000 exceeds the bound 4.9/);
    expect(() => validateUpdate(u, reference, { maxNorm: 1 })).toThrow(TypeError);
  });

  it('layoutOf detaches the shapes from the source', () => {
    const w = ws([0, 0, 0, 0], [0, 0, 0]);
    const layout = layoutOf(w);
    w.tensors[0].shape[0] = 9;
    expect(layout).toEqual({ fingerprint: FP, tensors: [{ name: 'a', shape: [2, 2] }, { name: 'b/bn1/gamma', shape: [3] }] });
  });
});
