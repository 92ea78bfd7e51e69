import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { GAN_TYPES } from '../config/ganConfig.ts';
import { createGan } from './gan.ts';
import { countMovingAverages, recordBatchNorms } from './testProbes.ts';
import { tinyConfig } from './testConfig.ts';
import { createTrainer } from './trainer.ts';

/**
 * One GAN step moves each of the generator's batch-norm moving statistics exactly once, with the
 * configured momentum m: moving' = m·moving + (1 − m)·(statistic of one batch). The generator runs in
 * training mode several times a step (ACGAN and CGAN: for the discriminator's fakes and for its own
 * update; WGAN-GP: once per critic update and once for its own update), and each pass used to fold its
 * statistics in, so the effective momentum was m² (ACGAN, CGAN) or m^(nCritic+1) (WGAN-GP).
 * The pass that updates them is the generator's own update pass, the last generator pass of the step
 * (shared/gan/generator.ts says why).
 */

const restores: (() => void)[] = [];
afterEach(() => {
  while (restores.length) restores.pop()!();
});

/** Per-channel mean and biased variance over all axes but the last, in float64. */
function channelStats(x: Float32Array, channels: number): { mean: number[]; variance: number[] } {
  const rows = x.length / channels;
  const mean = new Array<number>(channels).fill(0);
  const variance = new Array<number>(channels).fill(0);
  for (let r = 0; r < rows; r++) for (let c = 0; c < channels; c++) mean[c] += x[r * channels + c];
  for (let c = 0; c < channels; c++) mean[c] /= rows;
  for (let r = 0; r < rows; r++) for (let c = 0; c < channels; c++) variance[c] += (x[r * channels + c] - mean[c]) ** 2;
  for (let c = 0; c < channels; c++) variance[c] /= rows;
  return { mean, variance };
}

describe.each(GAN_TYPES)('%s: generator batch-norm moving statistics', (ganType) => {
  it('move once per step: m·old + (1 − m)·(batch statistic of the generator update pass)', () => {
    const cfg = tinyConfig(ganType, { generator: { baseChannels: 8, momentum: 0.8 } });
    const m = cfg.generator.momentum;
    const gan = createGan(cfg);
    // Known running statistics far from any batch's, so m and m² (or m³) give clearly different results.
    const start = gan.getWeights();
    gan.setWeights({
      ...start,
      tensors: start.tensors.map((t) => {
        if (/^g\/bn\d\/movingMean$/.test(t.name)) return { ...t, data: Float32Array.from(t.data, (_, c) => 2 + 0.25 * c) };
        if (/^g\/bn\d\/movingVariance$/.test(t.name)) return { ...t, data: Float32Array.from(t.data, (_, c) => 5 - 0.25 * c) };
        return t;
      }),
    });
    const old = new Map(gan.getWeights().tensors.map((t) => [t.name, Float64Array.from(t.data)]));
    const entry = (name: string) => gan.G.params.all().find((e) => e.name === name)!.variable;
    const layers = ['bn1', 'bn2', 'bn3'].map((bn) => ({ bn, gamma: entry(`g/${bn}/gamma`), mean: entry(`g/${bn}/movingMean`), variance: entry(`g/${bn}/movingVariance`) }));

    const trainer = createTrainer(gan);
    const images = tf.randomUniform([8, 16, 16, 3], -1, 1, 'float32', 11) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 1, 0, 1, 1, 0, 1, 0], 'int32');
    const bn = recordBatchNorms();
    restores.push(bn.restore);
    const ma = countMovingAverages();
    restores.push(ma.restore);
    const { dLoss, gLoss } = trainer.step({ images, labels });
    tf.dispose([dLoss, gLoss]);

    // The generator's training-mode passes, each a run of bn1, bn2, bn3 (the CNN discriminator has no batch norm).
    const gCalls = bn.calls.filter((c) => layers.some((l) => l.gamma === c.gamma));
    expect(gCalls.length % 3).toBe(0);
    const passes = gCalls.length / 3;
    // More than one training-mode pass per step: the case where m and m^k differ.
    expect(passes).toBeGreaterThan(1);
    const designated = gCalls.slice(-3);
    layers.forEach((l, i) => expect(designated[i].gamma).toBe(l.gamma));

    const after = new Map(gan.getWeights().tensors.map((t) => [t.name, t.data]));
    for (const [i, l] of layers.entries()) {
      const call = designated[i];
      const channels = call.shape[call.shape.length - 1];
      const batch = channelStats(call.x, channels);
      for (const [stat, name] of [['mean', `g/${l.bn}/movingMean`], ['variance', `g/${l.bn}/movingVariance`]] as const) {
        const before = old.get(name)!;
        const want = Array.from(before, (v, c) => m * v + (1 - m) * batch[stat][c]);
        const got = Array.from(after.get(name)!);
        got.forEach((g, c) => expect(Math.abs(g - want[c]), `${name}[${c}]: got ${g}, want ${want[c]}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(want[c]))));
      }
      // Each statistic went through the moving average exactly once.
      expect(ma.counts.get(l.mean), `${l.bn} movingMean updates`).toBe(1);
      expect(ma.counts.get(l.variance), `${l.bn} movingVariance updates`).toBe(1);
    }

    tf.dispose([images, labels]);
    trainer.dispose();
    gan.dispose();
  });
});
