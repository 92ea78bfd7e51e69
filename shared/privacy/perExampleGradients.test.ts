import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { DiscriminatorType, GanConfig, GanType } from '../config/ganConfig.ts';
import { noAugment } from '../gan/augment.ts';
import { saturatingDpLoss, wganGpDpLoss, type DpInputs } from '../gan/dpSteps.ts';
import { createGan, type Gan } from '../gan/gan.ts';
import { tinyConfig } from '../gan/testConfig.ts';
import { clipFactors, clippedSum, perExampleGradients, perExampleNorms } from './dpSgd.ts';

/**
 * Exactness of the one-pass per-example gradients (shared/nn/perExample.ts) against the definition: B
 * separate single-example gradients (tf.variableGrads of example b's loss, computed on that example
 * alone with the model's ordinary weights). For every GAN type and every discriminator without batch
 * norm, tiny models, the cpu backend: each example's gradient norm, and the clipped sum Σ_b min(1, C/‖g_b‖)·g_b
 * with C set so that some examples are clipped and some are not. First-order losses are checked on both
 * layer paths (shared/nn/perExample.ts `firstOrder`).
 */

const B = 3;

/** Tiny discriminators: 16 px, 4×4 patches (a 4×4 token grid), 2 heads, 2×2 windows; no dropout, so both computations see one function. */
function config(gan: GanType, type: DiscriminatorType, extra: { r1?: boolean } = {}): GanConfig {
  return tinyConfig(gan, {
    batchSize: B,
    nCritic: 1,
    discriminator: { type, baseChannels: 4, patchSize: 4, embedDim: 8, depth: 2, heads: 2, windowSize: 2, dropout: 0 },
    ...(extra.r1 ? { r1: { gamma: 2 } } : {}),
  });
}

function inputs(cfg: GanConfig, seed: number): DpInputs & { eps: tf.Tensor } {
  const s = cfg.imageSize;
  return {
    reals: tf.randomUniform([B, s, s, 3], -1, 1, 'float32', seed) as tf.Tensor4D,
    labels: tf.tensor1d([0, 1, 1], 'int32'),
    fakes: tf.randomUniform([B, s, s, 3], -1, 1, 'float32', seed + 1) as tf.Tensor4D,
    fakeLabels: tf.tensor1d([1, 0, 1], 'int32'),
    eps: tf.randomUniform([B, 1, 1, 1], 0, 1, 'float32', seed + 2),
  };
}

function lossOf(gan: Gan, x: DpInputs & { eps: tf.Tensor }): tf.Tensor1D {
  const { cfg, D } = gan;
  return cfg.gan === 'wgan-gp' ? wganGpDpLoss(cfg, D, x, x.eps, noAugment) : saturatingDpLoss(cfg, D, x, noAugment);
}

function slice(x: DpInputs & { eps: tf.Tensor }, i: number): DpInputs & { eps: tf.Tensor } {
  const one = <T extends tf.Tensor>(t: T) => tf.slice(t, [i], [1]) as T;
  return { reals: one(x.reals), labels: one(x.labels), fakes: one(x.fakes), fakeLabels: one(x.fakeLabels), eps: one(x.eps) };
}

function flatten(ts: readonly tf.Tensor[]): Float32Array {
  return tf.tidy(() => tf.concat(ts.map((t) => tf.reshape(t, [-1]))).dataSync() as Float32Array);
}

function relativeError(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / n);
}

const CASES: [GanType, DiscriminatorType, { r1?: boolean }][] = [
  ['acgan', 'cnn', {}],
  ['acgan', 'vit', {}],
  ['acgan', 'swin', {}],
  ['acgan', 'cnn', { r1: true }],
  ['cgan', 'cnn', {}],
  ['cgan', 'vit', {}],
  ['cgan', 'swin', {}],
  ['wgan-gp', 'cnn', {}],
  ['wgan-gp', 'resnet', {}],
  ['wgan-gp', 'vit', {}],
  ['wgan-gp', 'swin', {}],
];

describe('per-example gradients in one pass equal B single-example gradients', () => {
  it.each(CASES)('%s with the %s discriminator (%o)', (gan, type, extra = {}) => {
    const model = createGan(config(gan, type, extra));
    try {
      tf.tidy(() => {
        const vars = model.D.params.trainableVariables();
        const x = inputs(model.cfg, 11);
        // The definition: example b's loss on example b alone, differentiated with the ordinary weights.
        const naive = Array.from({ length: B }, (_, i) => {
          const { grads } = tf.variableGrads(() => tf.sum(lossOf(model, slice(x, i))) as tf.Scalar, vars);
          return vars.map((v) => grads[v.name] ?? tf.zerosLike(v));
        });
        const naiveNorms = naive.map((g) => Math.hypot(...flatten(g)));
        // Both layer paths: the copies throughout (any loss), and for first-order losses the native forward
        // pass with per-example weight gradients from a custom gradient.
        const firstOrder = gan !== 'wgan-gp' && !extra.r1;
        for (const fast of firstOrder ? [false, true] : [false]) {
        const { sum, grads } = perExampleGradients(vars, B, () => lossOf(model, x), fast);
        const norms = perExampleNorms(grads).dataSync();
        naiveNorms.forEach((n, i) => {
          expect(n).toBeGreaterThan(0);
          expect(Math.abs(norms[i] - n) / n).toBeLessThan(1e-4);
        });
        // Example b's slice of the per-example gradients is example b's own gradient, variable by variable.
        for (let i = 0; i < B; i++) {
          expect(relativeError(flatten(grads.map((g) => tf.slice(g, [i], [1]))), flatten(naive[i]))).toBeLessThan(1e-4);
        }
        // The loss vector sums to the sum of the single-example losses.
        const single = Array.from({ length: B }, (_, i) => tf.sum(lossOf(model, slice(x, i))).dataSync()[0]).reduce((a, b) => a + b, 0);
        expect(Math.abs(sum.dataSync()[0] - single) / Math.abs(single)).toBeLessThan(1e-5);
        // C between the smallest and largest norm: some examples are clipped, some are not.
        const sorted = [...naiveNorms].sort((a, b) => a - b);
        const clip = (sorted[0] + sorted[1]) / 2;
        const expected = vars.map((v, j) =>
          tf.addN(naive.map((g, i) => tf.mul(g[j], Math.min(1, clip / naiveNorms[i])))),
        );
        const got = clippedSum(grads, clipFactors(perExampleNorms(grads), clip));
        expect(relativeError(flatten(got), flatten(expected))).toBeLessThan(1e-4);
        }
      });
    } finally {
      model.dispose();
    }
  });
});

describe('per-example norms on WebGPU’s limits', () => {
  it('never bind more than 8 tensors to one kernel, however many variables (WebGPU allows 8 storage buffers per shader)', async () => {
    const grads = Array.from({ length: 20 }, (_, i) => tf.fill([3, 2, 2], i + 1));
    try {
      let norms: tf.Tensor1D | null = null;
      const info = await tf.profile(() => {
        norms = perExampleNorms(grads);
        return norms;
      });
      const widest = Math.max(...info.kernels.map((k) => k.inputShapes.length));
      expect(widest).toBeLessThanOrEqual(8);
      // Σ_i 4·(i + 1)² for i < 20, per example.
      const want = Math.sqrt(Array.from({ length: 20 }, (_, i) => 4 * (i + 1) ** 2).reduce((a, b) => a + b, 0));
      expect(Array.from(norms!.dataSync()).map((x) => x / want)).toEqual([1, 1, 1].map((x) => expect.closeTo(x, 5)));
      norms!.dispose();
    } finally {
      tf.dispose(grads);
    }
  });
});
