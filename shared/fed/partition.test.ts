import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.ts';
import { formatPartitionSpec, parsePartitionSpec, partitionBySite, partitionIID, partitionNonIID, type Labels } from './partition.ts';

/** `counts[c]` examples of class c, in random order. */
function makeLabels(counts: number[], seed = 1): number[] {
  const labels = counts.flatMap((n, c) => new Array<number>(n).fill(c));
  return new Rng(seed).shuffle(labels);
}

function expectDisjoint(parts: number[][], total: number): void {
  const seen = new Set<number>();
  for (const part of parts) {
    for (const i of part) {
      expect(Number.isInteger(i) && i >= 0 && i < total).toBe(true);
      expect(seen.has(i)).toBe(false);
      seen.add(i);
    }
  }
}

function classCounts(part: number[], labels: Labels, classes: readonly (string | number)[]): number[] {
  return classes.map((c) => part.filter((i) => labels[i] === c).length);
}

describe('partitionIID', () => {
  const labels = makeLabels([300, 500, 150, 50, 1]);

  it('uses every example exactly once with sizes differing by at most one', () => {
    const parts = partitionIID(labels, 7, 3);
    expectDisjoint(parts, labels.length);
    expect(parts.flat().length).toBe(labels.length);
    const sizes = parts.map((p) => p.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('is stratified: every client holds each class within one example of the others', () => {
    const parts = partitionIID(labels, 7, 3);
    for (let c = 0; c < 5; c++) {
      const perClient = parts.map((p) => p.filter((i) => labels[i] === c).length);
      expect(Math.max(...perClient) - Math.min(...perClient)).toBeLessThanOrEqual(1);
    }
    // Global share of class 1 is 500/1001 ≈ 0.4995; every client is close to it.
    for (const p of parts) {
      expect(Math.abs(p.filter((i) => labels[i] === 1).length / p.length - 500 / 1001)).toBeLessThan(0.01);
    }
  });

  it('shuffles each client', () => {
    const parts = partitionIID(labels, 2, 3);
    for (const p of parts) expect(p).not.toEqual([...p].sort((a, b) => a - b));
  });

  it('is deterministic by seed and differs across seeds', () => {
    expect(partitionIID(labels, 4, 9)).toEqual(partitionIID(labels, 4, 9));
    expect(partitionIID(labels, 4, 9)).not.toEqual(partitionIID(labels, 4, 10));
  });

  it('works with string labels and one client per example', () => {
    const parts = partitionIID(['a', 'b', 'a'], 3, 0);
    expect(parts.map((p) => p.length)).toEqual([1, 1, 1]);
    expectDisjoint(parts, 3);
  });

  it('refuses more clients than examples', () => {
    expect(() => partitionIID([0, 1, 0, 1, 2], 8, 0)).toThrow('cannot split 5 tiles among 8 hospitals');
    expect(() => partitionIID([0, 1], 0, 0)).toThrow(/positive integer/);
  });
});

describe('partitionNonIID', () => {
  it('gives each client its majority class at ratio 0.7 ± 2 % (2,000 examples, 4 clients, 4 classes)', () => {
    const labels = makeLabels([500, 500, 500, 500]);
    const parts = partitionNonIID(labels, 4, 0.7, 5);
    expectDisjoint(parts, labels.length);
    parts.forEach((p, k) => {
      const counts = classCounts(p, labels, [0, 1, 2, 3]);
      expect(Math.abs(counts[k] / p.length - 0.7)).toBeLessThanOrEqual(0.02);
      // The minority part is spread over all the other classes.
      counts.forEach((n, c) => {
        if (c !== k) expect(n).toBeGreaterThan(0.05 * p.length);
      });
    });
    const sizes = parts.map((p) => p.length);
    expect(new Set(sizes).size).toBe(1);
    // Balanced classes: almost nothing is left over.
    expect(sizes[0] * 4).toBeGreaterThanOrEqual(1960);
  });

  it('holds the ratio on imbalanced, colorectal-like classes with more classes than clients', () => {
    // Scaled-down NCT-CRC-HE class sizes (ADI, BACK, DEB, LYM, MUC, MUS, NORM, STR, TUM).
    const counts = [104, 106, 115, 116, 89, 135, 88, 104, 143];
    const labels = makeLabels(counts, 2);
    for (const ratio of [0.5, 0.7, 0.9]) {
      const parts = partitionNonIID(labels, 4, ratio, 1);
      expectDisjoint(parts, labels.length);
      parts.forEach((p, k) => {
        const share = p.filter((i) => labels[i] === k).length / p.length;
        expect(Math.abs(share - ratio)).toBeLessThanOrEqual(0.02);
      });
    }
  });

  it('lets clients that share a majority class split it (more clients than classes)', () => {
    const labels = makeLabels([600, 600, 600]);
    const parts = partitionNonIID(labels, 6, 0.6, 3);
    expectDisjoint(parts, labels.length);
    parts.forEach((p, k) => {
      const share = p.filter((i) => labels[i] === k % 3).length / p.length;
      expect(Math.abs(share - 0.6)).toBeLessThanOrEqual(0.02);
    });
  });

  it('with ratio 1, gives each client a single class', () => {
    const labels = makeLabels([40, 60, 50]);
    const parts = partitionNonIID(labels, 3, 1, 0);
    parts.forEach((p, k) => expect(new Set(p.map((i) => labels[i]))).toEqual(new Set([k])));
    expect(parts.map((p) => p.length)).toEqual([40, 40, 40]);
  });

  it('orders classes by label: string labels sorted, majority of client k is the k-th class', () => {
    const names = ['TUM', 'ADI', 'LYM'];
    const labels = makeLabels([200, 200, 200]).map((c) => names[c]);
    const parts = partitionNonIID(labels, 3, 0.8, 0);
    const sorted = ['ADI', 'LYM', 'TUM'];
    parts.forEach((p, k) => {
      expect(Math.abs(p.filter((i) => labels[i] === sorted[k]).length / p.length - 0.8)).toBeLessThanOrEqual(0.02);
    });
  });

  it('is deterministic by seed and differs across seeds', () => {
    const labels = makeLabels([100, 100, 100]);
    expect(partitionNonIID(labels, 3, 0.7, 4)).toEqual(partitionNonIID(labels, 3, 0.7, 4));
    expect(partitionNonIID(labels, 3, 0.7, 4)).not.toEqual(partitionNonIID(labels, 3, 0.7, 5));
  });

  it('refuses impossible requests with clear errors', () => {
    expect(() => partitionNonIID([0, 1, 2, 0, 1], 8, 0.7, 0)).toThrow('cannot split 5 tiles among 8 hospitals');
    expect(() => partitionNonIID([0, 1, 2], 2, 0, 0)).toThrow(/ratio must be a number in \(0, 1\], got 0/);
    expect(() => partitionNonIID([0, 1, 2], 2, 1.2, 0)).toThrow(/ratio/);
    expect(() => partitionNonIID([3, 3, 3, 3], 2, 0.7, 0)).toThrow(/needs at least two classes/);
    // Clients 1 and 3 both have majority class 1, which has a single example.
    expect(() => partitionNonIID([0, 0, 0, 0, 1], 4, 1, 0)).toThrow(/classes are too small \(class sizes: 0=4, 1=1\)/);
  });
});

describe('partitionBySite', () => {
  const sites = ['charite', 'aphp', 'charite', 'umc', 'aphp', 'aphp', 'karolinska', 'charite', 'charite'];

  it('makes one client per site, sorted by site name, with ascending indices', () => {
    expect(partitionBySite(sites)).toEqual({
      names: ['aphp', 'charite', 'karolinska', 'umc'],
      clients: [[1, 4, 5], [0, 2, 7, 8], [6], [3]],
    });
  });

  it('merges the smallest sites to respect maxClients', () => {
    // karolinska (1) + umc (1) → 2 examples; then 3 clients fit.
    expect(partitionBySite(sites, { maxClients: 3 })).toEqual({
      names: ['aphp', 'charite', 'karolinska+umc'],
      clients: [[1, 4, 5], [0, 2, 7, 8], [3, 6]],
    });
    // Then karolinska+umc (2) + aphp (3).
    const two = partitionBySite(sites, { maxClients: 2 });
    expect(two.names).toEqual(['aphp+karolinska+umc', 'charite']);
    expect(two.clients[0]).toEqual([1, 3, 4, 5, 6]);
    expect(partitionBySite(sites, { maxClients: 1 }).clients).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8]]);
    expect(partitionBySite(sites, { maxClients: 10 }).names).toHaveLength(4);
  });

  it('refuses empty input and invalid maxClients', () => {
    expect(() => partitionBySite([])).toThrow(/no tile/);
    expect(() => partitionBySite(sites, { maxClients: 0 })).toThrow(/maxClients must be a positive integer/);
  });
});

describe('formatPartitionSpec', () => {
  it('writes each spec as the parser reads it back', () => {
    expect(formatPartitionSpec({ kind: 'iid' })).toBe('iid');
    expect(formatPartitionSpec({ kind: 'noniid', ratio: 0.7 })).toBe('noniid:0.7');
    expect(formatPartitionSpec({ kind: 'site' })).toBe('site');
    expect(formatPartitionSpec({ kind: 'site', maxClients: 3 })).toBe('site:3');
    for (const text of ['iid', 'noniid:0.85', 'site', 'site:5']) expect(formatPartitionSpec(parsePartitionSpec(text))).toBe(text);
  });
});

describe('parsePartitionSpec', () => {
  it('parses the supported specs', () => {
    expect(parsePartitionSpec('iid')).toEqual({ kind: 'iid' });
    expect(parsePartitionSpec(' NonIID:0.7 ')).toEqual({ kind: 'noniid', ratio: 0.7 });
    expect(parsePartitionSpec('non-iid:1')).toEqual({ kind: 'noniid', ratio: 1 });
    expect(parsePartitionSpec('noniid:.5')).toEqual({ kind: 'noniid', ratio: 0.5 });
    expect(parsePartitionSpec('site')).toEqual({ kind: 'site' });
    expect(parsePartitionSpec('site:4')).toEqual({ kind: 'site', maxClients: 4 });
  });

  it('explains what is wrong', () => {
    expect(() => parsePartitionSpec('noniid')).toThrow(/needs a majority ratio, e.g. "noniid:0.7"/);
    expect(() => parsePartitionSpec('noniid:1.5')).toThrow(/ratio must be a number in \(0, 1\], got "1.5"/);
    expect(() => parsePartitionSpec('noniid:0')).toThrow(/\(0, 1\]/);
    expect(() => parsePartitionSpec('noniid:abc')).toThrow(/got "abc"/);
    expect(() => parsePartitionSpec('noniid:1e-1')).toThrow(/got "1e-1"/);
    expect(() => parsePartitionSpec('iid:3')).toThrow(/takes no parameter/);
    expect(() => parsePartitionSpec('site:0')).toThrow(/positive integer, got "0"/);
    expect(() => parsePartitionSpec('dirichlet:0.5')).toThrow(/expected "iid", "noniid:<ratio>"/);
    expect(() => parsePartitionSpec('noniid:0.5:2')).toThrow(/too many ":"/);
  });
});
