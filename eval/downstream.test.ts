import { describe, expect, it } from 'vitest';
import { featuresFromRows } from '../shared/metrics/features.ts';
import { Rng } from '../shared/rng.ts';
import { runLinearProbeDownstream } from './downstream.ts';

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
