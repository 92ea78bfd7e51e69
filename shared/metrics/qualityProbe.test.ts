import { afterEach, describe, expect, it } from 'vitest';
import { createTinyExtractor } from '../features/tiny.ts';
import { createGan, type Gan } from '../gan/gan.ts';
import { tinyConfig } from '../gan/testConfig.ts';
import { Rng } from '../rng.ts';
import { kid } from './kid.ts';
import { probeQuality, probeReference, probeSample, QualityTrack } from './qualityProbe.ts';

function randomTiles(n: number, size: number, seed: number, lo = 0, hi = 255): Uint8Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const t = new Uint8Array(size * size * 3);
    for (let i = 0; i < t.length; i++) t[i] = lo + Math.floor(rng.next() * (hi - lo + 1));
    return t;
  });
}

describe('quality probe', () => {
  let gan: Gan | undefined;
  afterEach(() => gan?.dispose());

  it('scores a fixed sample: the same generator gives the same KID, equal to KID computed on the same tiles by hand', async () => {
    gan = createGan(tinyConfig('acgan'));
    const ex = createTinyExtractor(16);
    const realTiles = randomTiles(24, 16, 3);
    const ref = await probeReference(ex, realTiles, 16);
    const a = await probeQuality(gan, ref, ex, { perClass: 6, seed: 9 });
    const b = await probeQuality(gan, ref, ex, { perClass: 6, seed: 9 });
    expect(a).toEqual(b);
    expect(a.synthetic).toBe(12); // 6 per class × 2 classes
    expect(a.reference).toBe(24);
    expect(a.features).toBe('tiny');
    // Independent path: the same sample through the extractor, KID with the probe's subset settings.
    const sample = await probeSample(gan, 6, 9);
    expect(sample).toHaveLength(12);
    const expected = kid(await ex.extract(sample, 16), await ex.extract(realTiles, 16), { subsets: 20, seed: 1 });
    expect(a.kid).toBeCloseTo(expected.mean, 10);
    expect(a.kidStd).toBeCloseTo(expected.std, 10);
    // Diversity: mean pairwise Euclidean distance of the sample's features over the reference's, by hand.
    const spread = (f: { rows: number; dim: number; data: ArrayLike<number> }) => {
      const d: number[] = [];
      for (let i = 0; i < f.rows; i++)
        for (let j = i + 1; j < f.rows; j++) d.push(Math.hypot(...Array.from({ length: f.dim }, (_, t) => f.data[i * f.dim + t] - f.data[j * f.dim + t])));
      return d.reduce((x, y) => x + y, 0) / d.length;
    };
    expect(a.diversity).toBeCloseTo(spread(await ex.extract(sample, 16)) / spread(await ex.extract(realTiles, 16)), 8);
    expect(a.diversity).toBeGreaterThan(0);
  });

  it('probes of another latent seed differ, and a reference made with another network is refused', async () => {
    gan = createGan(tinyConfig('cgan'));
    const ex = createTinyExtractor(16);
    const ref = await probeReference(ex, randomTiles(20, 16, 4), 16);
    const a = await probeQuality(gan, ref, ex, { perClass: 4, seed: 1 });
    const b = await probeQuality(gan, ref, ex, { perClass: 4, seed: 2 });
    expect(a.kid).not.toBe(b.kid);
    await expect(probeQuality(gan, { ...ref, extractor: 'mobilenet-v2' }, ex)).rejects.toThrow(/made with mobilenet-v2 features, not tiny/);
    await expect(probeQuality(gan, ref, ex, { perClass: 1 })).rejects.toThrow(/perClass must be an integer ≥ 2, got 1/);
    await expect(probeReference(ex, randomTiles(3, 16, 5), 16)).rejects.toThrow(/at least 4 reference tiles, got 3/);
  });
});

describe('QualityTrack', () => {
  it('keeps the best round and ignores non-finite figures', () => {
    const t = new QualityTrack(2, 0.1);
    expect(t.best).toBeNull();
    expect(t.add(2, 0.5)).toBe(true);
    expect(t.add(4, 0.3)).toBe(true);
    expect(t.add(6, NaN)).toBe(false);
    expect(t.add(8, 0.4)).toBe(false);
    expect(t.best).toEqual({ round: 4, kid: 0.3 });
  });

  it('flattens when the last `patience` probes improve the best by less than the relative threshold', () => {
    const t = new QualityTrack(2, 0.1);
    for (const [r, k] of [
      [1, 1.0],
      [2, 0.6],
    ] as const)
      t.add(r, k);
    expect(t.flattened).toBe(false); // not more points than patience yet
    t.add(3, 0.5);
    // best before the last 2 = 1.0; best of the last 2 = 0.5: improved by 0.5 ≥ 0.1 × 1.0
    expect(t.flattened).toBe(false);
    t.add(4, 0.58);
    // best before the last 2 = 0.6 (rounds 1–2); recent best 0.5: improvement 0.1 ≥ 0.06 → still improving
    expect(t.flattened).toBe(false);
    t.add(5, 0.47);
    // before: best of [1.0, 0.6, 0.5] = 0.5; recent best of [0.58, 0.47] = 0.47: 0.03 < 0.05 → flat
    expect(t.flattened).toBe(true);
  });

  it('handles the slightly negative KIDs of a good generator by the magnitude of the best', () => {
    const t = new QualityTrack(1, 0.5);
    t.add(1, -0.02);
    t.add(2, -0.025); // improvement 0.005 < 0.5 × 0.02
    expect(t.flattened).toBe(true);
    t.add(3, -0.05); // improvement 0.025 ≥ 0.5 × 0.025
    expect(t.flattened).toBe(false);
    expect(() => new QualityTrack(0)).toThrow(/patience must be a positive integer, got 0/);
    expect(() => new QualityTrack(2, 1)).toThrow(/minImprovement must be in \[0, 1\), got 1/);
    expect(() => new QualityTrack(2, 0.05, -1)).toThrow(/fromRound must be an integer ≥ 0, got -1/);
  });

  it('judges flatness only from fromRound on: an early low of a warming-up EMA does not end a falling curve', () => {
    // The curve of the 2026-12-03 CPU run (EMA 0.999, 25 steps a round, probes every 4 rounds) that the rule
    // without a warm-up stopped at round 32 while it was falling again: the best was round 8's early low.
    const curve = [0.0824, 0.0775, 0.0823, 0.1064, 0.1148, 0.1084, 0.1015, 0.0975];
    const plain = new QualityTrack(6, 0.05);
    const warm = new QualityTrack(6, 0.05, 120);
    curve.forEach((k, i) => {
      plain.add(4 * (i + 1), k);
      warm.add(4 * (i + 1), k);
    });
    // before: best of [0.0824, 0.0775] = 0.0775; recent best 0.0823: no improvement → flat.
    expect(plain.flattened).toBe(true);
    expect(warm.flattened).toBe(false);
    // The early low is still the best so far (it is what checkpoint-best holds until beaten).
    expect(warm.best).toEqual({ round: 8, kid: 0.0775 });

    // From fromRound on the rule is the usual one, on the judged probes only.
    const t = new QualityTrack(2, 0.05, 12);
    for (const [r, k] of [[4, 0.07], [8, 0.08], [12, 0.1], [16, 0.1]]) t.add(r, k);
    expect(t.flattened).toBe(false); // 2 judged probes: not more than the patience
    t.add(20, 0.09); // before 0.1, recent best 0.09: 0.01 ≥ 0.005
    expect(t.flattened).toBe(false);
    t.add(24, 0.0899);
    t.add(28, 0.0898); // before: best of [0.1, 0.1, 0.09] = 0.09; recent 0.0898: 0.0002 < 0.0045
    expect(t.flattened).toBe(true);
  });
});
