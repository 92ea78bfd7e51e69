import { describe, expect, it } from 'vitest';
import { fid } from '../shared/metrics/fid.ts';
import { featuresFromRows, selectRows, type Features } from '../shared/metrics/features.ts';
import { kid } from '../shared/metrics/kid.ts';
import { Rng } from '../shared/rng.ts';
import { realFloor } from './floor.ts';

function gaussian(rows: number, dim: number, shift: number, seed: number): Features {
  const rng = new Rng(seed);
  return featuresFromRows(Array.from({ length: rows }, () => Array.from({ length: dim }, (_, j) => rng.normal() + (j === 0 ? shift : 0))));
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('realFloor', () => {
  const train = gaussian(80, 6, 0, 1);
  const test = gaussian(30, 6, 0.2, 2);
  const synthetic = gaussian(50, 6, 5, 3);
  const opts = { seed: 7, kidSubsets: 5 };

  it('compares the same number of test and synthetic tiles with all training tiles: the larger side is subsampled', () => {
    const { floor, rows } = realFloor(train, test, synthetic, opts);
    expect(floor.n).toBe(30);
    expect(floor.trainN).toBe(80);
    expect(rows.test).toEqual(range(30));
    expect(rows.synthetic).toHaveLength(30);
    expect(new Set(rows.synthetic).size).toBe(30);
    expect(rows.synthetic).toEqual([...rows.synthetic].sort((a, b) => a - b));
    expect(rows.synthetic.every((i) => Number.isInteger(i) && i >= 0 && i < 50)).toBe(true);
    expect(rows.synthetic).not.toEqual(range(30)); // a random subset, not the first rows
    // The figures are FID/KID on exactly those rows, with the report's KID settings.
    expect(floor.fid).toBeCloseTo(fid(train, test), 9);
    const chosen = selectRows(synthetic, rows.synthetic);
    expect(floor.syntheticFid).toBeCloseTo(fid(train, chosen), 9);
    const k = kid(train, test, { subsets: 5, seed: 7 });
    expect(floor.kid).toEqual({ mean: k.mean, std: k.std });
    expect(floor.kidSubsetSize).toBe(15); // ⌊30 / 2⌋, the same on both sides
    expect(floor.syntheticKid.mean).toBeCloseTo(kid(train, chosen, { subsets: 5, seed: 7 }).mean, 12);
    expect(floor.fidOverFloor).toBeCloseTo(floor.syntheticFid / floor.fid, 12);
    expect(floor.fidOverFloor!).toBeGreaterThan(3); // shifted by 5 vs 0.2
  });

  it('subsamples the test side when there are fewer synthetic tiles, and then reuses the full synthetic figures', () => {
    const few = gaussian(20, 6, 2, 4);
    const full = { fid: fid(train, few), kid: { mean: kid(train, few, { subsets: 5, seed: 7 }).mean, std: kid(train, few, { subsets: 5, seed: 7 }).std } };
    const { floor, rows } = realFloor(train, test, few, { ...opts, full });
    expect(floor.n).toBe(20);
    expect(rows.synthetic).toEqual(range(20));
    expect(rows.test).toHaveLength(20);
    expect(new Set(rows.test).size).toBe(20);
    expect(floor.fid).toBeCloseTo(fid(train, selectRows(test, rows.test)), 9);
    expect(floor.syntheticFid).toBe(full.fid);
    expect(floor.syntheticKid).toEqual(full.kid);
    // Without the full figures it computes the same ones.
    const again = realFloor(train, test, few, opts);
    expect(again.floor.syntheticFid).toBeCloseTo(full.fid, 9);
    expect(again.floor.syntheticKid.mean).toBeCloseTo(full.kid.mean, 12);
    expect(again.rows).toEqual(rows);
  });

  it('draws its subset from the seed', () => {
    expect(realFloor(train, test, synthetic, opts).rows).toEqual(realFloor(train, test, synthetic, opts).rows);
    expect(realFloor(train, test, synthetic, { ...opts, seed: 8 }).rows.synthetic).not.toEqual(realFloor(train, test, synthetic, opts).rows.synthetic);
  });

  it('has no ratio when the floor is not above 0, and needs 2 tiles a side', () => {
    const same = gaussian(10, 3, 0, 5);
    const { floor } = realFloor(same, same, gaussian(10, 3, 1, 6), opts);
    expect(Math.abs(floor.fid)).toBeLessThan(1e-9);
    expect(floor.fidOverFloor).toBeNull();
    expect(() => realFloor(train, selectRows(test, [0]), synthetic, opts)).toThrow('the real floor needs at least 2 test and 2 synthetic tiles, got 1 and 50');
  });
});
