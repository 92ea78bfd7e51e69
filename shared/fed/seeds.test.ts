import { describe, expect, it } from 'vitest';
import { hospitalSeed, roundSeed } from './seeds.ts';

describe('hospital and round seeds (D3)', () => {
  it('are stable: the same inputs give the same seeds on every host and every run', () => {
    // Pinned: a change here changes every hospital's training draws.
    expect(hospitalSeed(7, 'hospital-a')).toBe(1012091621);
    expect(hospitalSeed(7, 'hospital-b')).toBe(15350910);
    expect(hospitalSeed(8, 'hospital-a')).toBe(1720476707);
    const a = hospitalSeed(7, 'hospital-a');
    expect(roundSeed(a, 1, 1)).toBe(510883701);
    expect(roundSeed(a, 2, 1)).toBe(1407229580);
    expect(roundSeed(a, 1, 2)).toBe(136127507);
  });

  it('differ per hospital, per model seed, per round and per attempt', () => {
    const names = ['hospital-1', 'hospital-2', 'hospital-10', 'site-TCGA-AA', 'site-TCGA-CM', 'h1', 'h2', 'H1'];
    const perHospital = names.map((n) => hospitalSeed(7, n));
    expect(new Set(perHospital).size).toBe(names.length);
    expect(hospitalSeed(1, 'h1')).not.toBe(hospitalSeed(2, 'h1'));
    const seeds = new Set<number>();
    for (const h of perHospital.slice(0, 3)) for (let round = 0; round < 20; round++) for (let attempt = 1; attempt <= 5; attempt++) seeds.add(roundSeed(h, round, attempt));
    expect(seeds.size).toBe(3 * 20 * 5);
  });

  it('are whole numbers in [0, 2^31), so seeds derived from them stay exact', () => {
    for (const n of ['a', 'b', 'c', 'd']) {
      const h = hospitalSeed(123456789, n);
      const r = roundSeed(h, 99, 3);
      for (const s of [h, r]) {
        expect(Number.isInteger(s)).toBe(true);
        expect(s).toBeGreaterThanOrEqual(0);
        expect(s).toBeLessThan(2 ** 31);
      }
    }
  });

  it('refuse inputs that cannot name a hospital or a round', () => {
    expect(() => hospitalSeed(7, '')).toThrow(/needs the hospital's name/);
    expect(() => hospitalSeed(1.5, 'h1')).toThrow(/model seed must be an integer, got 1.5/);
    expect(() => roundSeed(1, -1, 1)).toThrow(/round must be a whole number ≥ 0, got -1/);
    expect(() => roundSeed(1, 1, 0.5)).toThrow(/attempt must be a whole number ≥ 0, got 0.5/);
  });
});
