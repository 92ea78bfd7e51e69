import { beforeAll, describe, expect, it } from 'vitest';
import { initNodeBackend } from '../node/nodeBackend.ts';
import { binaryMetrics } from '../shared/metrics/classification.ts';
import { featuresFromRows } from '../shared/metrics/features.ts';
import { Rng } from '../shared/rng.ts';
import { scoreTiles, trainTileClassifier } from './classifier/train.ts';
import { meanSd } from '../shared/metrics/summary.ts';
import { aggregateByPatient } from '../shared/metrics/patients.ts';
import { runCnnDownstream, runHospitalDownstream, runLinearProbeDownstream } from './downstream.ts';

/** `n` labelled tiles alternating two classes, each class bright in a different channel, with noise. */
function stripedTiles(size: number, rng: Rng) {
  return (n: number) => ({
    pixels: Array.from({ length: n }, (_, i) => Uint8Array.from({ length: size * size * 3 }, (_, j) => (j % 3 === i % 2 ? 190 : 70) + Math.floor(rng.next() * 50))),
    labels: Array.from({ length: n }, (_, i) => i % 2),
  });
}

describe('downstream small CNN', () => {
  beforeAll(async () => {
    await initNodeBackend();
  });

  it('keeps the real-only models\' scores of the test and the synthetic tiles, one entry per seed (class fidelity)', async () => {
    const size = 8;
    const tiles = stripedTiles(size, new Rng(11));
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

describe('per-hospital downstream: own tiles only vs own + synthetic', () => {
  beforeAll(async () => {
    await initNodeBackend();
  });

  it('trains each hospital on its own tiles, then with every synthetic tile; the mean over hospitals averages each seed first', async () => {
    const size = 8;
    const tiles = stripedTiles(size, new Rng(12));
    const real = tiles(14);
    const synthetic = tiles(6);
    const test = { ...tiles(10), patients: Array.from({ length: 10 }, (_, i) => `P${i % 4}`) };
    const hospitals = [
      { name: 'site-A', indices: [0, 1, 2, 3, 5] },
      { name: 'site-B', indices: [4, 6, 7, 8, 9, 10, 11, 12, 13] },
    ];
    const settings = { classes: 2, positive: 1, size, epochs: 1, batchSize: 4, learningRate: 5e-3, channels: 4, batchNorm: true };
    const seeds = [7, 8, 9];
    const r = await runHospitalDownstream(real, synthetic, test, hospitals, { ...settings, seeds });

    expect(r.hospitals.map((h) => [h.name, h.tiles, h.perClass])).toEqual([
      ['site-A', 5, [2, 3]],
      ['site-B', 9, [5, 4]],
    ]);
    expect(r.details[0].ownOnly.perSeed.map((p) => p.trainTiles)).toEqual([5, 5, 5]);
    expect(r.details[1].ownPlusSynthetic.perSeed.map((p) => p.trainTiles)).toEqual([15, 15, 15]);

    // Independently: site-A's own-only model with seed 8, and site-B's own + synthetic model with seed 9.
    const labels = test.labels.map((l) => l === 1);
    const pick = (idx: number[]) => ({ pixels: idx.map((i) => real.pixels[i]), labels: idx.map((i) => real.labels[i]) });
    const ownA = await trainTileClassifier(pick(hospitals[0].indices), { ...settings, seed: 8, augment: true });
    const scoresA = await scoreTiles(ownA, test.pixels, 1);
    ownA.dispose();
    expect(r.details[0].ownOnly.perSeed[1].tile.auroc).toBe(binaryMetrics(labels, scoresA).auroc);
    const patientsA = aggregateByPatient(test.patients, labels, scoresA);
    expect(r.details[0].ownOnly.perSeed[1].patient!.auroc).toBe(binaryMetrics(patientsA.labels, patientsA.scores).auroc);
    const b = pick(hospitals[1].indices);
    const plusB = await trainTileClassifier({ pixels: [...b.pixels, ...synthetic.pixels], labels: [...b.labels, ...synthetic.labels] }, { ...settings, seed: 9, augment: true });
    const scoresB = await scoreTiles(plusB, test.pixels, 1);
    plusB.dispose();
    expect(r.details[1].ownPlusSynthetic.perSeed[2].tile.balancedAccuracy).toBe(binaryMetrics(labels, scoresB).balancedAccuracy);

    // One hospital's summary: mean ± sd over seeds; its gain: the difference of means against the larger sd.
    const aurocs = (regime: 'ownOnly' | 'ownPlusSynthetic', h: number) => r.details[h][regime].perSeed.map((p) => p.tile.auroc);
    const own0 = meanSd(aurocs('ownOnly', 0));
    const plus0 = meanSd(aurocs('ownPlusSynthetic', 0));
    expect(r.hospitals[0].ownOnly.auroc.mean).toBeCloseTo(own0.mean, 12);
    expect(r.hospitals[0].gain.auroc!.figure).toBeCloseTo(plus0.mean - own0.mean, 12);
    expect(r.hospitals[0].gain.auroc!.threshold).toBeCloseTo(Math.max(own0.sd, plus0.sd), 12);
    expect(r.hospitals[0].gain.auroc!.helps).toBe(plus0.mean - own0.mean > Math.max(own0.sd, plus0.sd));

    // The mean over hospitals: per seed the average of the two hospitals, then mean ± sd over the seeds.
    const perSeedMean = (regime: 'ownOnly' | 'ownPlusSynthetic') => seeds.map((_, k) => (aurocs(regime, 0)[k] + aurocs(regime, 1)[k]) / 2);
    const ownMean = meanSd(perSeedMean('ownOnly'));
    const plusMean = meanSd(perSeedMean('ownPlusSynthetic'));
    expect(r.meanOverHospitals.ownOnly.auroc.mean).toBeCloseTo(ownMean.mean, 12);
    expect(r.meanOverHospitals.ownOnly.auroc.sd).toBeCloseTo(ownMean.sd, 12);
    expect(r.meanOverHospitals.gain.auroc!.figure).toBeCloseTo(plusMean.mean - ownMean.mean, 12);
    expect(r.meanOverHospitals.gain.auroc!.threshold).toBeCloseTo(Math.max(ownMean.sd, plusMean.sd), 12);
    expect(r.meanOverHospitals.gain.patientAuroc).toBeDefined();
    expect(r.meanOverHospitals.ownOnly.patientLevel).toBeDefined();
  });

  it('refuses a split with no hospital, and a hospital index outside the real tiles', async () => {
    const size = 8;
    const px = () => new Uint8Array(size * size * 3).fill(100);
    const real = { pixels: [px(), px()], labels: [0, 1] };
    const test = { pixels: [px(), px()], labels: [0, 1] };
    const settings = { classes: 2, positive: 0, size, epochs: 1, batchSize: 2, learningRate: 5e-3, channels: 2, batchNorm: true, seeds: [1] };
    await expect(runHospitalDownstream(real, real, test, [], settings)).rejects.toThrow('per-hospital classifiers: the split has no hospital');
    await expect(runHospitalDownstream(real, real, test, [{ name: 'h', indices: [0, 2] }], settings)).rejects.toThrow('real tile index 2 is out of range (0–1)');
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
