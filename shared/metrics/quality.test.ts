import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.ts';
import { features, type Features } from './features.ts';
import { computeQuality } from './quality.ts';

function blobs(n: number, d: number, centres: number[], rng: Rng, spread = 1): { f: Features; labels: number[] } {
  const data = new Float64Array(n * d);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % centres.length;
    labels.push(c);
    for (let j = 0; j < d; j++) data[i * d + j] = centres[c] + spread * rng.normal();
  }
  return { f: features(data, n, d), labels };
}

describe('computeQuality (the isomorphic entry point of the Quality panel)', () => {
  it('flags a memorizing, mode-collapsed generator and passes an honest one', () => {
    const rng = new Rng(4);
    const real = blobs(80, 6, [-2, 2], rng);
    const test = blobs(40, 6, [-2, 2], rng);
    const honest = blobs(80, 6, [-2, 2], rng);
    // Copies of 4 training rows (tiny noise), so memorized and collapsed
    const copies = features(
      Float64Array.from({ length: 80 * 6 }, (_, k) => real.f.data[(Math.floor(k / 6) % 4) * 6 + (k % 6)] + 1e-3 * rng.normal()),
      80,
      6,
    );
    const copyLabels = Array.from({ length: 80 }, (_, i) => real.labels[i % 4]);
    const classes = ['MSIH', 'nonMSIH'];
    const good = computeQuality({ real: real.f, realLabels: real.labels, synthetic: honest.f, syntheticLabels: honest.labels, classes, control: test.f, kid: { subsets: 10 } });
    const bad = computeQuality({ real: real.f, realLabels: real.labels, synthetic: copies, syntheticLabels: copyLabels, classes, control: test.f, kid: { subsets: 10 } });
    expect(good.fid.fid).toBeLessThan(bad.fid.fid);
    expect(good.kid.mean).toBeLessThan(bad.kid.mean);
    // Memorization: the copies sit ~0 from a training tile; honest samples about as far as real test tiles.
    expect(bad.memorization.syntheticToTrain.median).toBeLessThan(0.05);
    expect(good.memorization.syntheticToTrain.median).toBeGreaterThan(0.5 * good.memorization.testToTrain!.median);
    expect(bad.memorization.closest).toHaveLength(8);
    expect(bad.memorization.closest[0].distance).toBeLessThan(0.01);
    expect(bad.memorization.syntheticDistances).toHaveLength(80);
    // Mode collapse: synthetic diversity far below real within each class.
    for (const c of classes) {
      expect(bad.diversity[c].synthetic!).toBeLessThan(0.5 * bad.diversity[c].real!);
      expect(good.diversity[c].synthetic!).toBeGreaterThan(0.8 * good.diversity[c].real!);
    }
  });

  it('checks label counts against feature rows', () => {
    const rng = new Rng(1);
    const a = blobs(10, 3, [0], rng);
    expect(() => computeQuality({ real: a.f, realLabels: [0], synthetic: a.f, syntheticLabels: a.labels, classes: ['x'] })).toThrow(/1 real labels for 10 real feature rows/);
  });
});
