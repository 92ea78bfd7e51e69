import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { FedAvgAccumulator } from '../aggregate/fedavg.ts';
import { decodeWeights, encodeWeights } from '../codec/weightsCodec.ts';
import { isBatchNormWeight, type NamedTensor, type WeightSet } from '../weights.ts';
import { createGan, generate, samplingGenerator, type Gan } from './gan.ts';
import { tinyConfig } from './testConfig.ts';
import { createTrainer, type GanTrainer } from './trainer.ts';

/**
 * The EMA of the generator (ema.ts): exact, carried in the weight set, sampled by generate(), and
 * averaged by the federation like every other weight.
 */

const disposables: { dispose(): void }[] = [];
afterEach(() => {
  while (disposables.length) disposables.pop()!.dispose();
});

function gan(decay: number | null, overrides: Parameters<typeof tinyConfig>[1] = {}): Gan {
  const g = createGan(tinyConfig('acgan', { ema: decay === null ? null : { decay }, ...overrides }));
  disposables.push(g);
  return g;
}

function trainer(g: Gan, seed?: number): GanTrainer {
  const t = createTrainer(g, seed);
  disposables.push(t);
  return t;
}

function batch(seed: number) {
  const images = tf.randomUniform([8, 16, 16, 3], -1, 1, 'float32', seed) as tf.Tensor4D;
  const labels = tf.tensor1d([0, 1, 0, 1, 0, 1, 0, 1], 'int32');
  disposables.push(images, labels);
  return { images, labels };
}

const generatorTensors = (ws: WeightSet) => ws.tensors.filter((t) => t.name.startsWith('g/'));
const emaTensors = (ws: WeightSet) => ws.tensors.filter((t) => t.name.startsWith('ema/'));

function step(t: GanTrainer, seed: number) {
  const l = t.step(batch(seed));
  tf.dispose([l.dLoss, l.gLoss]);
}

describe('EMA of the generator', () => {
  it('after k steps equals the recurrence ema ← d·ema + (1 − d)·G over the generator after each step, in float32', () => {
    const d = 0.9;
    const g = gan(d);
    const t = trainer(g);
    const start = g.getWeights();
    // It starts as a copy of the generator.
    expect(emaTensors(start).map((e) => [e.name, Array.from(e.data)])).toEqual(generatorTensors(start).map((e) => [`ema/${e.name}`, Array.from(e.data)]));
    // The recurrence written out per element: in float32 as the ops compute it (fround after each
    // multiplication and the addition, decay and 1 − decay rounded to float32), and in float64.
    const fd = Math.fround(d);
    const fr = Math.fround(1 - d);
    let e32 = generatorTensors(start).map((x) => Float64Array.from(x.data));
    let e64 = e32.map((x) => x.slice());
    for (let k = 1; k <= 4; k++) {
      step(t, k);
      const now = generatorTensors(g.getWeights());
      e32 = e32.map((e, i) => e.map((v, j) => Math.fround(Math.fround(v * fd) + Math.fround(now[i].data[j] * fr))));
      e64 = e64.map((e, i) => e.map((v, j) => d * v + (1 - d) * now[i].data[j]));
    }
    const ema = emaTensors(g.getWeights());
    const last = generatorTensors(g.getWeights());
    let moved = 0;
    ema.forEach((e, i) => {
      expect(Array.from(e.data), e.name).toEqual(Array.from(e32[i]));
      e.data.forEach((v, j) => expect(Math.abs(v - e64[i][j]), e.name).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(e64[i][j]))));
      if (e.data.some((v, j) => v !== last[i].data[j] && v !== start.tensors[i].data[j])) moved++;
    });
    // It is neither the first nor the last generator: every trained tensor (and the moving statistics) moved.
    expect(moved).toBeGreaterThan(ema.length / 2);
  });

  it('from known values: with G held at 1 and the EMA at ½, after k updates it is 1 − ½·dᵏ', () => {
    const d = 0.75;
    const g = gan(d);
    const ws = g.getWeights();
    g.setWeights({
      ...ws,
      tensors: ws.tensors.map((x) => ({ ...x, data: x.name.startsWith('ema/') ? new Float32Array(x.data.length).fill(0.5) : x.name.startsWith('g/') ? new Float32Array(x.data.length).fill(1) : x.data })),
    });
    for (let k = 1; k <= 3; k++) {
      g.ema!.update();
      for (const e of emaTensors(g.getWeights())) for (const v of e.data) expect(v).toBeCloseTo(1 - 0.5 * d ** k, 7);
    }
    // 1 − ½·0.75³ = 0.7890625, exactly representable: the float32 ops give it exactly.
    expect(emaTensors(g.getWeights())[0].data[0]).toBe(0.7890625);
  });

  it('moves once per training step, for every GAN type (WGAN-GP: once per generator step, not per critic step)', () => {
    for (const type of ['acgan', 'cgan', 'wgan-gp'] as const) {
      const g = createGan(tinyConfig(type, { ema: { decay: 0.5 } }));
      disposables.push(g);
      let updates = 0;
      const update = g.ema!.update;
      (g.ema as { update: () => void }).update = () => {
        updates++;
        update();
      };
      const t = trainer(g);
      step(t, 1);
      step(t, 2);
      expect(updates, type).toBe(2);
    }
  });

  it('is in the weight set: ema/<generator name> after G and D, same shapes; setWeights writes it; the codec carries it', () => {
    const g = gan(0.999);
    const names = g.spec.map((s) => s.name);
    const gNames = names.filter((n) => n.startsWith('g/'));
    const dNames = names.filter((n) => n.startsWith('d/'));
    expect(names).toEqual([...gNames, ...dNames, ...gNames.map((n) => `ema/${n}`)]);
    const shapes = new Map(g.spec.map((s) => [s.name, s.shape]));
    for (const n of gNames) expect(shapes.get(`ema/${n}`)).toEqual(shapes.get(n));
    // FedBN still recognises the average's batch-norm tensors.
    expect(names.filter((n) => n.startsWith('ema/') && isBatchNormWeight(n)).length).toBe(gNames.filter(isBatchNormWeight).length);
    expect(names.filter((n) => n.startsWith('ema/') && isBatchNormWeight(n)).length).toBeGreaterThan(0);

    // setWeights writes the average (and only it, for these tensors).
    const ws = g.getWeights();
    const changed: WeightSet = { ...ws, tensors: ws.tensors.map((x, i) => (x.name.startsWith('ema/') ? { ...x, data: x.data.map((_, j) => 0.001 * (i + j)) } : x)) };
    g.setWeights(changed);
    const back = g.getWeights();
    back.tensors.forEach((x, i) => expect(Array.from(x.data), x.name).toEqual(Array.from(changed.tensors[i].data)));
    expect(generatorTensors(back).map((x) => Array.from(x.data))).toEqual(generatorTensors(ws).map((x) => Array.from(x.data)));

    // Bit-exact through the codec into another model of the same config.
    const other = createGan(tinyConfig('acgan', { ema: { decay: 0.999 }, seed: 9 }));
    disposables.push(other);
    other.setWeights(decodeWeights(encodeWeights(back, {}), { expectedFingerprint: other.fingerprint }).weights);
    expect(emaTensors(other.getWeights()).map((x) => Array.from(x.data))).toEqual(emaTensors(back).map((x) => Array.from(x.data)));
  });

  it('getWeightsAsync returns the same tensors as getWeights', async () => {
    const g = gan(0.9);
    step(trainer(g), 1);
    const [a, b] = [g.getWeights(), await g.getWeightsAsync()];
    expect(b.tensors.map((x) => x.name)).toEqual(a.tensors.map((x) => x.name));
    b.tensors.forEach((x, i) => expect(Array.from(x.data)).toEqual(Array.from(a.tensors[i].data)));
  });

  it('changes the fingerprint (an EMA model and a plain one cannot exchange weights), naming both', () => {
    const withEma = gan(0.99);
    const plain = gan(null);
    const otherDecay = gan(0.5);
    expect(withEma.fingerprint).not.toBe(plain.fingerprint);
    // The decay is a training option: same architecture, same weights.
    expect(otherDecay.fingerprint).toBe(withEma.fingerprint);
    expect(() => withEma.setWeights(plain.getWeights())).toThrow(new RegExp(`${plain.fingerprint}.*${withEma.fingerprint}`));
  });

  it('generate() samples from the average; without one, from G', () => {
    const g = gan(0.9);
    const donor = gan(null, { seed: 5 });
    // Put another generator's weights into the average: generate() must then match that generator.
    const ws = g.getWeights();
    const donorG = new Map(generatorTensors(donor.getWeights()).map((x) => [`ema/${x.name}`, x.data]));
    g.setWeights({ ...ws, tensors: ws.tensors.map((x) => (donorG.has(x.name) ? { ...x, data: donorG.get(x.name)! } : x)) });
    expect(samplingGenerator(g)).toBe(g.ema!.generator);
    expect(samplingGenerator(donor)).toBe(donor.G);
    const labels = [0, 1, 1];
    const fromG = generate(g, labels, 3);
    const fromDonor = generate(donor, labels, 3);
    const fromOwnG = tf.tidy(() => g.G.apply(tf.randomNormal([3, g.cfg.latentDim], 0, 1, 'float32', 3) as tf.Tensor2D, tf.tensor1d(labels, 'int32'), false));
    expect(Array.from(fromG.dataSync())).toEqual(Array.from(fromDonor.dataSync()));
    expect(Array.from(fromG.dataSync())).not.toEqual(Array.from(fromOwnG.dataSync()));
    tf.dispose([fromG, fromDonor, fromOwnG]);
  });

  it('federated: FedAvg of two hospitals’ weights holds the EMA of the averaged generator trajectories', () => {
    // Both start from the same global weights (the EMA included), train k steps on their own data, and
    // their updates are averaged with weights 3 : 1. Because FedAvg is linear, the averaged EMA is
    // dᵏ·e₀ + (1 − d)·Σⱼ dᵏ⁻ʲ·ḡⱼ with ḡⱼ the example-weighted mean of the two generators after step j.
    const d = 0.8;
    const k = 3;
    const global = gan(d).getWeights();
    const hospitals = [
      { examples: 3, seed: 11 },
      { examples: 1, seed: 23 },
    ].map(({ examples, seed }) => {
      const h = gan(d);
      h.setWeights(global);
      const t = trainer(h, seed);
      const trajectory: NamedTensor[][] = [];
      for (let j = 1; j <= k; j++) {
        step(t, seed + j);
        trajectory.push(generatorTensors(h.getWeights()));
      }
      return { examples, weights: h.getWeights(), trajectory };
    });
    const fedavg = new FedAvgAccumulator();
    for (const h of hospitals) fedavg.add({ weights: h.weights, examples: h.examples });
    const averaged = emaTensors(fedavg.result());
    const e0 = emaTensors(global);
    averaged.forEach((a, i) => {
      const expected = Float64Array.from(e0[i].data, (v) => d ** k * v);
      for (let j = 1; j <= k; j++) {
        const [h1, h2] = hospitals.map((h) => h.trajectory[j - 1][i].data);
        expected.forEach((_, n) => (expected[n] += (1 - d) * d ** (k - j) * ((3 * h1[n] + h2[n]) / 4)));
      }
      a.data.forEach((v, n) => expect(Math.abs(v - expected[n]), a.name).toBeLessThanOrEqual(2e-6 * Math.max(1, Math.abs(expected[n]))));
    });
    // The two hospitals' generators did differ (otherwise this would prove nothing).
    expect(hospitals[0].trajectory[k - 1][0].data).not.toEqual(hospitals[1].trajectory[k - 1][0].data);
  });
});
