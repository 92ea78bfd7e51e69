import { describe, expect, it } from 'vitest';
import { sampleClients, sampleSize } from './sampling.ts';

const ids = Array.from({ length: 10 }, (_, i) => `hospital-${i}`);

describe('sampleSize', () => {
  it('is max(minCount, ceil(fraction·n)) clamped to n', () => {
    expect(sampleSize(10, 0.3, 1)).toBe(3);
    expect(sampleSize(10, 0.25, 1)).toBe(3);
    expect(sampleSize(10, 0.1, 4)).toBe(4);
    expect(sampleSize(3, 0.5, 5)).toBe(3);
    expect(sampleSize(10, 1, 0)).toBe(10);
    expect(sampleSize(10, 0, 0)).toBe(0);
  });

  it('does not round up because of float error', () => {
    expect(sampleSize(30, 0.1, 0)).toBe(3); // 0.1 * 30 = 3.0000000000000004
    expect(sampleSize(100, 0.07, 0)).toBe(7); // 0.07 * 100 = 7.000000000000001
  });

  it('rejects invalid parameters', () => {
    expect(() => sampleSize(10, 1.5, 1)).toThrow(/fraction must be in \[0, 1\], got 1.5/);
    expect(() => sampleSize(10, -0.1, 1)).toThrow(/fraction/);
    expect(() => sampleSize(10, 0.5, -1)).toThrow(/minimum client count/);
    expect(() => sampleSize(10, 0.5, 1.5)).toThrow(/minimum client count/);
  });
});

describe('sampleClients', () => {
  const opts = { fraction: 0.3, minCount: 2, seed: 7, round: 0 };

  it('returns the right number of distinct, known ids, sorted', () => {
    const s = sampleClients(ids, opts);
    expect(s).toHaveLength(3);
    expect(new Set(s).size).toBe(3);
    for (const id of s) expect(ids).toContain(id);
    expect(s).toEqual([...s].sort());
  });

  it('is deterministic for (seed, round) and independent of the order of ids', () => {
    const a = sampleClients(ids, opts);
    expect(sampleClients(ids, opts)).toEqual(a);
    expect(sampleClients([...ids].reverse(), opts)).toEqual(a);
  });

  it('differs across rounds and seeds', () => {
    const byRound = new Set(Array.from({ length: 10 }, (_, round) => sampleClients(ids, { ...opts, round }).join(',')));
    expect(byRound.size).toBeGreaterThan(5);
    const bySeed = new Set(Array.from({ length: 10 }, (_, seed) => sampleClients(ids, { ...opts, seed }).join(',')));
    expect(bySeed.size).toBeGreaterThan(5);
  });

  it('selects every client about equally often over many rounds', () => {
    const counts = new Map(ids.map((id) => [id, 0]));
    for (let round = 0; round < 2000; round++) {
      for (const id of sampleClients(ids, { ...opts, round })) counts.set(id, counts.get(id)! + 1);
    }
    for (const c of counts.values()) expect(Math.abs(c - 600)).toBeLessThan(90); // 2000 rounds × 3/10
  });

  it('applies minCount and takes everyone when fraction is 1', () => {
    expect(sampleClients(ids, { ...opts, fraction: 0.01, minCount: 4 })).toHaveLength(4);
    expect(sampleClients(ids, { ...opts, fraction: 1 })).toEqual([...ids].sort());
  });

  it('throws a clear error when fewer clients than minCount are available', () => {
    expect(() => sampleClients(ids.slice(0, 2), { ...opts, minCount: 3, round: 4 })).toThrow(
      'cannot start round 4: it needs at least 3 clients but only 2 are available',
    );
  });

  it('rejects duplicate ids and non-integer rounds', () => {
    expect(() => sampleClients(['a', 'b', 'a'], opts)).toThrow(/a is listed twice/);
    expect(() => sampleClients(ids, { ...opts, round: 1.5 })).toThrow(/round must be an integer/);
  });
});
