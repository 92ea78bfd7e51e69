import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { GanType } from '../config/ganConfig.ts';
import { datasetFromTiles } from '../data/dataset.ts';
import { createGan, type Gan } from '../gan/gan.ts';
import { planLocalTraining, poissonSample, trainLocal } from '../gan/localTraining.ts';
import type { Batch } from '../gan/step.ts';
import { tinyConfig } from '../gan/testConfig.ts';
import { createTrainer, type GanTrainer } from '../gan/trainer.ts';
import { setAdamFactory } from '../nn/optimizer.ts';
import { effectiveNoiseMultiplier } from './dpSgd.ts';

/**
 * The DP training step as the trainer runs it (createTrainer(gan, seed, { dp })): with no noise and a clip
 * no gradient reaches it is the ordinary step (same discriminator update, same loss); it refuses
 * batch-norm discriminators with the reason; an empty Poisson draw is a noise-only update; nothing leaks.
 * And Poisson sampling in the local training loop.
 */

const B = 4;

function model(gan: GanType, overrides: Parameters<typeof tinyConfig>[1] = {}): Gan {
  return createGan(tinyConfig(gan, { batchSize: B, nCritic: 1, discriminator: { baseChannels: 4, dropout: 0 }, ...overrides }));
}

function batch(gan: Gan, n = B): Batch {
  const s = gan.cfg.imageSize;
  return { images: tf.randomUniform([n, s, s, 3], -1, 1, 'float32', 5) as tf.Tensor4D, labels: tf.tensor1d(Array.from({ length: n }, (_, i) => i % 2), 'int32') };
}

function dWeights(gan: Gan): Float32Array {
  return tf.tidy(() => tf.concat(gan.D.params.trainableVariables().map((v) => tf.reshape(v, [-1]))).dataSync() as Float32Array);
}

function gWeights(gan: Gan): Float32Array {
  return tf.tidy(() => tf.concat(gan.G.params.trainableVariables().map((v) => tf.reshape(v, [-1]))).dataSync() as Float32Array);
}

function stepOnce(trainer: GanTrainer, b: Batch): { dLoss: number; gLoss: number } {
  const l = trainer.step(b);
  const out = { dLoss: l.dLoss.dataSync()[0], gLoss: l.gLoss.dataSync()[0] };
  tf.dispose([l.dLoss, l.gLoss]);
  return out;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    n = Math.max(n, Math.abs(b[i]));
  }
  return d / n;
}

describe('the DP training step', () => {
  it.each(['acgan', 'cgan', 'wgan-gp'] as const)('%s: without noise and with a clip no gradient reaches, it makes the ordinary discriminator update', (type) => {
    // Plain SGD instead of Adam, whose first step is nearly sign(g) and would hide a wrong scale.
    setAdamFactory((lr) => tf.train.sgd(lr * 100));
    const plain = model(type);
    const dp = model(type);
    const start = dWeights(plain);
    const b = batch(plain);
    try {
      const lp = stepOnce(createTrainer(plain, 3), b);
      const ld = stepOnce(createTrainer(dp, 3, { dp: { noiseMultiplier: 0, clipNorm: 1e9 } }), b);
      expect(maxRelDiff(dWeights(plain), start)).toBeGreaterThan(1e-4);
      expect(maxRelDiff(dWeights(dp), dWeights(plain))).toBeLessThan(1e-4);
      expect(ld.dLoss).toBeCloseTo(lp.dLoss, 4);
    } finally {
      setAdamFactory(null);
      tf.dispose([b.images, b.labels]);
      plain.dispose();
      dp.dispose();
    }
  });

  it('refuses a discriminator with batch norm, naming why', () => {
    for (const type of ['acgan', 'cgan'] as const) {
      const gan = model(type, { discriminator: { type: 'resnet', baseChannels: 4 } });
      try {
        expect(() => createTrainer(gan, 1, { dp: { noiseMultiplier: 1, clipNorm: 1 } })).toThrow(/without batch norm.*resnet.*batch norm mixes the tiles of a batch/);
        // Without DP the same model trains as before.
        expect(() => createTrainer(gan, 1).dispose()).not.toThrow();
      } finally {
        gan.dispose();
      }
    }
    const critic = model('wgan-gp', { discriminator: { type: 'resnet', baseChannels: 4 } });
    try {
      expect(() => createTrainer(critic, 1, { dp: { noiseMultiplier: 1, clipNorm: 1 } }).dispose()).not.toThrow();
    } finally {
      critic.dispose();
    }
  });

  it.each(['acgan', 'wgan-gp'] as const)('%s: a step that drew no tile is a noise-only discriminator update and an ordinary generator update', (type) => {
    const gan = model(type);
    const s = gan.cfg.imageSize;
    const empty: Batch = { images: tf.zeros([0, s, s, 3]) as tf.Tensor4D, labels: tf.zeros([0], 'int32') as tf.Tensor1D, expectedSize: B };
    try {
      const d0 = dWeights(gan);
      const g0 = gWeights(gan);
      const trainer = createTrainer(gan, 1, { dp: { noiseMultiplier: 1, clipNorm: 1, noiseSeed: 9 } });
      stepOnce(trainer, empty); // the first step creates the optimizers' slots
      const d1 = dWeights(gan);
      const before = tf.memory().numTensors;
      const l = stepOnce(trainer, empty);
      expect(tf.memory().numTensors).toBe(before);
      expect(l.dLoss).toBe(0);
      expect(Number.isFinite(l.gLoss)).toBe(true);
      expect(maxRelDiff(d1, d0)).toBeGreaterThan(0);
      expect(maxRelDiff(dWeights(gan), d1)).toBeGreaterThan(0);
      expect(maxRelDiff(gWeights(gan), g0)).toBeGreaterThan(0);
      trainer.dispose();
    } finally {
      tf.dispose([empty.images, empty.labels]);
      gan.dispose();
    }
  });

  it('keeps no tensor after a step, and its noise follows the secret noise seed, not the trainer seed', () => {
    const runs = [9, 9, 10].map((noiseSeed) => {
      const gan = model('cgan');
      const b = batch(gan);
      const trainer = createTrainer(gan, 1, { dp: { noiseMultiplier: 1, clipNorm: 1, noiseSeed } });
      stepOnce(trainer, b); // warm up: optimizer slots are created on the first step
      const before = tf.memory().numTensors;
      stepOnce(trainer, b);
      expect(tf.memory().numTensors).toBe(before);
      const w = dWeights(gan);
      trainer.dispose();
      tf.dispose([b.images, b.labels]);
      gan.dispose();
      return w;
    });
    expect(Array.from(runs[1])).toEqual(Array.from(runs[0]));
    expect(maxRelDiff(runs[2], runs[0])).toBeGreaterThan(1e-3);
  });

  it('accounts WGAN-GP’s nCritic noisy critic updates on one batch as one Gaussian mechanism with σ/√nCritic', () => {
    expect(effectiveNoiseMultiplier(tinyConfig('wgan-gp', { nCritic: 4 }), { noiseMultiplier: 2, clipNorm: 1 })).toBe(1);
    expect(effectiveNoiseMultiplier(tinyConfig('acgan'), { noiseMultiplier: 2, clipNorm: 1 })).toBe(2);
  });
});

describe('Poisson sampling of local steps', () => {
  it('takes each tile independently with probability q, reproducibly from (seed, step)', () => {
    const n = 2000;
    const q = 0.1;
    const counts = Array.from({ length: 50 }, (_, k) => poissonSample(n, q, 42, k).length);
    const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
    // Binomial(2000, 0.1): mean 200, std ≈ 13.4; over 50 steps the mean is within ±4·1.9.
    expect(Math.abs(mean - n * q)).toBeLessThan(8);
    expect(new Set(counts).size).toBeGreaterThan(10);
    expect(Array.from(poissonSample(n, q, 42, 3))).toEqual(Array.from(poissonSample(n, q, 42, 3)));
    expect(Array.from(poissonSample(n, q, 42, 3))).not.toEqual(Array.from(poissonSample(n, q, 43, 3)));
    // Tile i is in about q of the steps.
    const hits = Array.from({ length: 400 }, (_, k) => poissonSample(50, q, 7, k).includes(17)).filter(Boolean).length;
    expect(Math.abs(hits / 400 - q)).toBeLessThan(0.05);
    expect(poissonSample(10, 1, 1, 0).length).toBe(10);
    expect(() => poissonSample(10, 1.5, 1, 0)).toThrow(/sampling rate must be in \[0, 1\], got 1.5/);
  });

  it('gives the DP step batches of varying size that carry the expected size, drawn from the sampling seed', async () => {
    const data = datasetFromTiles(
      Array.from({ length: 40 }, (_, i) => ({ pixels: new Uint8Array(12).fill(i), label: i % 2 })),
      2,
      2,
    );
    const seen = (samplingSeed: number) => {
      const sizes: number[] = [];
      const expected: (number | undefined)[] = [];
      const trainer = {
        step: (b: Batch) => {
          sizes.push(b.images.shape[0]);
          expected.push(b.expectedSize);
          return { dLoss: tf.scalar(0), gLoss: tf.scalar(0) };
        },
      } as unknown as GanTrainer;
      return { trainer, sizes, expected, samplingSeed };
    };
    try {
      const plan = planLocalTraining(data.count, 8, { steps: 30 });
      const runs = [11, 11, 12].map(seen);
      for (const r of runs) await trainLocal(r.trainer, data, { plan, seed: 1, sampling: 'poisson', samplingSeed: r.samplingSeed, yieldEvery: 1000 });
      expect(runs[0].sizes).toHaveLength(30);
      expect(new Set(runs[0].sizes).size).toBeGreaterThan(3);
      expect(runs[0].expected.every((e) => e === 8)).toBe(true);
      expect(runs[1].sizes).toEqual(runs[0].sizes);
      expect(runs[2].sizes).not.toEqual(runs[0].sizes);
      const mean = runs[0].sizes.reduce((a, b) => a + b, 0) / 30;
      expect(Math.abs(mean - 8)).toBeLessThan(3);
    } finally {
      data.dispose();
    }
  });
});
