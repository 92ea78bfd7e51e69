import { describe, expect, it } from 'vitest';
import { layoutMismatch } from './layout.ts';

const ref = [
  { name: 'd/conv1/kernel', shape: [3, 3, 3, 16] },
  { name: 'd/bn1/gamma', shape: [16] },
];

describe('layoutMismatch', () => {
  it('returns null for identical layouts', () => {
    expect(layoutMismatch(structuredClone(ref), ref)).toBeNull();
    expect(layoutMismatch([], [])).toBeNull();
  });

  it('names the first tensor whose shape differs', () => {
    const other = [ref[0], { name: 'd/bn1/gamma', shape: [32] }];
    expect(layoutMismatch(other, ref)).toBe('tensor #1 is d/bn1/gamma [32] but d/bn1/gamma [16] was expected');
  });

  it('detects renamed tensors and rank changes', () => {
    expect(layoutMismatch([{ ...ref[0], name: 'd/conv2/kernel' }, ref[1]], ref)).toMatch(/tensor #0 is d\/conv2\/kernel/);
    expect(layoutMismatch([{ ...ref[0], shape: [27, 16] }, ref[1]], ref)).toMatch(/\[27, 16\] but .*\[3, 3, 3, 16\]/);
  });

  it('reports missing and extra tensors', () => {
    expect(layoutMismatch(ref.slice(0, 1), ref)).toBe('1 tensors where 2 were expected (first missing tensor: d/bn1/gamma)');
    expect(layoutMismatch([...ref, { name: 'x', shape: [1] }], ref)).toMatch(/3 tensors where 2 .*unexpected tensor: x/);
  });
});
