import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { WeightSet } from '../weights.ts';
import { createGan, generate } from './gan.ts';
import { recalibrateGeneratorBatchNorm, RECALIBRATION_DEFAULTS } from './recalibrateBatchNorm.ts';
import { tinyConfig } from './testConfig.ts';

/**
 * The generator's forward pass written out here with plain tfjs ops (not shared/nn), batch norm in
 * training mode: returns the batch mean and biased variance each batch-norm layer sees.
 */
function batchStatistics(w: Map<string, tf.Tensor>, cfg: ReturnType<typeof tinyConfig>, z: tf.Tensor2D, labels: number[]): { mean: Float32Array; variance: Float32Array }[] {
  return tf.tidy(() => {
    const s0 = cfg.imageSize / 8;
    const c0 = cfg.generator.baseChannels;
    const b = z.shape[0];
    let x: tf.Tensor4D = tf.add(tf.matMul(z, w.get('g/dense/kernel') as tf.Tensor2D), w.get('g/dense/bias')!).reshape([b, s0, s0, c0]);
    const rows = labels.map((l) => tf.slice(w.get('g/embed/table')!, [l, 0], [1, -1]));
    x = tf.mul(x, tf.concat(rows, 0).reshape([b, s0, s0, c0]));
    const out: { mean: Float32Array; variance: Float32Array }[] = [];
    for (let k = 1; k <= 3; k++) {
      // Nearest-neighbour 2× upsampling by repeating rows and columns.
      const [, h, wd, c] = x.shape;
      x = tf.tile(x.reshape([b, h, 1, wd, 1, c]), [1, 1, 2, 1, 2, 1]).reshape([b, 2 * h, 2 * wd, c]);
      x = tf.add(tf.conv2d(x, w.get(`g/conv${k}/kernel`) as tf.Tensor4D, 1, 'same'), w.get(`g/conv${k}/bias`)!);
      const mean = tf.mean(x, [0, 1, 2]);
      const variance = tf.mean(tf.square(tf.sub(x, mean)), [0, 1, 2]);
      out.push({ mean: mean.dataSync() as Float32Array, variance: variance.dataSync() as Float32Array });
      const normed = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-3)));
      x = tf.add(tf.mul(normed, w.get(`g/bn${k}/gamma`)!), w.get(`g/bn${k}/beta`)!);
      x = tf.maximum(x, tf.mul(x, 0.2));
    }
    return out;
  });
}

/** Weights with non-trivial gamma/beta and nonsense moving statistics (as an untrained FedBN global might hold). */
function perturbed(ws: WeightSet): WeightSet {
  return {
    fingerprint: ws.fingerprint,
    tensors: ws.tensors.map((t) => {
      const data = t.data.slice();
      for (let i = 0; i < data.length; i++) {
        if (/bn\d\/gamma$/.test(t.name)) data[i] = 0.5 + 0.1 * (i % 7);
        else if (/bn\d\/beta$/.test(t.name)) data[i] = 0.05 * ((i % 5) - 2);
        else if (/movingMean$/.test(t.name)) data[i] = 5;
        else if (/movingVariance$/.test(t.name)) data[i] = 9;
      }
      return { ...t, data };
    }),
  };
}

describe('recalibrateGeneratorBatchNorm', () => {
  it('sets each generator batch-norm layer to the average of its batch statistics on seeded latents, and changes nothing else', () => {
    // Dropout > 0 in the config: recalibration runs with dropout off (as generation does).
    const cfg = tinyConfig('acgan', { classes: ['a', 'b', 'c'], generator: { baseChannels: 8, momentum: 0.8, dropout: 0.3 } });
    const gan = createGan(cfg);
    gan.setWeights(perturbed(gan.getWeights()));
    const before = gan.getWeights();
    const weights = new Map(before.tensors.map((t) => [t.name, tf.tensor(t.data, t.shape)]));

    const opts = { seed: 11, batches: 3, batchSize: 10 };
    const numTensors = tf.memory().numTensors;
    const summary = recalibrateGeneratorBatchNorm(gan, opts);
    expect(tf.memory().numTensors).toBe(numTensors);
    expect(summary).toEqual({ ...opts, tensors: [1, 2, 3].flatMap((k) => [`g/bn${k}/movingMean`, `g/bn${k}/movingVariance`]) });

    // Independently: the same latents (the documented seeds and labels), the forward pass by hand.
    const expected = [0, 1, 2].map(() => ({ mean: [] as Float32Array[], variance: [] as Float32Array[] }));
    for (let b = 0; b < opts.batches; b++) {
      const z = tf.randomNormal([opts.batchSize, cfg.latentDim], 0, 1, 'float32', opts.seed * 1_000_003 + b) as tf.Tensor2D;
      const labels = Array.from({ length: opts.batchSize }, (_, i) => (b * opts.batchSize + i) % 3);
      batchStatistics(weights, cfg, z, labels).forEach((s, k) => {
        expected[k].mean.push(s.mean);
        expected[k].variance.push(s.variance);
      });
      z.dispose();
    }
    const avg = (xs: Float32Array[]) => xs[0].map((_, c) => xs.reduce((s, x) => s + x[c], 0) / xs.length);
    const after = new Map(gan.getWeights().tensors.map((t) => [t.name, t.data]));
    for (let k = 0; k < 3; k++) {
      const mean = avg(expected[k].mean);
      const variance = avg(expected[k].variance);
      const gotMean = after.get(`g/bn${k + 1}/movingMean`)!;
      const gotVar = after.get(`g/bn${k + 1}/movingVariance`)!;
      expect(gotMean.length).toBe(mean.length);
      for (let c = 0; c < mean.length; c++) {
        expect(gotMean[c]).toBeCloseTo(mean[c], 4);
        expect(gotVar[c] / variance[c]).toBeCloseTo(1, 3);
      }
      // Not the last batch's statistics alone, nor a blend with the old (5, 9) values.
      expect([...gotMean].some((m, c) => Math.abs(m - expected[k].mean[opts.batches - 1][c]) > 1e-4)).toBe(true);
    }
    for (const t of before.tensors) {
      if (/^g\/bn\d\/moving/.test(t.name)) continue;
      expect(after.get(t.name), t.name).toEqual(t.data);
    }
    for (const t of weights.values()) t.dispose();
    gan.dispose();
  });

  it("recalibrates the generator generate() samples from: with cfg.ema the moving average's (ema/g/bn…), leaving G's", () => {
    const cfg = tinyConfig('acgan', { ema: { decay: 0.9 } });
    const gan = createGan(cfg);
    // The average differs from G: its non-BN weights halved.
    const ws = perturbed(gan.getWeights());
    ws.tensors = ws.tensors.map((t) => (t.name.startsWith('ema/') && !/bn\d\//.test(t.name) ? { ...t, data: t.data.map((v) => v * 0.5) } : t));
    gan.setWeights(ws);
    const opts = { seed: 3, batches: 2, batchSize: 6 };
    const summary = recalibrateGeneratorBatchNorm(gan, opts);
    expect(summary.tensors).toEqual([1, 2, 3].flatMap((k) => [`ema/g/bn${k}/movingMean`, `ema/g/bn${k}/movingVariance`]));
    const emaWeights = new Map(ws.tensors.filter((t) => t.name.startsWith('ema/')).map((t) => [t.name.slice(4), tf.tensor(t.data, t.shape)]));
    const sums = [0, 1, 2].map(() => ({ mean: [] as Float32Array[], variance: [] as Float32Array[] }));
    for (let b = 0; b < opts.batches; b++) {
      const z = tf.randomNormal([opts.batchSize, cfg.latentDim], 0, 1, 'float32', opts.seed * 1_000_003 + b) as tf.Tensor2D;
      batchStatistics(emaWeights, cfg, z, Array.from({ length: opts.batchSize }, (_, i) => (b * opts.batchSize + i) % 2)).forEach((s, k) => {
        sums[k].mean.push(s.mean);
        sums[k].variance.push(s.variance);
      });
      z.dispose();
    }
    const avg = (xs: Float32Array[]) => xs[0].map((_, c) => xs.reduce((s, x) => s + x[c], 0) / xs.length);
    const after = new Map(gan.getWeights().tensors.map((t) => [t.name, t.data]));
    for (let k = 0; k < 3; k++) {
      const mean = avg(sums[k].mean);
      after.get(`ema/g/bn${k + 1}/movingMean`)!.forEach((m, c) => expect(m).toBeCloseTo(mean[c], 4));
      // G's own statistics keep the (nonsense) values they had.
      expect([...after.get(`g/bn${k + 1}/movingMean`)!]).toEqual(new Array(mean.length).fill(5));
      expect([...after.get(`g/bn${k + 1}/movingVariance`)!]).toEqual(new Array(mean.length).fill(9));
    }
    for (const t of emaWeights.values()) t.dispose();
    gan.dispose();
  });

  it('is deterministic, defaults to the documented seed and sizes, and makes inference-mode generation use the new statistics', () => {
    const cfg = tinyConfig('cgan');
    const a = createGan(cfg);
    const b = createGan(cfg);
    const w = perturbed(a.getWeights());
    a.setWeights(w);
    b.setWeights(w);
    const imgBefore = generate(a, [0, 1, 0, 1], 5);
    const beforeData = imgBefore.dataSync().slice();
    imgBefore.dispose();
    const s1 = recalibrateGeneratorBatchNorm(a);
    const s2 = recalibrateGeneratorBatchNorm(b, { ...RECALIBRATION_DEFAULTS });
    expect(s1).toEqual(s2);
    expect(s1).toMatchObject(RECALIBRATION_DEFAULTS);
    expect(a.getWeights().tensors.map((t) => [...t.data])).toEqual(b.getWeights().tensors.map((t) => [...t.data]));
    const imgAfter = generate(a, [0, 1, 0, 1], 5);
    const afterData = imgAfter.dataSync();
    imgAfter.dispose();
    expect(afterData.every(Number.isFinite)).toBe(true);
    // With moving statistics (5, 9) the generator's activations were mis-normalised; now they are not.
    expect(afterData.some((v, i) => Math.abs(v - beforeData[i]) > 1e-3)).toBe(true);
    expect(() => recalibrateGeneratorBatchNorm(a, { batchSize: 1 })).toThrow(/batchSize ≥ 2/);
    expect(() => recalibrateGeneratorBatchNorm(a, { batches: 0 })).toThrow(/batches ≥ 1/);
    a.dispose();
    b.dispose();
  });
});
