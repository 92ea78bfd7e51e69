import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { noAugment } from '../gan/augment.ts';
import { saturatingDpLoss } from '../gan/dpSteps.ts';
import { createGan } from '../gan/gan.ts';
import { tinyConfig } from '../gan/testConfig.ts';
import { dpNoiseSeeds, dpUpdate, type DpOptions } from './dpSgd.ts';

/**
 * The DP update's noise: Gaussian with standard deviation σC on the clipped sum, so σC/E on the averaged
 * gradient (E the expected batch size), drawn from the seeds it is given (the trainer's seeded stream,
 * or a hospital's secret one): the same seeds give the same noise, other seeds other noise.
 */

const B = 4;

function setup() {
  const gan = createGan(tinyConfig('acgan', { batchSize: B, discriminator: { baseChannels: 4, dropout: 0 } }));
  const vars = gan.D.params.trainableVariables();
  const s = gan.cfg.imageSize;
  const x = {
    reals: tf.randomUniform([B, s, s, 3], -1, 1, 'float32', 1) as tf.Tensor4D,
    labels: tf.tensor1d([0, 1, 1, 0], 'int32'),
    fakes: tf.randomUniform([B, s, s, 3], -1, 1, 'float32', 2) as tf.Tensor4D,
    fakeLabels: tf.tensor1d([1, 1, 0, 0], 'int32'),
  };
  const start = vars.map((v) => v.clone());
  const loss = () => saturatingDpLoss(gan.cfg, gan.D, x, noAugment);
  /** The change of D's weights by one update with plain SGD at learning rate 1: −(noisy clipped sum)/E. */
  const delta = (dp: DpOptions, seeds: () => number, expected = B, b = B): Float32Array => {
    vars.forEach((v, i) => v.assign(start[i]));
    const opt = tf.train.sgd(1);
    tf.dispose(dpUpdate(opt, vars, b, expected, loss, dp, seeds));
    opt.dispose();
    return tf.tidy(() => tf.concat(vars.map((v, i) => tf.reshape(tf.sub(v, start[i]), [-1]))).dataSync() as Float32Array);
  };
  return { gan, vars, delta, inputs: x, dispose: () => tf.dispose([...start, x.reals, x.labels, x.fakes, x.fakeLabels]) };
}

function stats(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, std: Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) };
}

describe('DP-SGD noise', () => {
  it('has standard deviation σC/E on the averaged gradient, over seeds, and mean zero', () => {
    const t = setup();
    try {
      const sigma = 1.3;
      const clip = 0.5;
      for (const expected of [B, 10]) {
        const clean = t.delta({ noiseMultiplier: 0, clipNorm: clip }, () => 0, expected);
        const noise: number[] = [];
        for (const seed of [1, 2, 3, 4, 5]) {
          const noisy = t.delta({ noiseMultiplier: sigma, clipNorm: clip }, dpNoiseSeeds(seed), expected);
          // Δ = −(clipped sum + noise)/E, so the noise on the averaged gradient is clean − noisy.
          for (let i = 0; i < noisy.length; i++) noise.push(clean[i] - noisy[i]);
        }
        expect(noise.length).toBeGreaterThan(5000);
        const { mean, std } = stats(noise);
        const target = (sigma * clip) / expected;
        // ≥ 5,000 Gaussian draws: the sample std is within 3 % of the truth with overwhelming probability.
        expect(Math.abs(std / target - 1)).toBeLessThan(0.03);
        expect(Math.abs(mean)).toBeLessThan((4 * target) / Math.sqrt(noise.length));
      }
    } finally {
      t.dispose();
      t.gan.dispose();
    }
  });

  it('is the noise of the seeds it is given: the same seeds repeat it, other seeds do not', () => {
    const t = setup();
    try {
      const dp = { noiseMultiplier: 1, clipNorm: 1 };
      let drawn = 0;
      const counting = (seeds: () => number) => () => (drawn++, seeds());
      const a = t.delta(dp, counting(dpNoiseSeeds(7)));
      // One seed per variable per update.
      expect(drawn).toBe(t.vars.length);
      const b = t.delta(dp, dpNoiseSeeds(7));
      const c = t.delta(dp, dpNoiseSeeds(8));
      expect(Array.from(b)).toEqual(Array.from(a));
      expect(Array.from(c)).not.toEqual(Array.from(a));
    } finally {
      t.dispose();
      t.gan.dispose();
    }
  });

  it('alone moves the weights when the step drew no tile (an empty Poisson draw)', () => {
    const t = setup();
    try {
      const sigma = 2;
      const moved = t.delta({ noiseMultiplier: sigma, clipNorm: 1 }, dpNoiseSeeds(3), 8, 0);
      const { std } = stats(Array.from(moved));
      expect(Math.abs(std / (sigma / 8) - 1)).toBeLessThan(0.05);
      expect(Array.from(t.delta({ noiseMultiplier: 0, clipNorm: 1 }, dpNoiseSeeds(3), 8, 0)).every((d) => d === 0)).toBe(true);
    } finally {
      t.dispose();
      t.gan.dispose();
    }
  });

  it('without noise moves the weights by the clipped sum over the expected batch', () => {
    const t = setup();
    try {
      // Each example's gradient on its own (the definition), through the same per-example loss on one example.
      const x = t.inputs;
      const single = Array.from({ length: B }, (_, i) =>
        tf.tidy(() => {
          const one = <T extends tf.Tensor>(u: T) => tf.slice(u, [i], [1]) as T;
          const { grads } = tf.variableGrads(
            () => tf.sum(saturatingDpLoss(t.gan.cfg, t.gan.D, { reals: one(x.reals), labels: one(x.labels), fakes: one(x.fakes), fakeLabels: one(x.fakeLabels) }, noAugment)) as tf.Scalar,
            t.vars,
          );
          return tf.concat(t.vars.map((v) => tf.reshape(grads[v.name], [-1]))).dataSync() as Float32Array;
        }),
      );
      const norms = single.map((g) => Math.hypot(...g));
      const clip = Math.min(...norms) / 2; // every example is clipped
      const expected = 6;
      const moved = t.delta({ noiseMultiplier: 0, clipNorm: clip }, () => 0, expected);
      for (const j of [0, 1, 17, moved.length - 1]) {
        const want = -single.reduce((a, g, i) => a + (g[j] * clip) / norms[i], 0) / expected;
        expect(moved[j]).toBeCloseTo(want, 6);
      }
      expect(Math.hypot(...moved)).toBeLessThanOrEqual((B * clip) / expected + 1e-6);
    } finally {
      t.dispose();
      t.gan.dispose();
    }
  });

  it('refuses unusable options with the field named', () => {
    const t = setup();
    try {
      expect(() => t.delta({ noiseMultiplier: -1, clipNorm: 1 }, dpNoiseSeeds(1))).toThrow(/noiseMultiplier must be a number ≥ 0, got -1/);
      expect(() => t.delta({ noiseMultiplier: 1, clipNorm: 0 }, dpNoiseSeeds(1))).toThrow(/clipNorm must be a number > 0, got 0/);
    } finally {
      t.dispose();
      t.gan.dispose();
    }
  });
});
