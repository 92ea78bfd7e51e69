import { afterAll, describe, expect, it } from 'vitest';
import { parseFedConfig } from '../config/fedConfig.ts';
import { datasetFromTiles } from '../data/dataset.ts';
import { createTinyExtractor } from '../features/tiny.ts';
import type { FeatureExtractor } from '../features/types.ts';
import { createGan } from '../gan/gan.ts';
import { tinyConfig } from '../gan/testConfig.ts';
import { probeQuality, probeReference } from '../metrics/qualityProbe.ts';
import { probeReportSchema, type RoundConfig } from '../protocol/messages.ts';
import { Rng } from '../rng.ts';
import type { WeightSet } from '../weights.ts';
import { applyGlobalWeights } from './batchNormPolicy.ts';
import { datasetTiles, referenceIndices } from './hospitalProbe.ts';
import { HospitalTraining, memoryLocalWeights } from './hospitalTraining.ts';
import { roundConfig } from './strategy.ts';

const MODEL = tinyConfig('acgan', { batchSize: 4, seed: 42 });
const QUALITY = { everyRounds: 2, features: 'tiny' as const, perClass: 4, seed: 11, subsets: 5 };
const FED = parseFedConfig({ rounds: 6, model: MODEL, quality: QUALITY });
/** The round config the server sends in `round`, with 2 local steps (fast). */
const rc = (round: number, over: Partial<RoundConfig> = {}): RoundConfig => ({ ...roundConfig(FED, round, 1), localSteps: 2, ...over });

/** 14 tiles: 5 of class 0, 9 of class 1, random pixels. */
const rng = new Rng(3);
const TILES = Array.from({ length: 14 }, (_, i) => ({ pixels: Uint8Array.from({ length: 16 * 16 * 3 }, () => rng.int(256)), label: i < 5 ? 0 : 1 }));
const data = datasetFromTiles(TILES, 16, 2);
afterAll(() => data.dispose());

function initial(): WeightSet {
  const g = createGan(MODEL);
  const w = g.getWeights();
  g.dispose();
  return w;
}
const GLOBAL = initial();

/** The tiny extractor, counting its calls and the tiles it saw. */
function countingLoader() {
  const calls: { features: string }[] = [];
  const extracts: number[] = [];
  const loader = (features: string): FeatureExtractor => {
    calls.push({ features });
    const ex = createTinyExtractor(64);
    return { ...ex, extract: (tiles, size, o) => (extracts.push(tiles.length), ex.extract(tiles, size, o)) };
  };
  return { loader, calls, extracts };
}

/** The probe computed independently of HospitalProbe: the model `weights`, the reference tiles picked by hand. */
async function expectedProbe(weights: WeightSet) {
  const gan = createGan(MODEL);
  try {
    gan.setWeights(weights);
    const ex = createTinyExtractor(64);
    // Per class, the first perClass tiles of a seeded shuffle: class 0 has 5 tiles, class 1 has 9; 4 + 4 = 8.
    const idx = referenceIndices(TILES.map((t) => t.label), 2, QUALITY.perClass, QUALITY.seed);
    const ref = await probeReference(ex, idx.map((i) => TILES[i].pixels), 16);
    const p = await probeQuality(gan, ref, ex, { perClass: QUALITY.perClass, seed: QUALITY.seed, subsets: QUALITY.subsets });
    return { kid: p.kid, kidStd: p.kidStd, n: 8, features: 'tiny' };
  } finally {
    gan.dispose();
  }
}

describe('referenceIndices: the fixed reference subset of a hospital', () => {
  it('takes min(perClass, tiles of the class) per class, from a seeded shuffle, sorted; the same for the same seed', () => {
    const labels = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1];
    const a = referenceIndices(labels, 2, 4, 7);
    expect(a).toEqual([...a].sort((x, y) => x - y));
    expect(a.filter((i) => labels[i] === 0)).toEqual([0, 3, 7]); // all 3 of class 0
    expect(a.filter((i) => labels[i] === 1)).toHaveLength(4);
    expect(new Set(a).size).toBe(a.length);
    expect(referenceIndices(labels, 2, 4, 7)).toEqual(a);
    const others = [1, 2, 3, 4, 5, 6].map((s) => referenceIndices(labels, 2, 4, s).join());
    expect(others.some((o) => o !== a.join())).toBe(true);
    expect(() => referenceIndices([0, 2], 2, 4, 1)).toThrow(/tile 1 has label 2, expected 0..1/);
    expect(() => referenceIndices(labels, 2, 0, 1)).toThrow(/perClass must be a positive integer, got 0/);
  });

  it('datasetTiles returns the tiles as they were imported (bytes → [-1, 1] → bytes)', async () => {
    const got = await datasetTiles(data, [1, 6, 13]);
    expect(got.map((t) => [...t])).toEqual([1, 6, 13].map((i) => [...TILES[i].pixels]));
  });
});

describe('HospitalTraining: the quality probe a round asks for', () => {
  it('only rounds after every N-th model carry a quality request (configureRound), and only those are probed', async () => {
    expect([1, 2, 3, 4, 5, 6].map((r) => roundConfig(FED, r, 1).quality !== undefined)).toEqual([false, false, true, false, true, false]);
    const { loader, calls } = countingLoader();
    const h = new HospitalTraining({ hospital: 'h1', data, probeFeatures: loader });
    const reports = [];
    for (const round of [1, 2, 3, 4, 5]) reports.push((await h.train(GLOBAL, rc(round))).quality);
    expect(reports.map((q) => q !== undefined)).toEqual([false, false, true, false, true]);
    expect(calls).toEqual([{ features: 'tiny' }]); // loaded once
    h.dispose();
  });

  it('scores the model it RECEIVED, deterministically, and probing leaves the round\'s training unchanged', async () => {
    const { loader, extracts } = countingLoader();
    const probing = new HospitalTraining({ hospital: 'h1', data, probeFeatures: loader });
    const plain = new HospitalTraining({ hospital: 'h1', data });
    const a = await probing.train(GLOBAL, rc(3));
    const b = await plain.train(GLOBAL, rc(3));
    expect(b.quality).toBeUndefined();
    const expected = await expectedProbe(GLOBAL);
    expect(a.quality!.kid).toBeCloseTo(expected.kid, 12);
    expect(a.quality!.kidStd).toBeCloseTo(expected.kidStd, 12);
    expect(a.quality).toMatchObject({ n: 8, features: 'tiny' });
    expect(probeReportSchema.parse(a.quality)).toEqual(a.quality);
    // The same hospital, the same received model: the same figure (the reference is computed once).
    const again = await probing.train(GLOBAL, rc(5));
    expect(again.quality).toEqual(a.quality);
    expect(extracts).toEqual([8, 8, 8]); // reference (8 tiles) once, then 4 × 2 synthetic tiles per probe
    // Training is the same with and without the probe.
    expect(a.weights.tensors.map((t) => [...t.data])).toEqual(b.weights.tensors.map((t) => [...t.data]));
    expect([a.dLoss, a.gLoss]).toEqual([b.dLoss, b.gLoss]);
    // A trained model scores differently from the one received.
    const trained = await probing.train(a.weights, rc(5));
    expect(trained.quality!.kid).not.toBe(a.quality!.kid);
    probing.dispose();
    plain.dispose();
  });

  it('under FedBN probes the personalised model: the received global with this hospital\'s own batch norm', async () => {
    const local = memoryLocalWeights();
    const h = new HospitalTraining({ hospital: 'h1', data, localWeights: local, probeFeatures: countingLoader().loader });
    // Round 2 trains (no probe) and keeps this hospital's batch norm; round 3 probes what it receives.
    const r2 = await h.train(GLOBAL, rc(2, { batchNorm: 'local' }));
    expect(r2.quality).toBeUndefined();
    const own = local.weights!;
    const r3 = await h.train(r2.weights, rc(3, { batchNorm: 'local' }));
    const personalised = await expectedProbe(applyGlobalWeights(r2.weights, own, 'local'));
    const raw = await expectedProbe(r2.weights);
    expect(r3.quality!.kid).toBeCloseTo(personalised.kid, 12);
    expect(Math.abs(r3.quality!.kid - raw.kid)).toBeGreaterThan(1e-9);
    h.dispose();
  });

  it('a probe that fails leaves the round without quality, reported through onProbeError; a failed load is retried next round', async () => {
    const errors: string[] = [];
    let loads = 0;
    const h = new HospitalTraining({
      hospital: 'h1',
      data,
      probeFeatures: (name) => {
        loads++;
        throw new Error(`no ${name} network here`);
      },
      onProbeError: (e, round) => errors.push(`${round}: ${e.message}`),
    });
    const r = await h.train(GLOBAL, rc(3));
    expect(r.quality).toBeUndefined();
    expect(r.steps).toBe(2);
    await h.train(GLOBAL, rc(5));
    expect(errors).toEqual(['3: no tiny network here', '5: no tiny network here']);
    expect(loads).toBe(2);
    h.dispose();

    // Fewer than 4 reference tiles: no probe.
    const few = datasetFromTiles(TILES.slice(4, 7), 16, 2); // 1 of class 0, 2 of class 1
    const msgs: string[] = [];
    const h2 = new HospitalTraining({ hospital: 'h2', data: few, probeFeatures: countingLoader().loader, onProbeError: (e) => msgs.push(e.message) });
    expect((await h2.train(GLOBAL, rc(3))).quality).toBeUndefined();
    expect(msgs).toEqual(["the quality probe needs at least 4 of this hospital's tiles, it has 3"]);
    h2.dispose();
    few.dispose();
  });
});
