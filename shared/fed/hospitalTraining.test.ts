import { afterAll, describe, expect, it } from 'vitest';
import type { GanConfig } from '../config/ganConfig.ts';
import { datasetFromTiles } from '../data/dataset.ts';
import { createGan } from '../gan/gan.ts';
import type { LocalPlan, LocalProgress } from '../gan/localTraining.ts';
import { tinyConfig } from '../gan/testConfig.ts';
import { randomOps, setRandomOps, tfjsRandomOps, type RandomOps } from '../nn/random.ts';
import type { RoundConfig } from '../protocol/messages.ts';
import { Rng } from '../rng.ts';
import { isBatchNormWeight, type WeightSet } from '../weights.ts';
import { examplesForRound, ganConfigForRound, HospitalTraining, memoryLocalWeights } from './hospitalTraining.ts';
import { hospitalSeed, roundSeed } from './seeds.ts';

const MODEL = tinyConfig('acgan', { batchSize: 4, seed: 42 });
const TILES = 10;

function tiles(n = TILES, seed = 1) {
  const rng = new Rng(seed);
  return datasetFromTiles(
    Array.from({ length: n }, (_, i) => ({ pixels: Uint8Array.from({ length: 16 * 16 * 3 }, () => rng.int(256)), label: i % 2 })),
    16,
    2,
  );
}
const data = tiles();
afterAll(() => data.dispose());

function initialWeights(model: GanConfig = MODEL): WeightSet {
  const gan = createGan(model);
  const w = gan.getWeights();
  gan.dispose();
  return w;
}
const GLOBAL = initialWeights();

/** What the server sends with a round (shared/protocol/messages.ts). */
function roundConfig(over: Partial<RoundConfig> = {}, model: GanConfig = MODEL): RoundConfig {
  return {
    round: 1,
    attempt: 1,
    rounds: 5,
    ganType: model.gan,
    localSteps: 2,
    learningRate: { generator: model.optimizerG.learningRate, discriminator: model.optimizerD.learningRate },
    imageSize: model.imageSize,
    batchNorm: 'average',
    examples: { min: 1, max: 1000 },
    deadlineSeconds: 60,
    model: model as unknown as Record<string, unknown>,
    ...over,
  };
}

const tensor = (w: WeightSet, name: string) => {
  const t = w.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  return Array.from(t.data);
};
const names = (w: WeightSet, keep: (name: string) => boolean) => w.tensors.map((t) => t.name).filter(keep);
const same = (a: WeightSet, b: WeightSet, name: string) => tensor(a, name).every((v, i) => v === tensor(b, name)[i]);

describe('HospitalTraining: one hospital round over (global weights, RoundConfig)', () => {
  it('trains localSteps steps with the seed of this hospital, round and attempt, reporting progress', async () => {
    const h = new HospitalTraining({ hospital: 'hospital-a', data });
    const progress: LocalProgress[] = [];
    let started: { plan: LocalPlan; seed: number } | undefined;
    const r = await h.train(GLOBAL, roundConfig({ round: 3, attempt: 2, localSteps: 4 }), { onStart: (plan, seed) => (started = { plan, seed }), onProgress: (p) => progress.push(p) });
    const seed = roundSeed(hospitalSeed(42, 'hospital-a'), 3, 2);
    expect(r.seed).toBe(seed);
    expect(started).toEqual({ plan: { examples: 10, batch: 4, stepsPerEpoch: 2, epochs: 2, totalSteps: 4 }, seed });
    expect(r.steps).toBe(4);
    expect([r.examples, r.tiles]).toEqual([10, 10]);
    expect(progress.map((p) => p.done)).toEqual([0, 1, 2, 2, 3, 4, 4]);
    expect(progress.at(-1)!.fraction).toBe(1);
    expect(Number.isFinite(r.dLoss) && Number.isFinite(r.gLoss)).toBe(true);
    expect(r.weights.fingerprint).toBe(GLOBAL.fingerprint);
    h.dispose();
  });

  it('trains exactly localSteps steps when the hospital has fewer tiles than a batch and the budget is more than one pass', async () => {
    const few = tiles(3, 7); // 3 tiles, batch 4: one step of all 3 tiles a pass
    const h = new HospitalTraining({ hospital: 'hospital-a', data: few });
    const progress: LocalProgress[] = [];
    let plan: LocalPlan | undefined;
    const r = await h.train(GLOBAL, roundConfig({ localSteps: 5 }), { onStart: (p) => (plan = p), onProgress: (p) => progress.push(p) });
    expect(plan).toEqual({ examples: 3, batch: 3, stepsPerEpoch: 1, epochs: 5, totalSteps: 5 });
    expect(r.steps).toBe(5);
    expect([r.examples, r.tiles]).toEqual([3, 3]);
    // After each step, and at the end of each one-step pass: the fraction reaches 1 exactly at step 5.
    expect(progress.map((p) => p.done)).toEqual([0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    expect(progress.map((p) => p.fraction)).toEqual([0, 0.2, 0.2, 0.4, 0.4, 0.6, 0.6, 0.8, 0.8, 1, 1]);
    expect(progress.at(-1)).toMatchObject({ epoch: 4, epochs: 5, step: 1, stepsPerEpoch: 1 });
    h.dispose();
    few.dispose();
  });

  it('trains the same localSteps whatever the number of tiles (the budget is steps, not passes)', async () => {
    const steps = async (n: number) => {
      const d = tiles(n, 3);
      const h = new HospitalTraining({ hospital: 'hospital-a', data: d });
      const r = await h.train(GLOBAL, roundConfig({ localSteps: 3 }));
      h.dispose();
      d.dispose();
      return r.steps;
    };
    expect([await steps(2), await steps(10), await steps(17)]).toEqual([3, 3, 3]);
  });

  it('rehearses a round to measure speed: the steps asked, nothing kept, and the next round as if it had not happened', async () => {
    const local = memoryLocalWeights();
    const h = new HospitalTraining({ hospital: 'hospital-a', data, localWeights: local });
    const done: number[] = [];
    let plan: LocalPlan | undefined;
    const r = await h.rehearse(MODEL as unknown as Record<string, unknown>, 3, { onStart: (p) => (plan = p), onStep: (d) => done.push(d) });
    expect(r.steps).toBe(3);
    expect(done).toEqual([1, 2, 3]);
    expect(plan).toMatchObject({ examples: 10, batch: 4, totalSteps: 3 });
    expect(local.weights).toBeUndefined();
    const built = h.model;
    const after = await h.train(GLOBAL, roundConfig({ batchNorm: 'local' }));
    expect(h.model).toBe(built); // the rehearsal built the round's model
    const fresh = new HospitalTraining({ hospital: 'hospital-a', data });
    const alone = await fresh.train(GLOBAL, roundConfig({ batchNorm: 'local' }));
    expect(after.weights.tensors.every((t, i) => t.data.every((v, j) => v === alone.weights.tensors[i].data[j]))).toBe(true);
    h.dispose();
    fresh.dispose();
  });

  it('stops a rehearsal between steps when its signal aborts, resolving with the steps done', async () => {
    const h = new HospitalTraining({ hospital: 'hospital-a', data });
    const abort = new AbortController();
    const r = await h.rehearse(MODEL as unknown as Record<string, unknown>, 50, { signal: abort.signal, onStep: (d) => d === 2 && abort.abort() });
    expect(r.steps).toBe(2);
    await expect(h.rehearse({ ...MODEL, imageSize: 32 } as unknown as Record<string, unknown>, 2)).rejects.toThrow("the model trains on 32 px tiles but this hospital's tiles are 16 px");
    h.dispose();
  });

  it('gives two hospitals different draws, and one hospital the same draws for the same round (deterministic)', async () => {
    const train = async (hospital: string, attempt = 1) => {
      const h = new HospitalTraining({ hospital, data });
      const r = await h.train(GLOBAL, roundConfig({ attempt }));
      h.dispose();
      return r.weights;
    };
    const a = await train('hospital-a');
    const b = await train('hospital-b');
    const a2 = await train('hospital-a');
    const aRetry = await train('hospital-a', 2);
    expect(a.tensors.every((t, i) => t.data.every((v, j) => v === a2.tensors[i].data[j]))).toBe(true);
    expect(same(a, b, 'g/dense/kernel')).toBe(false);
    expect(same(a, aRetry, 'g/dense/kernel')).toBe(false);
  });

  it("draws the models' dropout masks from the round's seed (the trainer's dropout stream)", async () => {
    const drawn: (number | undefined)[] = [];
    const recorder: RandomOps = { ...tfjsRandomOps, dropout: (x, rate, seed) => (drawn.push(seed), tfjsRandomOps.dropout(x, rate, seed)) };
    const dropoutSeeds = async (hospital: string) => {
      drawn.length = 0;
      setRandomOps(recorder);
      try {
        const h = new HospitalTraining({ hospital, data });
        await h.train(GLOBAL, roundConfig());
        h.dispose();
      } finally {
        setRandomOps(null);
      }
      expect(randomOps()).toBe(tfjsRandomOps);
      return [...drawn];
    };
    const a = await dropoutSeeds('hospital-a');
    expect(MODEL.discriminator.dropout).toBeGreaterThan(0);
    expect(a.length).toBeGreaterThan(0);
    // Each mask's seed is the next of the dropout stream of the round's seed (round 1, attempt 1).
    const stream = new Rng(roundSeed(hospitalSeed(42, 'hospital-a'), 1, 1)).fork('dropout');
    expect(a).toEqual(a.map(() => stream.nextUint32() >>> 1));
    expect(await dropoutSeeds('hospital-a')).toEqual(a);
    const b = await dropoutSeeds('hospital-b');
    expect(b).toHaveLength(a.length);
    expect(b.filter((s, i) => s === a[i])).toEqual([]);
  });

  it("trains with the round's learning rates: a rate of 0 leaves that network's trained tensors as they were", async () => {
    const movingStat = (n: string) => /moving/.test(n);
    const run = async (learningRate: RoundConfig['learningRate']) => {
      const h = new HospitalTraining({ hospital: 'hospital-a', data });
      const r = await h.train(GLOBAL, roundConfig({ learningRate }));
      expect(h.model!.cfg.optimizerG.learningRate).toBe(learningRate.generator);
      expect(h.model!.cfg.optimizerD.learningRate).toBe(learningRate.discriminator);
      h.dispose();
      return r.weights;
    };
    // The model config's own rates are 2e-4 for both: the round's rates must win.
    const gFrozen = await run({ generator: 0, discriminator: 2e-4 });
    for (const n of names(gFrozen, (n) => n.startsWith('g/') && !movingStat(n))) expect(same(gFrozen, GLOBAL, n), n).toBe(true);
    expect(names(gFrozen, (n) => n.startsWith('d/')).some((n) => !same(gFrozen, GLOBAL, n))).toBe(true);

    const dFrozen = await run({ generator: 2e-4, discriminator: 0 });
    for (const n of names(dFrozen, (n) => n.startsWith('d/'))) expect(same(dFrozen, GLOBAL, n), n).toBe(true);
    expect(names(dFrozen, (n) => n.startsWith('g/') && !movingStat(n)).some((n) => !same(dFrozen, GLOBAL, n))).toBe(true);
  });

  it('FedBN: the upload carries the global batch-norm values; the local ones stay in the local store and start the next round', async () => {
    const local = memoryLocalWeights();
    const h = new HospitalTraining({ hospital: 'hospital-a', data, localWeights: local });
    const bn = names(GLOBAL, isBatchNormWeight);
    expect(bn.length).toBeGreaterThan(0);

    const r1 = await h.train(GLOBAL, roundConfig({ batchNorm: 'local' }));
    for (const n of bn) expect(tensor(r1.weights, n)).toEqual(tensor(GLOBAL, n));
    // Training moved this hospital's batch-norm statistics; those stay here.
    const kept = local.weights!;
    expect(bn.some((n) => !same(kept, GLOBAL, n))).toBe(true);
    for (const n of names(GLOBAL, (n) => !isBatchNormWeight(n))) expect(tensor(r1.weights, n)).toEqual(tensor(kept, n));

    // Round 2 starts from the new global's other tensors and this hospital's own batch norm.
    const global2 = r1.weights;
    let start: WeightSet | undefined;
    await h.train(global2, roundConfig({ round: 2, batchNorm: 'local' }), { onStart: () => (start = h.model!.getWeights()) });
    for (const n of bn) expect(tensor(start!, n)).toEqual(tensor(kept, n));
    for (const n of names(GLOBAL, (n) => !isBatchNormWeight(n))) expect(tensor(start!, n)).toEqual(tensor(global2, n));
    h.dispose();
  });

  it("'average': the upload is the trained model, batch norm included", async () => {
    const h = new HospitalTraining({ hospital: 'hospital-a', data });
    const r = await h.train(GLOBAL, roundConfig({ batchNorm: 'average' }));
    expect(tensor(r.weights, 'g/bn1/movingMean')).not.toEqual(tensor(GLOBAL, 'g/bn1/movingMean'));
    h.dispose();
  });

  it('rebuilds the model only when the round’s GAN config changes', async () => {
    const h = new HospitalTraining({ hospital: 'hospital-a', data });
    await h.train(GLOBAL, roundConfig());
    const first = h.model;
    await h.train(GLOBAL, roundConfig({ round: 2 }));
    expect(h.model).toBe(first);
    await h.train(GLOBAL, roundConfig({ round: 3, learningRate: { generator: 1e-4, discriminator: 1e-4 } }));
    expect(h.model).not.toBe(first);
    // Another architecture: the weights of the old one are refused with a clear message.
    const wider = tinyConfig('acgan', { batchSize: 4, seed: 42, generator: { baseChannels: 16 } });
    await expect(h.train(GLOBAL, roundConfig({}, wider))).rejects.toThrow(/global weights \(.+\) do not fit the model its config describes/);
    h.dispose();
  });

  it('stops when the signal aborts and keeps nothing', async () => {
    const local = memoryLocalWeights();
    const h = new HospitalTraining({ hospital: 'hospital-a', data, localWeights: local });
    const abort = new AbortController();
    const run = h.train(GLOBAL, roundConfig({ localSteps: 10, batchNorm: 'local' }), { signal: abort.signal, onProgress: (p) => p.done === 1 && abort.abort() });
    await expect(run).rejects.toThrow(/aborted/);
    expect(local.weights).toBeUndefined();
    h.dispose();
  });

  it('needs the hospital’s name before it can train', async () => {
    const h = new HospitalTraining({ hospital: () => undefined, data });
    await expect(h.train(GLOBAL, roundConfig())).rejects.toThrow(/name is not known yet/);
  });
});

describe('the example-count rule', () => {
  it('refuses a round needing more tiles than the hospital has, and reports at most examples.max', () => {
    expect(() => examplesForRound(10, { min: 11, max: 100 })).toThrow(/has 10 tiles for the round; the federation asks for at least 11/);
    expect(() => examplesForRound(1, { min: 2, max: 100 })).toThrow(/has 1 tile for the round/);
    expect(examplesForRound(10, { min: 10, max: 100 })).toBe(10);
    expect(examplesForRound(10, { min: 1, max: 6 })).toBe(6);
  });

  it('is applied by the round before any training; above max the hospital trains on all its tiles', async () => {
    const h = new HospitalTraining({ hospital: 'hospital-a', data });
    await expect(h.train(GLOBAL, roundConfig({ examples: { min: 11, max: 100 } }))).rejects.toThrow(/asks for at least 11/);
    expect(h.model).toBeNull(); // refused before the model was even built
    const r = await h.train(GLOBAL, roundConfig({ examples: { min: 1, max: 6 } }));
    expect([r.examples, r.tiles, r.steps]).toEqual([6, 10, 2]);
    h.dispose();
  });
});

describe('ganConfigForRound', () => {
  it("is the round's model config with the round's learning rates", () => {
    const cfg = ganConfigForRound(roundConfig({ learningRate: { generator: 1e-3, discriminator: 5e-4 } }));
    expect(cfg.optimizerG).toEqual({ ...MODEL.optimizerG, learningRate: 1e-3 });
    expect(cfg.optimizerD).toEqual({ ...MODEL.optimizerD, learningRate: 5e-4 });
    expect({ ...cfg, optimizerG: MODEL.optimizerG, optimizerD: MODEL.optimizerD }).toEqual(MODEL);
  });

  it('refuses a round config that contradicts itself', () => {
    expect(() => ganConfigForRound(roundConfig({ imageSize: 32 }))).toThrow(/asks for 32 px tiles but its model config builds 16 px/);
    expect(() => ganConfigForRound(roundConfig({ ganType: 'cgan' }))).toThrow(/trains cgan but its model config builds acgan/);
    expect(() => ganConfigForRound(roundConfig({ learningRate: { generator: Number.NaN, discriminator: 1 } }))).toThrow(/no valid generator learning rate/);
    expect(() => ganConfigForRound(roundConfig({ batchNorm: 'fedprox' as RoundConfig['batchNorm'] }))).toThrow(/unknown batch-norm policy "fedprox"/);
    expect(() => ganConfigForRound(roundConfig({ model: { gan: 'stylegan' } }))).toThrow(/gan/);
  });
});
