import { describe, expect, it } from 'vitest';
import { hashString, Rng } from './rng.ts';

function draw(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.nextUint32());
}

describe('Rng core generator', () => {
  it('matches the xoshiro128** reference sequence for state {1, 2, 3, 4}', () => {
    const rng = new Rng(0);
    // Overwrite the private state with the reference seed used by the C reference implementation.
    Object.assign(rng as unknown as Record<string, number>, { s0: 1, s1: 2, s2: 3, s3: 4 });
    expect(draw(rng, 6)).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it('is deterministic for a seed and differs between seeds', () => {
    expect(draw(new Rng(42), 8)).toEqual(draw(new Rng(42), 8));
    expect(draw(new Rng(42), 8)).not.toEqual(draw(new Rng(43), 8));
    // Seeds that differ only above bit 32 still give different streams.
    expect(draw(new Rng(1), 4)).not.toEqual(draw(new Rng(1 + 2 ** 32), 4));
    expect(draw(new Rng(-1), 4)).not.toEqual(draw(new Rng(2 ** 32 - 1), 4));
  });

  it('rejects non-finite seeds', () => {
    expect(() => new Rng(Number.NaN)).toThrow(/finite/);
    expect(() => new Rng(Infinity)).toThrow(/finite/);
  });
});

describe('Rng.next / int / normal', () => {
  it('next() stays in [0, 1) and has mean ≈ 0.5', () => {
    const rng = new Rng(1);
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < 20000; i++) {
      const x = rng.next();
      min = Math.min(min, x);
      max = Math.max(max, x);
      sum += x;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(Math.abs(sum / 20000 - 0.5)).toBeLessThan(0.01);
  });

  it('int(n) covers [0, n) roughly uniformly', () => {
    const rng = new Rng(2);
    const counts = new Array(7).fill(0);
    for (let i = 0; i < 70000; i++) counts[rng.int(7)]++;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(500);
    expect(rng.int(1)).toBe(0);
  });

  it('int(n) rejects invalid bounds', () => {
    const rng = new Rng(3);
    expect(() => rng.int(0)).toThrow(RangeError);
    expect(() => rng.int(2.5)).toThrow(RangeError);
    expect(() => rng.int(2 ** 33)).toThrow(RangeError);
  });

  it('normal() has mean ≈ 0 and variance ≈ 1', () => {
    const rng = new Rng(4);
    const n = 40000;
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < n; i++) {
      const z = rng.normal();
      sum += z;
      sumSq += z * z;
    }
    const mean = sum / n;
    expect(Number.isFinite(sumSq)).toBe(true);
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(sumSq / n - mean * mean - 1)).toBeLessThan(0.04);
  });
});

describe('Rng.shuffle', () => {
  it('permutes in place, returns the same array and is deterministic', () => {
    const a = Array.from({ length: 50 }, (_, i) => i);
    const result = new Rng(5).shuffle(a);
    expect(result).toBe(a);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(a).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(new Rng(5).shuffle(Array.from({ length: 50 }, (_, i) => i))).toEqual(a);
  });

  it('puts each element in each position about equally often', () => {
    const rng = new Rng(6);
    const firstCounts = [0, 0, 0, 0];
    for (let i = 0; i < 8000; i++) firstCounts[rng.shuffle([0, 1, 2, 3])[0]]++;
    for (const c of firstCounts) expect(Math.abs(c - 2000)).toBeLessThan(200);
  });

  it('handles empty and single-element arrays', () => {
    expect(new Rng(7).shuffle([])).toEqual([]);
    expect(new Rng(7).shuffle(['x'])).toEqual(['x']);
  });
});

describe('Rng.fork', () => {
  it('is deterministic and independent of how much the parent has drawn', () => {
    const a = new Rng(9);
    const b = new Rng(9);
    draw(b, 100);
    expect(draw(a.fork('round:3'), 5)).toEqual(draw(b.fork('round:3'), 5));
    expect(draw(a.fork(3), 5)).toEqual(draw(b.fork(3), 5));
  });

  it('gives streams distinct from the parent, from other salts and across types', () => {
    const root = new Rng(9);
    const parent = draw(new Rng(9), 5);
    const s1 = draw(root.fork(1), 5);
    const s2 = draw(root.fork(2), 5);
    const str1 = draw(root.fork('1'), 5);
    expect(s1).not.toEqual(parent);
    expect(s1).not.toEqual(s2);
    expect(s1).not.toEqual(str1);
    expect(draw(root.fork(1).fork(2), 5)).not.toEqual(draw(root.fork(2).fork(1), 5));
    expect(draw(new Rng(10).fork(1), 5)).not.toEqual(s1);
  });

  it('produces no key collisions among many forks', () => {
    const root = new Rng(11);
    const firsts = new Set<string>();
    for (let i = 0; i < 5000; i++) firsts.add(draw(root.fork(i), 2).join(','));
    expect(firsts.size).toBe(5000);
  });
});

describe('hashString', () => {
  it('is a deterministic unsigned 32-bit value that separates similar strings', () => {
    const h = hashString('client-1');
    expect(h).toBe(hashString('client-1'));
    expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true);
    expect(hashString('client-2')).not.toBe(h);
    expect(hashString('')).not.toBe(hashString(' '));
    // UTF-8 aware: distinct code points give distinct hashes.
    expect(hashString('é')).not.toBe(hashString('e'));
  });
});
