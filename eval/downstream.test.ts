import { beforeAll, describe, expect, it } from 'vitest';
import { initNodeBackend } from '../node/nodeBackend.ts';
import { binaryMetrics } from '../shared/metrics/classification.ts';
import { featuresFromRows } from '../shared/metrics/features.ts';
import { Rng } from '../shared/rng.ts';
import { scoreTiles, trainTileClassifier } from './classifier/train.ts';
import { runCnnDownstream, runLinearProbeDownstream } from './downstream.ts';

describe('downstream small CNN', () => {
  beforeAll(async () => {
    await initNodeBackend();
  });

  it('keeps the real-only models\' scores of the test and the synthetic tiles, one entry per seed (class fidelity)', async () => {
    const size = 8;
    const rng = new Rng(11);
    const tiles = (n: number) => ({
      pixels: Array.from({ length: n }, (_, i) => Uint8Array.from({ length: size * size * 3 }, (_, j) => (j % 3 === i % 2 ? 190 : 70) + Math.floor(rng.next() * 50))),
      labels: Array.from({ length: n }, (_, i) => i % 2),
    });
    const real = tiles(12);
    const synthetic = tiles(6);
    const test = tiles(8);
    const settings = { classes: 2, positive: 0, size, epochs: 1, batchSize: 6, learningRate: 5e-3, channels: 4, batchNorm: true };
    const r = await runCnnDownstream(real, synthetic, test, { ...settings, seeds: [3, 4] });
    expect(r.realOnlyScores.map((s) => s.seed)).toEqual([3, 4]);
    for (const [k, seed] of [3, 4].entries()) {
      // Independently: train the real-only model with this seed and score both sets.
      const model = await trainTileClassifier(real, { ...settings, seed, augment: true });
      const expectedSynthetic = await scoreTiles(model, synthetic.pixels, 0);
      const expectedTest = await scoreTiles(model, test.pixels, 0);
      model.dispose();
      expect(Array.from(r.realOnlyScores[k].synthetic)).toEqual(Array.from(expectedSynthetic));
      expect(Array.from(r.realOnlyScores[k].test)).toEqual(Array.from(expectedTest));
      // The same scores gave the real-only tile metrics.
      expect(r.details.realOnly.perSeed[k].tile.auroc).toBe(binaryMetrics(test.labels.map((l) => l === 0), expectedTest).auroc);
    }
  });
});

describe('downstream linear probe', () => {
  it('reports each regime with mean ± sd, tile and patient level; synthetic features that carry no signal do not help', () => {
    const rng = new Rng(4);
    // Real features: class 0 shifted on dim 0. Synthetic: pure noise with random labels.
    const set = (n: number, signal: number) => {
      const labels = Array.from({ length: n }, (_, i) => i % 2);
      return { features: featuresFromRows(labels.map((l) => [signal * (l === 0 ? 1 : -1) + rng.normal(), rng.normal()])), labels };
    };
    const real = set(60, 1.5);
    const synthetic = set(60, 0);
    const test = { ...set(40, 1.5), patients: Array.from({ length: 40 }, (_, i) => `P${i % 10}`) };
    const r = runLinearProbeDownstream(real, synthetic, test, { positive: 0, seeds: [1, 2, 3] });
    expect(Object.keys(r.results)).toEqual(['realOnly', 'realPlusSynthetic', 'syntheticOnly']);
    expect(Object.keys(r.results.realOnly.auroc)).toEqual(['mean', 'sd']);
    expect(r.results.realOnly.auroc.mean).toBeGreaterThan(0.85);
    expect(r.results.syntheticOnly.auroc.mean).toBeLessThan(r.results.realOnly.auroc.mean - 0.2);
    expect(r.results.realOnly.patientLevel).toBeDefined();
    expect(r.details.realPlusSynthetic.perSeed.map((p) => p.trainTiles)).toEqual([120, 120, 120]);
  });

  it('runs only the regimes asked for, with the same numbers as a full run; real only needs no synthetic features', () => {
    const rng = new Rng(5);
    const set = (n: number, signal: number) => {
      const labels = Array.from({ length: n }, (_, i) => i % 2);
      return { features: featuresFromRows(labels.map((l) => [signal * (l === 0 ? 1 : -1) + rng.normal(), rng.normal()])), labels };
    };
    const real = set(40, 1.5);
    const synthetic = set(30, 1);
    const test = set(20, 1.5);
    const full = runLinearProbeDownstream(real, synthetic, test, { positive: 0, seeds: [1, 2] });
    const base = runLinearProbeDownstream(real, null, test, { positive: 0, seeds: [1, 2], regimes: ['realOnly'] });
    expect(Object.keys(base.results)).toEqual(['realOnly']);
    expect(base.results.realOnly).toEqual(full.results.realOnly);
    const pair = runLinearProbeDownstream(real, synthetic, test, { positive: 0, seeds: [1, 2], regimes: ['realPlusSynthetic', 'syntheticOnly'] });
    expect(Object.keys(pair.results)).toEqual(['realPlusSynthetic', 'syntheticOnly']);
    expect(pair.results.syntheticOnly).toEqual(full.results.syntheticOnly);
    expect(pair.details.realPlusSynthetic.perSeed.map((p) => p.trainTiles)).toEqual([70, 70]);
    expect(() => runLinearProbeDownstream(real, null, test, { positive: 0, seeds: [1], regimes: ['syntheticOnly'] })).toThrow(
      /regime syntheticOnly needs synthetic features, none given/,
    );
  });
});
