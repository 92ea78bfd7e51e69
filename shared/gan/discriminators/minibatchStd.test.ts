import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { GAN_TYPES, parseGanConfig, type DiscriminatorType, type GanConfigInput } from '../../config/ganConfig.ts';
import { parseFedConfig } from '../../config/fedConfig.ts';
import { createGan, type Gan } from '../gan.ts';
import { createTrainer } from '../trainer.ts';
import { MINIBATCH_STD_EPSILON, minibatchStdFeature } from './minibatchStd.ts';

/** Float64 reference: f with one more column, mean_j sqrt(Var_b f[b, j] + ε) (population variance). */
function reference(f: number[][]): number[][] {
  const b = f.length;
  const n = f[0].length;
  let s = 0;
  for (let j = 0; j < n; j++) {
    const mean = f.reduce((a, r) => a + r[j], 0) / b;
    const v = f.reduce((a, r) => a + (r[j] - mean) ** 2, 0) / b;
    s += Math.sqrt(v + MINIBATCH_STD_EPSILON);
  }
  return f.map((r) => [...r, s / n]);
}

const rows = (t: tf.Tensor2D) => t.arraySync();
const F = [
  [0.3, -1.2, 2.0],
  [1.1, 0.4, -0.5],
  [-0.7, 0.9, 0.25],
  [0.05, -0.3, 1.5],
];
const W = [
  [0.5, -0.25, 1.0, 2.0],
  [-1.0, 0.75, 0.3, -0.5],
  [0.2, 0.1, -0.6, 1.5],
  [0.8, -0.9, 0.4, 0.7],
];
const loss64 = (f: number[][]) => reference(f).reduce((a, r, b) => a + r.reduce((q, v, j) => q + v * W[b][j], 0), 0);

describe('minibatch standard deviation (discriminator.minibatchStd)', () => {
  it('appends the mean over features of their standard deviation across the batch, the same for every sample', () => {
    expect(rows(minibatchStdFeature(tf.tensor2d([[1, 2], [3, 6]])))).toEqual([
      [1, 2, expect.closeTo(1.5, 6)],
      [3, 6, expect.closeTo(1.5, 6)],
    ]);
    const got = rows(minibatchStdFeature(tf.tensor2d(F)));
    const want = reference(F);
    got.forEach((r, b) => r.forEach((v, j) => expect(Math.abs(v - want[b][j]), `[${b}, ${j}]`).toBeLessThan(1e-6)));
  });

  it('its gradient matches float64 central differences (every sample reaches every other through the statistic)', () => {
    const w = tf.tensor2d(W);
    const g = tf.grad((f: tf.Tensor) => tf.sum(tf.mul(minibatchStdFeature(f as tf.Tensor2D), w)))(tf.tensor2d(F)).arraySync() as number[][];
    for (let b = 0; b < 4; b++)
      for (let j = 0; j < 3; j++) {
        const up = F.map((r) => [...r]);
        const down = F.map((r) => [...r]);
        up[b][j] += 1e-6;
        down[b][j] -= 1e-6;
        expect(Math.abs(g[b][j] - (loss64(up) - loss64(down)) / 2e-6), `[${b}, ${j}]`).toBeLessThan(1e-4);
      }
    w.dispose();
  });

  it('differentiates twice (the gradient penalty and R1 do): the gradient of ‖∇f‖² matches central differences', () => {
    const w = tf.tensor2d(W);
    // h(f) = Σ (∂L/∂f)², L = Σ w ⊙ mbstd(f): first order in tfjs, its gradient by tfjs (second order) and by differences of h.
    const h = (f: tf.Tensor) => tf.sum(tf.square(tf.grad((v: tf.Tensor) => tf.sum(tf.mul(minibatchStdFeature(v as tf.Tensor2D), w)))(f)));
    const hx = (f: number[][]) => h(tf.tensor2d(f)).dataSync()[0];
    const g = tf.grad(h)(tf.tensor2d(F)).arraySync() as number[][];
    for (const [b, j] of [[0, 0], [1, 2], [3, 1]]) {
      const up = F.map((r) => [...r]);
      const down = F.map((r) => [...r]);
      up[b][j] += 1e-2;
      down[b][j] -= 1e-2;
      const fd = (hx(up) - hx(down)) / 2e-2;
      expect(Math.abs(g[b][j] - fd), `[${b}, ${j}]: ${g[b][j]} vs ${fd}`).toBeLessThan(2e-2 * Math.max(1, Math.abs(fd)));
    }
    w.dispose();
  });
});

describe('a discriminator with minibatch standard deviation', () => {
  const made: Gan[] = [];
  afterEach(() => made.splice(0).forEach((g) => g.dispose()));
  const make = (extra: GanConfigInput) => {
    const g = createGan(parseGanConfig({ imageSize: 16, latentDim: 8, batchSize: 4, nCritic: 2, generator: { baseChannels: 8 }, ...extra }));
    made.push(g);
    return g;
  };
  const disc = (type: DiscriminatorType, minibatchStd: boolean) => ({ type, baseChannels: 4, patchSize: 4, embedDim: 16, depth: 1, heads: 2, windowSize: 2, dropout: 0, minibatchStd });

  it('one more feature into the heads, a new fingerprint, and scores that depend on the rest of the batch', () => {
    const plain = make({ gan: 'cgan', discriminator: disc('cnn', false) });
    const mb = make({ gan: 'cgan', discriminator: disc('cnn', true) });
    expect(plain.D.perSample).toBe(true);
    expect(mb.D.perSample).toBe(false);
    expect(mb.fingerprint).not.toBe(plain.fingerprint);
    const shape = (g: Gan, name: string) => g.spec.find((s) => s.name === name)!.shape;
    const plainScore = shape(plain, 'd/score/kernel');
    expect(shape(mb, 'd/score/kernel')).toEqual([plainScore[0] + 1, ...plainScore.slice(1)]);
    const x = tf.randomUniform([3, 16, 16, 3], -1, 1, 'float32', 4) as tf.Tensor4D;
    const other = tf.concat([x.slice([0], [1]), tf.randomUniform([2, 16, 16, 3], -1, 1, 'float32', 5)]) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 1, 0], 'int32');
    const first = (g: Gan, v: tf.Tensor4D) => g.D.apply(v, labels, false).score.dataSync()[0];
    // The first tile is the same in both batches: only its batch-mates differ.
    expect(first(plain, x)).toBeCloseTo(first(plain, other), 6);
    expect(Math.abs(first(mb, x) - first(mb, other))).toBeGreaterThan(1e-5);
    tf.dispose([x, other, labels]);
  });

  for (const gan of GAN_TYPES) {
    for (const type of ['cnn', 'vit'] as DiscriminatorType[]) {
      it(`${gan} / ${type}: trains (finite losses, the discriminator's weights move)`, () => {
        const g = make({ gan, discriminator: disc(type, true) });
        const trainer = createTrainer(g, 3);
        const before = g.D.params.read().map((t) => Array.from(t.data));
        const images = tf.randomUniform([4, 16, 16, 3], -1, 1, 'float32', 6) as tf.Tensor4D;
        const labels = tf.tensor1d([0, 1, 0, 1], 'int32');
        const r = trainer.step({ images, labels });
        expect(Number.isFinite(r.dLoss.dataSync()[0]) && Number.isFinite(r.gLoss.dataSync()[0])).toBe(true);
        tf.dispose([r.dLoss, r.gLoss]);
        const after = g.D.params.read().map((t) => Array.from(t.data));
        expect(after.some((a, i) => a.some((v, k) => v !== before[i][k]))).toBe(true);
        trainer.dispose();
        tf.dispose([images, labels]);
      });
    }
  }

  it('is off by default, and differential privacy refuses it, naming the field', () => {
    expect(parseGanConfig({}).discriminator.minibatchStd).toBe(false);
    expect(() => parseFedConfig({ privacy: { dp: { enabled: true, noiseMultiplier: 1 } }, model: { gan: 'wgan-gp', discriminator: { minibatchStd: true } } })).toThrow(
      /model\.discriminator\.minibatchStd: differential privacy cannot train a discriminator with minibatch standard deviation/,
    );
  });
});
