import { describe, expect, it } from 'vitest';
import { decodeWeights } from '../shared/codec/weightsCodec.ts';
import { createGan } from '../shared/gan/gan.ts';
import { createTinyExtractor } from '../shared/features/tiny.ts';
import { tinyConfig } from '../shared/gan/testConfig.ts';
import type { RoundConfig } from '../shared/protocol/messages.ts';
import { Rng } from '../shared/rng.ts';
import { isBatchNormWeight, type WeightSet } from '../shared/weights.ts';
import { LocalModel, type TrainingProgress } from './localModel.ts';
import { StoredLocalWeights } from './localWeights.ts';
import type { StoredModel, TileRecord } from './tileStore.ts';

/**
 * The browser hospital's TrainFn (client/localModel.ts) on tfjs's CPU backend, with an in-memory tile
 * store in place of IndexedDB.
 */

const MODEL = tinyConfig('acgan', { batchSize: 4, seed: 42 });

function memoryStore(tiles: TileRecord[]) {
  const models = new Map<string, StoredModel>();
  return {
    models,
    loadTiles: async (labels: readonly string[], size: number) => tiles.filter((t) => labels.includes(t.label) && t.size === size),
    getModel: async (which: 'global' | 'local') => models.get(which),
    putModel: async (which: 'global' | 'local', m: StoredModel) => void models.set(which, m),
  };
}

function tileRecords(n: number): TileRecord[] {
  const rng = new Rng(3);
  return Array.from({ length: n }, (_, i) => ({
    hash: `h${i}`,
    label: MODEL.classes[i % 2],
    name: `tile-${i}.png`,
    size: 16,
    pixels: Uint8Array.from({ length: 16 * 16 * 3 }, () => rng.int(256)),
    addedAt: 0,
  }));
}

const TILES = tileRecords(10);
const gan = createGan(MODEL);
const GLOBAL: WeightSet = gan.getWeights();
gan.dispose();

function roundConfig(over: Partial<RoundConfig> = {}): RoundConfig {
  return {
    round: 1,
    attempt: 1,
    rounds: 3,
    ganType: MODEL.gan,
    localEpochs: 1,
    learningRate: { generator: 2e-4, discriminator: 2e-4 },
    imageSize: 16,
    batchNorm: 'average',
    examples: { min: 1, max: 1000 },
    deadlineSeconds: 60,
    model: MODEL as unknown as Record<string, unknown>,
    ...over,
  };
}

/** A browser hospital with the server-given name `hospital` (undefined: not welcomed yet). */
function browserHospital(hospital: string | undefined) {
  const store = memoryStore(TILES);
  const progress: TrainingProgress[] = [];
  const fractions: number[] = [];
  const losses: number[][] = [];
  const model = new LocalModel({
    store,
    localWeights: new StoredLocalWeights(store),
    hospital: () => hospital,
    events: { onTrainingProgress: (p) => progress.push(p), onLoss: (round, x, d, g) => losses.push([round, x, d, g]) },
  });
  const train = (rc: RoundConfig = roundConfig()) => model.train(GLOBAL, rc, (f) => fractions.push(f), new AbortController().signal);
  return { model, store, train, progress, fractions, losses };
}

const identical = (a: WeightSet, b: WeightSet) => a.tensors.every((t, i) => t.data.every((v, j) => v === b.tensors[i].data[j]));

describe('browser hospitals (LocalModel over the shared hospital round)', () => {
  it('two hospitals with the same tiles, global weights and round config draw different noise; the same hospital twice trains identically', async () => {
    const a = await browserHospital('hospital-a').train();
    const b = await browserHospital('hospital-b').train();
    const again = await browserHospital('hospital-a').train();
    expect(identical(a.weights, again.weights)).toBe(true);
    expect([a.dLoss, a.gLoss]).toEqual([again.dLoss, again.gLoss]);
    // Different latents, fake labels, dropout masks and shuffles: every generator tensor ends elsewhere.
    const differ = a.weights.tensors.filter((t, i) => t.name.startsWith('g/') && !isBatchNormWeight(t.name) && t.data.some((v, j) => v !== b.weights.tensors[i].data[j]));
    expect(differ.map((t) => t.name)).toEqual(a.weights.tensors.filter((t) => t.name.startsWith('g/') && !isBatchNormWeight(t.name)).map((t) => t.name));
    expect(a.dLoss).not.toBe(b.dLoss);
  });

  it('reports progress as the device finishes steps, live losses, and the example count', async () => {
    const h = browserHospital('hospital-a');
    const r = await h.train(roundConfig({ localEpochs: 2, round: 2, attempt: 3 }));
    expect(r.examples).toBe(10);
    // 10 tiles in batches of 4: 2 steps per epoch, 4 in all; one report before the first step.
    expect(h.progress.map((p) => [p.epoch, p.step, p.fraction])).toEqual([
      [0, 0, 0],
      [0, 1, 0.25],
      [0, 2, 0.5],
      [1, 1, 0.75],
      [1, 2, 1],
    ]);
    expect(h.progress.every((p) => p.round === 2 && p.attempt === 3 && p.epochs === 2 && p.stepsPerEpoch === 2)).toBe(true);
    expect(h.fractions).toEqual([0, 0.25, 0.5, 0.75, 1]);
    // The last step's losses always reach the chart, at x = round − 1 + 1.
    expect(h.losses.at(-1)!.slice(0, 2)).toEqual([2, 2]);
  });

  it('keeps its own weights in the store; under FedBN the upload carries the global batch norm', async () => {
    const h = browserHospital('hospital-a');
    const r = await h.train(roundConfig({ batchNorm: 'local' }));
    const stored = h.store.models.get('local')!;
    expect(stored.round).toBe(1);
    const local = decodeWeights(stored.bytes).weights;
    const bn = GLOBAL.tensors.filter((t) => isBatchNormWeight(t.name));
    for (const t of bn) expect(Array.from(r.weights.tensors.find((x) => x.name === t.name)!.data)).toEqual(Array.from(t.data));
    expect(bn.some((t) => local.tensors.find((x) => x.name === t.name)!.data.some((v, j) => v !== t.data[j]))).toBe(true);
  });

  it('declines a round before it knows its name, and when it has too few tiles', async () => {
    await expect(browserHospital(undefined).train()).rejects.toThrow(/name is not known yet/);
    await expect(browserHospital('hospital-a').train(roundConfig({ examples: { min: 11, max: 100 } }))).rejects.toThrow(/has 10 tiles for the round; the federation asks for at least 11/);
  });
});

describe('browser hospital: the quality probe a round asks for', () => {
  it('reports the probe of the received model with its update (and to the page), only on rounds that ask for one', async () => {
    const store = memoryStore(TILES);
    const probes: { round: number; quality?: unknown; error?: string }[] = [];
    const loads: string[] = [];
    const model = new LocalModel({
      store,
      localWeights: new StoredLocalWeights(store),
      hospital: () => 'hospital-a',
      events: { onTrainingProgress: () => {}, onLoss: () => {}, onProbe: (p) => probes.push(p) },
      probeFeatures: (name) => (loads.push(name), createTinyExtractor(64)),
    });
    const run = (rc: RoundConfig) => model.train(GLOBAL, rc, () => {}, new AbortController().signal);
    const plain = await run(roundConfig({ round: 2 }));
    expect(plain.quality).toBeUndefined();
    const asked = await run(roundConfig({ round: 3, quality: { features: 'tiny', perClass: 4, seed: 1, subsets: 5 } }));
    expect(asked.quality).toMatchObject({ n: 8, features: 'tiny' });
    expect(Number.isFinite(asked.quality!.kid)).toBe(true);
    expect(probes).toEqual([{ round: 3, quality: asked.quality }]);
    expect(loads).toEqual(['tiny']);
    // A network the browser cannot load: the update goes without a probe, the page is told why.
    const other = await run(roundConfig({ round: 4, quality: { features: 'inception-v9', perClass: 4, seed: 1, subsets: 5 } }));
    expect(other.quality).toBeUndefined();
    expect(probes.at(-1)).toEqual({ round: 4, error: expect.stringMatching(/inception-v9/) });
    await model.reset();
  });
});
