import { describe, expect, it } from 'vitest';
import { decodeWeights } from '../shared/codec/weightsCodec.ts';
import { createGan } from '../shared/gan/gan.ts';
import { createTinyExtractor } from '../shared/features/tiny.ts';
import { tinyConfig } from '../shared/gan/testConfig.ts';
import type { RoundConfig } from '../shared/protocol/messages.ts';
import { Rng } from '../shared/rng.ts';
import { isBatchNormWeight, type WeightSet } from '../shared/weights.ts';
import { LocalModel, type MeasuredSpeed, type TrainingProgress } from './localModel.ts';
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
    localSteps: 2,
    learningRate: { generator: 2e-4, discriminator: 2e-4 },
    imageSize: 16,
    batchNorm: 'average',
    examples: { min: 1, max: 1000 },
    deadlineSeconds: 60,
    model: MODEL as unknown as Record<string, unknown>,
    ...over,
  };
}

/** A clock that moves `stepMs` each time it is read (the model reads it once per finished step). */
const tickingClock = (stepMs: number) => {
  let t = 0;
  return () => (t += stepMs);
};

/** A browser hospital with the server-given name `hospital` (undefined: not welcomed yet). */
function browserHospital(hospital: string | undefined, now?: () => number) {
  const store = memoryStore(TILES);
  const progress: TrainingProgress[] = [];
  const fractions: number[] = [];
  const messages: string[] = [];
  const losses: number[][] = [];
  const speeds: MeasuredSpeed[] = [];
  const model = new LocalModel({
    store,
    localWeights: new StoredLocalWeights(store),
    hospital: () => hospital,
    events: { onTrainingProgress: (p) => progress.push(p), onLoss: (round, x, d, g) => losses.push([round, x, d, g]), onSpeed: (s) => speeds.push(s) },
    ...(now ? { now } : {}),
  });
  const train = (rc: RoundConfig = roundConfig()) =>
    model.train(
      GLOBAL,
      rc,
      (f, m) => {
        fractions.push(f);
        if (m) messages.push(m);
      },
      new AbortController().signal,
    );
  return { model, store, train, progress, fractions, messages, losses, speeds };
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

  it('reports progress in steps as the device finishes them, with the round speed after the warm-up, live losses, and the example count', async () => {
    const h = browserHospital('hospital-a', tickingClock(250));
    const r = await h.train(roundConfig({ localSteps: 5, round: 2, attempt: 3 }));
    expect(r.examples).toBe(10);
    // 5 steps (10 tiles in batches of 4: 2 a pass, 3 passes); one report before the first step. The clock
    // moves 250 ms a reading; steps 1 and 2 are the warm-up, so the speed is timed from step 2 on.
    expect(h.progress.map((p) => [p.done, p.total, p.fraction, p.speed ?? null])).toEqual([
      [0, 5, 0, null],
      [1, 5, 0.2, null],
      [2, 5, 0.4, null],
      [3, 5, 0.6, { secondsPerStep: 0.25, steps: 1 }],
      [4, 5, 0.8, { secondsPerStep: 0.25, steps: 2 }],
      [5, 5, 1, { secondsPerStep: 0.25, steps: 3 }],
    ]);
    expect(h.progress.every((p) => p.round === 2 && p.attempt === 3)).toBe(true);
    expect(h.fractions).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(h.messages.at(-1)).toBe('step 5/5');
    // The round's speed, for the estimates of the rounds to come.
    expect(h.speeds).toEqual([{ secondsPerStep: 0.25, steps: 3, source: 'round', round: 2, fingerprint: GLOBAL.fingerprint, at: expect.any(Number) }]);
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

  it('measures its speed before training: warm-up steps, then timed steps up to the most a check takes; nothing kept', async () => {
    const h = browserHospital('hospital-a', tickingClock(100));
    const seen: number[][] = [];
    const speed = await h.model.measureSpeed(MODEL as unknown as Record<string, unknown>, (done, total) => seen.push([done, total]));
    // 0.1 s a step is fast: the check stops after SPEED_CHECK.maxSteps = 10 timed steps (12 with the warm-up).
    expect(speed).toEqual({ secondsPerStep: 0.1, steps: 10, source: 'check', fingerprint: GLOBAL.fingerprint, at: expect.any(Number) });
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => [i + 1, 12]));
    expect(h.speeds).toEqual([speed]);
    expect(h.store.models.size).toBe(0);
    expect(h.model.measuring).toBe(false);
  });

  it('stops the speed check once it has 3 timed steps and 3 seconds', async () => {
    const h = browserHospital('hospital-a', tickingClock(1500));
    const seen: number[] = [];
    const speed = await h.model.measureSpeed(MODEL as unknown as Record<string, unknown>, (done) => seen.push(done));
    expect(speed?.secondsPerStep).toBe(1.5);
    // Done at step 5 (3 timed steps, 4.5 s); the steps already dispatched then (at most 2) still finish.
    expect(speed!.steps).toBeGreaterThanOrEqual(3);
    expect(speed!.steps).toBeLessThanOrEqual(5);
    expect(seen.length).toBeLessThan(12);
  });

  it('a round stops a speed check in progress and trains as it would have without it', async () => {
    const h = browserHospital('hospital-a', tickingClock(10));
    const checked: number[] = [];
    const check = h.model.measureSpeed(MODEL as unknown as Record<string, unknown>, (done) => checked.push(done));
    expect(h.model.measuring).toBe(true);
    expect(h.model.measureSpeed(MODEL as unknown as Record<string, unknown>)).toBe(check); // one check at a time
    const r = await h.train();
    await check;
    expect(h.model.measuring).toBe(false);
    expect(checked.length).toBeLessThan(3); // stopped between its first steps, long before its 12
    const alone = await browserHospital('hospital-a').train();
    expect(identical(r.weights, alone.weights)).toBe(true);
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
