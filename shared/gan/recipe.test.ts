import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { GAN_TYPES, parseGanConfig, type DiscriminatorType, type GanConfigInput, type GanType } from '../config/ganConfig.ts';
import { createAdam } from '../nn/optimizer.ts';
import { randomOps } from '../nn/random.ts';
import { acganStep } from './acgan.ts';
import { cganStep } from './cgan.ts';
import type { Discriminator } from './discriminators/index.ts';
import { createGan, type Gan } from './gan.ts';
import { discriminatorTerms, generatorTerm, MODE_SEEKING_EPSILON, modeSeekingTerm, r1Penalty } from './objectives.ts';
import { acganGeneratorUpdate } from './acgan.ts';
import { cganGeneratorUpdate } from './cgan.ts';
import { sampleLatent, type GanStep, type StepContext } from './step.ts';
import { createTrainer } from './trainer.ts';
import { topSingularValue } from '../testing/topSingularValue.ts';
import { wganGpGeneratorUpdate, wganGpStep } from './wgangp.ts';

/**
 * The recipe's options inside the GAN steps: DiffAugment on every discriminator input of every GAN type
 * and discriminator, the hinge loss and R1 pinned to their formulas through the real step. The EMA has
 * its own file (ema.test.ts); the transforms theirs (augment.test.ts).
 */

const B = 4;
const STEPS: Record<GanType, (ctx: StepContext) => GanStep> = { acgan: acganStep, cgan: cganStep, 'wgan-gp': wganGpStep };

const disposables: { dispose(): void }[] = [];
afterEach(() => {
  while (disposables.length) disposables.pop()!.dispose();
});

function config(gan: GanType, type: DiscriminatorType, extra: GanConfigInput = {}) {
  return parseGanConfig({
    gan,
    imageSize: 16,
    latentDim: 8,
    generator: { baseChannels: 8 },
    discriminator: { type, baseChannels: 4, patchSize: 4, embedDim: 16, depth: 1, heads: 2, windowSize: 2, dropout: 0 },
    batchSize: B,
    nCritic: 2,
    ...extra,
  });
}

function model(cfg: ReturnType<typeof config>): Gan {
  const g = createGan(cfg);
  disposables.push(g);
  return g;
}

/** A step of the GAN type with fresh optimizers and its own seed stream (seeds start + 1, start + 2, …). */
function stepOf(gan: Gan, start: number): GanStep {
  const { optimizerG: og, optimizerD: od } = gan.cfg;
  const optG = createAdam(og.learningRate, og.beta1, og.beta2);
  const optD = createAdam(od.learningRate, od.beta1, od.beta2);
  disposables.push(optG, optD);
  let s = start;
  return STEPS[gan.cfg.gan]({ gan, optG, optD, nextSeed: () => ++s });
}

/** Reals in (−1, 1) with no exact zero, and labels 0, 1, 0, 1. */
function batch(seed = 1) {
  const images = tf.tidy(() => {
    const u = tf.randomUniform([B, 16, 16, 3], 0.05, 1, 'float32', seed);
    return tf.mul(u, tf.sub(tf.mul(tf.cast(tf.greater(tf.randomUniform([B, 16, 16, 3], 0, 1, 'float32', seed + 1), 0.5), 'float32'), 2), 1)) as tf.Tensor4D;
  });
  const labels = tf.tensor1d([0, 1, 0, 1], 'int32');
  disposables.push(images, labels);
  return { images, labels };
}

/** Record every discriminator input (values and batch size) while `run` runs. */
function recordInputs(gan: Gan, run: () => void): Float32Array[] {
  const D = gan.D as { apply: Discriminator['apply'] };
  const original = D.apply;
  const seen: Float32Array[] = [];
  D.apply = (x, labels, training) => {
    const v = x.dataSync() as Float32Array;
    const per = v.length / x.shape[0];
    for (let b = 0; b < x.shape[0]; b++) seen.push(v.slice(b * per, (b + 1) * per));
    return original(x, labels, training);
  };
  try {
    run();
  } finally {
    D.apply = original;
  }
  return seen;
}

describe('DiffAugment reaches every discriminator input, reals and fakes, in every GAN type and discriminator', () => {
  const types: DiscriminatorType[] = ['cnn', 'resnet', 'vit', 'swin'];
  for (const ganType of GAN_TYPES) {
    for (const type of types) {
      it(`${ganType} / ${type}`, () => {
        // cutout only: an augmented image has an 8 × 8 square (at least its 4 × 4 corner) of exact zeros,
        // and is otherwise the image itself; reals and the generator's tanh outputs have no zeros.
        // R1 (another pass on reals) where it applies: not WGAN-GP, not batch norm (the ResNet outside the critic).
        const withR1 = ganType !== 'wgan-gp' && type !== 'resnet';
        const r1 = withR1 ? { gamma: 1 } : null;
        const gan = model(config(ganType, type, { augment: { policy: ['cutout'] }, r1 }));
        const step = stepOf(gan, 100);
        const { images, labels } = batch();
        const reals = Array.from({ length: B }, (_, b) => (images.dataSync() as Float32Array).slice(b * 768, (b + 1) * 768));
        const seen = recordInputs(gan, () => tf.dispose(Object.values(step({ images, labels }))));
        const isAugmentedReal = (v: Float32Array) => reals.some((r) => v.every((q, i) => q === 0 || q === r[i]));
        for (const v of seen) {
          const zeros = v.filter((q) => q === 0).length;
          expect(zeros).toBeGreaterThanOrEqual(4 * 4 * 3);
          expect(zeros).toBeLessThanOrEqual(8 * 8 * 3);
        }
        const realCount = seen.filter(isAugmentedReal).length;
        if (ganType === 'wgan-gp') {
          // Per critic update: B reals and B fakes, then B interpolates in the penalty; then B fakes for G.
          expect(realCount).toBe(2 * B);
          expect(seen.length).toBe(2 * 3 * B + B);
        } else {
          // D: B reals and B fakes, R1: B reals; G: B fakes.
          expect(realCount).toBe(withR1 ? 2 * B : B);
          expect(seen.length).toBe(withR1 ? 4 * B : 3 * B);
        }
      });
    }
  }

  it('without a policy the discriminator sees the reals themselves (no zeros written)', () => {
    const gan = model(config('acgan', 'cnn'));
    const { images, labels } = batch();
    const reals = Array.from({ length: B }, (_, b) => (images.dataSync() as Float32Array).slice(b * 768, (b + 1) * 768));
    const seen = recordInputs(gan, () => tf.dispose(Object.values(stepOf(gan, 100)({ images, labels }))));
    expect(seen.filter((v) => reals.some((r) => v.every((q, i) => q === r[i]))).length).toBe(B);
    expect(seen.every((v) => v.every((q) => q !== 0))).toBe(true);
  });

  it('the same seeds give the same step; augmentation changes it', () => {
    const run = (policy: ('color' | 'translation' | 'cutout')[]) => {
      const gan = model(config('wgan-gp', 'cnn', { augment: { policy } }));
      const { images, labels } = batch();
      const l = stepOf(gan, 100)({ images, labels });
      const out = [l.dLoss.dataSync()[0], l.gLoss.dataSync()[0]];
      tf.dispose([l.dLoss, l.gLoss]);
      return out;
    };
    const all = ['color', 'translation', 'cutout'] as const;
    expect(run([...all])).toEqual(run([...all]));
    expect(run([...all])).not.toEqual(run([]));
  });
});

// ---- the loss formulas, in float64 ----
const mean = (v: ArrayLike<number>) => Array.from(v).reduce((a, b) => a + b, 0) / v.length;
const relu = (x: number) => Math.max(0, x);
const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const crossEntropy = (logits: Float32Array, k: number, labels: ArrayLike<number>) =>
  mean(Array.from(labels, (y, n) => {
    const row = Array.from(logits.slice(n * k, (n + 1) * k));
    return Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[y];
  }));

function expectClose(actual: number, expected: number, what: string) {
  expect(Math.abs(actual - expected) / Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`).toBeLessThan(1e-5);
}

describe('hinge loss and R1 (objectives.ts) against their formulas', () => {
  it('hinge: D = E[max(0, 1 − D(x))] + E[max(0, 1 + D(x̃))], G = −E[D(x̃)]', () => {
    const real = tf.tensor1d([2, 0.5, -1]);
    const fake = tf.tensor1d([-2, 0.3, 1.5]);
    const [onReal, onFake] = discriminatorTerms('hinge', real, fake);
    expect(onReal.dataSync()[0]).toBeCloseTo((0 + 0.5 + 2) / 3, 6);
    expect(onFake.dataSync()[0]).toBeCloseTo((0 + 1.3 + 2.5) / 3, 6);
    expect(generatorTerm('hinge', fake).dataSync()[0]).toBeCloseTo(0.2 / 3, 6);
    // bce: softplus(−D(x)) and softplus(D(x̃)); G softplus(−D(x̃)).
    const [br, bf] = discriminatorTerms('bce', real, fake);
    expect(br.dataSync()[0]).toBeCloseTo(mean([2, 0.5, -1].map((x) => softplus(-x))), 6);
    expect(bf.dataSync()[0]).toBeCloseTo(mean([-2, 0.3, 1.5].map(softplus)), 6);
    expect(generatorTerm('bce', fake).dataSync()[0]).toBeCloseTo(mean([-2, 0.3, 1.5].map((x) => softplus(-x))), 6);
    tf.dispose([real, fake, onReal, onFake, br, bf]);
  });

  it('R1 = γ/2 · mean over samples of Σ (∂D/∂x)², here for D(x) = Σ a⊙x²/2 + c⊙x (∇ = a⊙x + c)', () => {
    const x = tf.tensor4d([0.5, -1, 2, 0.25, 1, 1, -0.5, 3], [2, 2, 2, 1]);
    const a = tf.tensor4d([1, 2, -1, 0.5], [1, 2, 2, 1]);
    const c = tf.tensor4d([0.1, 0, -0.3, 1], [1, 2, 2, 1]);
    const score = (v: tf.Tensor4D) => tf.sum(tf.add(tf.mul(tf.mul(a, tf.square(v)), 0.5), tf.mul(c, v)), [1, 2, 3]) as tf.Tensor1D;
    // sample 1: ∇ = (0.6, −2, −2.3, 1.125), Σ∇² = 0.36 + 4 + 5.29 + 1.265625 = 10.915625
    // sample 2: ∇ = (1.1, 2, 0.2, 2.5),     Σ∇² = 1.21 + 4 + 0.04 + 6.25 = 11.5
    const gamma = 3;
    expect(r1Penalty(score, x, gamma).dataSync()[0]).toBeCloseTo((gamma / 2) * ((10.915625 + 11.5) / 2), 4);
    tf.dispose([x, a, c]);
  });

  it('R1 differentiates again, for the discriminator update: d/dθ matches finite differences', () => {
    const x = tf.randomUniform([3, 4, 4, 3], -1, 1, 'float32', 5) as tf.Tensor4D;
    const v = tf.randomNormal([1, 4, 4, 3], 0, 1, 'float32', 6);
    const r1 = (theta: tf.Tensor) => r1Penalty((y) => tf.sum(tf.mul(v, tf.sin(tf.mul(theta, y))), [1, 2, 3]) as tf.Tensor1D, x, 2);
    const analytic = tf.grad(r1)(tf.scalar(0.7)).dataSync()[0];
    const h = 1e-2;
    const at = (t: number) => tf.tidy(() => r1(tf.scalar(t)).dataSync()[0]);
    const fd = (at(0.7 + h) - at(0.7 - h)) / (2 * h);
    expect(Math.abs(fd)).toBeGreaterThan(0.1);
    expect(Math.abs(analytic - fd) / Math.abs(fd)).toBeLessThan(1e-2);
    tf.dispose([x, v]);
  });

  for (const ganType of ['acgan', 'cgan'] as const) {
    it(`${ganType} with adversarialLoss hinge: the step's D and G losses are the hinge formulas`, () => {
      const cfg = config(ganType, 'cnn', { adversarialLoss: 'hinge' });
      const gan = model(cfg);
      const fresh = model(cfg); // the same initial weights
      const { images, labels } = batch();
      const l = stepOf(gan, 500)({ images, labels });
      const [dLoss, gLoss] = [l.dLoss.dataSync()[0], l.gLoss.dataSync()[0]];
      tf.dispose([l.dLoss, l.gLoss]);
      // The step's draws: latents with seed 501, fake labels with seed 502.
      const z = randomOps().normal([B, cfg.latentDim], 0, 1, 501) as tf.Tensor2D;
      const fl = randomOps().uniformInt([B], 0, 2, 502) as tf.Tensor1D;
      const fake = fresh.G.apply(z, fl, true);
      const r = fresh.D.apply(images, labels, true);
      const f = fresh.D.apply(fake, fl, true);
      let expectedD = mean(Array.from(r.score.dataSync(), (s) => relu(1 - s))) + mean(Array.from(f.score.dataSync(), (s) => relu(1 + s)));
      if (ganType === 'acgan') expectedD += crossEntropy(r.classLogits!.dataSync() as Float32Array, 2, labels.dataSync()) + crossEntropy(f.classLogits!.dataSync() as Float32Array, 2, fl.dataSync());
      expectClose(dLoss, expectedD, 'D loss');
      // G's loss: the updated D (gan.D) on the fakes of G before its update (fresh.G).
      const g = gan.D.apply(fresh.G.apply(z, fl, true), fl, true);
      let expectedG = -mean(g.score.dataSync());
      if (ganType === 'acgan') expectedG += crossEntropy(g.classLogits!.dataSync() as Float32Array, 2, fl.dataSync());
      expectClose(gLoss, expectedG, 'G loss');
      // Not the bce loss by accident.
      const bce = mean(Array.from(r.score.dataSync(), (s) => softplus(-s))) + mean(Array.from(f.score.dataSync(), softplus));
      expect(Math.abs(bce - (ganType === 'acgan' ? expectedD - crossEntropy(r.classLogits!.dataSync() as Float32Array, 2, labels.dataSync()) - crossEntropy(f.classLogits!.dataSync() as Float32Array, 2, fl.dataSync()) : expectedD))).toBeGreaterThan(0.1);
      tf.dispose([z, fl, fake, r.score, f.score, g.score, r.classLogits, f.classLogits, g.classLogits].filter((t) => t != null) as tf.Tensor[]);
    });

    it(`${ganType} with r1: the D loss gains γ/2 · E‖∇ₓD(x)‖² on the reals`, () => {
      const gamma = 5;
      const { images, labels } = batch();
      const lossOf = (r1: { gamma: number } | null) => {
        const l = stepOf(model(config(ganType, 'cnn', { r1 })), 700)({ images, labels });
        const d = l.dLoss.dataSync()[0];
        tf.dispose([l.dLoss, l.gLoss]);
        return d;
      };
      const fresh = model(config(ganType, 'cnn'));
      const grad = tf.grad((x: tf.Tensor) => tf.sum(fresh.D.apply(x as tf.Tensor4D, labels, true).score))(images).dataSync();
      const per = grad.length / B;
      const norms2 = Array.from({ length: B }, (_, b) => Array.from(grad.slice(b * per, (b + 1) * per)).reduce((s, q) => s + q * q, 0));
      const penalty = (gamma / 2) * mean(norms2);
      expect(penalty).toBeGreaterThan(1e-3);
      expectClose(lossOf({ gamma }) - lossOf(null), penalty, 'R1 term');
    });
  }
});

/** MSGAN's term in float64: λ / (mean|x_i − x_{i+h}| / mean|z_i − z_{i+h}| + ε) over i < h = ⌊b/2⌋. */
function modeSeekingByHand(x: ArrayLike<number>, z: ArrayLike<number>, b: number, lambda: number): number {
  const h = Math.floor(b / 2);
  const gap = (v: ArrayLike<number>) => {
    const per = v.length / b;
    let s = 0;
    for (let i = 0; i < h; i++) for (let k = 0; k < per; k++) s += Math.abs(v[i * per + k] - v[(i + h) * per + k]);
    return s / (h * per);
  };
  return lambda / (gap(x) / gap(z) + 1e-5);
}

describe('mode seeking (modeSeeking, Mao et al. 2019) in every GAN type', () => {
  it('the term is λ / (r + ε) over the pairs (i, i + ⌊b/2⌋); an odd last fake and a batch of one add nothing', () => {
    // b = 5: pairs (0, 2) and (1, 3); fake 4 is in no pair, so changing it changes nothing.
    const xs = Array.from({ length: 5 * 2 * 2 * 1 }, (_, i) => Math.sin(1.7 * i + 0.3));
    const zs = Array.from({ length: 5 * 3 }, (_, i) => Math.cos(0.9 * i + 0.1) * 2);
    const value = (x: number[]) => tf.tidy(() => modeSeekingTerm(tf.tensor4d(x, [5, 2, 2, 1]), tf.tensor2d(zs, [5, 3]), 2.5).dataSync()[0]);
    const expected = modeSeekingByHand(xs, zs, 5, 2.5);
    expect(expected).toBeGreaterThan(0.5);
    expectClose(value(xs), expected, 'mode-seeking term');
    expect(value(xs.map((v, i) => (i >= 16 ? v + 3 : v)))).toBe(value(xs));
    // Identical pairs: the term is λ / ε, large but finite.
    const same = [...xs.slice(0, 8), ...xs.slice(0, 8), ...xs.slice(16)];
    expectClose(value(same) * MODE_SEEKING_EPSILON, 2.5, 'λ / ε');
    expect(tf.tidy(() => modeSeekingTerm(tf.ones([1, 2, 2, 1]) as tf.Tensor4D, tf.ones([1, 3]) as tf.Tensor2D, 1).dataSync()[0])).toBe(0);
  });

  it('its gradient with respect to the fakes matches central finite differences', () => {
    const xs = Array.from({ length: 4 * 2 * 2 * 1 }, (_, i) => Math.sin(2.3 * i + 0.7));
    const zs = Array.from({ length: 4 * 3 }, (_, i) => Math.cos(1.3 * i));
    const z = tf.tensor2d(zs, [4, 3]);
    disposables.push(z);
    const grad = tf.tidy(() => tf.grad((x: tf.Tensor) => modeSeekingTerm(x as tf.Tensor4D, z, 1.5))(tf.tensor4d(xs, [4, 2, 2, 1])).dataSync());
    const h = 1e-4;
    for (let k = 0; k < xs.length; k++) {
      const at = (d: number) => modeSeekingByHand(xs.map((v, i) => (i === k ? v + d : v)), zs, 4, 1.5);
      const numeric = (at(h) - at(-h)) / (2 * h);
      expect(Math.abs(grad[k] - numeric), `∂/∂x[${k}]: ${grad[k]} vs ${numeric}`).toBeLessThan(1e-3 * Math.max(1, Math.abs(numeric)));
    }
    expect(Math.max(...Array.from(grad, Math.abs))).toBeGreaterThan(0.01);
  });

  it('sampleLatent pairs the classes (fake i + ⌊b/2⌋ takes fake i\'s) only when it is on, and draws the same latents', () => {
    const on = config('acgan', 'cnn', { modeSeeking: { lambda: 1 } });
    const off = config('acgan', 'cnn');
    const seen = new Set<string>();
    for (let t = 0; t < 20; t++) {
      const draw = (cfg: typeof on) => {
        let s = 100 + 2 * t;
        return tf.tidy(() => {
          const { z, labels } = sampleLatent(cfg, 7, () => ++s);
          return { z: Array.from(z.dataSync()), labels: Array.from(labels.dataSync()) };
        });
      };
      const [a, b] = [draw(on), draw(off)];
      expect(a.z).toEqual(b.z);
      expect(a.labels).toHaveLength(7);
      expect(a.labels.slice(3, 6)).toEqual(a.labels.slice(0, 3));
      for (const l of [...a.labels, ...b.labels]) expect([0, 1]).toContain(l);
      seen.add(a.labels.join(''));
      // Off, the draw is the one it always was: b uniform labels from the second seed.
      expect(b.labels).toEqual(Array.from(tf.tidy(() => randomOps().uniformInt([7], 0, 2, 102 + 2 * t).dataSync())));
    }
    expect(seen.size).toBeGreaterThan(5);
  });

  for (const ganType of GAN_TYPES) {
    it(`${ganType}: the generator's loss gains λ / (r + ε) on its fakes, and its update moves with it`, () => {
      const lambda = 3;
      const { labels } = batch();
      const update = (cfg: ReturnType<typeof config>) => {
        const gan = model(cfg);
        const { optimizerG: og } = cfg;
        const optG = createAdam(og.learningRate, og.beta1, og.beta2);
        const optD = createAdam(og.learningRate, og.beta1, og.beta2);
        disposables.push(optG, optD);
        let s = 900;
        const ctx: StepContext = { gan, optG, optD, nextSeed: () => ++s };
        const z = randomOps().normal([B, cfg.latentDim], 0, 1, 77) as tf.Tensor2D;
        disposables.push(z);
        const l = ganType === 'acgan' ? acganGeneratorUpdate(ctx, z, labels) : ganType === 'cgan' ? cganGeneratorUpdate(ctx, z, labels) : wganGpGeneratorUpdate(ctx, B);
        const loss = l.dataSync()[0];
        l.dispose();
        return { loss, weights: gan.G.params.trainableVariables().flatMap((v) => Array.from(v.dataSync())) };
      };
      const cfgOn = config(ganType, 'cnn', { modeSeeking: { lambda } });
      const on = update(cfgOn);
      const off = update(config(ganType, 'cnn'));
      // The fakes of the generator before its update, on the latents and labels the update used.
      const fresh = model(cfgOn);
      let s = 900;
      const { z, labels: fl } = ganType === 'wgan-gp' ? sampleLatent(cfgOn, B, () => ++s) : { z: randomOps().normal([B, cfgOn.latentDim], 0, 1, 77) as tf.Tensor2D, labels };
      const fake = fresh.G.apply(z, fl, true);
      const term = modeSeekingByHand(fake.dataSync(), z.dataSync(), B, lambda);
      expect(term).toBeGreaterThan(0.1);
      if (ganType === 'wgan-gp') {
        // Its own draws: −E[D(G(z, ỹ), ỹ)] on the paired labels, plus the term.
        const scores = fresh.D.apply(fake, fl, true).score;
        expectClose(on.loss, -mean(scores.dataSync()) + term, 'G loss');
        scores.dispose();
      } else {
        expectClose(on.loss - off.loss, term, 'mode-seeking term in the G loss');
      }
      expect(on.weights).not.toEqual(off.weights);
      tf.dispose([z, fl, fake]);
    });
  }

  it('is off by default, changes no weight or fingerprint, and refuses a λ that is not positive, naming the field', () => {
    expect(parseGanConfig({}).modeSeeking).toBeNull();
    const a = model(config('cgan', 'cnn'));
    const b = model(config('cgan', 'cnn', { modeSeeking: { lambda: 1 } }));
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(b.spec).toEqual(a.spec);
    expect(() => parseGanConfig({ modeSeeking: { lambda: 0 } })).toThrow(/modeSeeking\.lambda/);
    expect(() => parseGanConfig({ modeSeeking: {} })).toThrow(/modeSeeking\.lambda/);
    expect(() => parseGanConfig({ modeSeeking: { lambda: 1, eps: 2 } })).toThrow(/modeSeeking/);
  });
});

describe('spectral normalisation (discriminator.spectralNorm) in every GAN type and discriminator', () => {
  const types: DiscriminatorType[] = ['cnn', 'resnet', 'vit', 'swin'];
  for (const ganType of GAN_TYPES) {
    for (const type of types) {
      it(`${ganType} / ${type}: every conv, dense and embedding weight normalised, one power iteration per step before D's update`, () => {
        const r1 = ganType !== 'wgan-gp' && type !== 'resnet' ? { gamma: 1 } : null;
        const gan = model(config(ganType, type, { discriminator: { type, baseChannels: 4, patchSize: 4, embedDim: 16, depth: 1, heads: 2, windowSize: 2, dropout: 0, spectralNorm: true }, r1 }));
        const sn = gan.D.spectralNorm!;
        const names = gan.D.params.all().map((e) => e.name);
        const matrices = names.filter((n) => /\/(kernel|table)$/.test(n));
        expect(matrices.length).toBeGreaterThan(3);
        expect(sn.size).toBe(matrices.length);
        for (const m of matrices) expect(names).toEqual(expect.arrayContaining([`${m}/sn_u`, `${m}/sn_v`]));
        // The generator is not normalised.
        expect(gan.G.params.all().some((e) => e.name.includes('sn_'))).toBe(false);

        // The order of events in two trainer steps: a power iteration, then the discriminator's passes.
        const events: string[] = [];
        const power = sn.powerIteration.bind(sn);
        sn.powerIteration = () => {
          events.push('power');
          power();
        };
        const D = gan.D as { apply: Discriminator['apply'] };
        const apply = D.apply;
        D.apply = (...args) => {
          if (events[events.length - 1] !== 'D') events.push('D');
          return apply(...args);
        };
        const trainer = createTrainer(gan, 5);
        disposables.push(trainer);
        const { images, labels } = batch();
        for (let i = 0; i < 2; i++) {
          const l = trainer.step({ images, labels });
          expect([l.dLoss.dataSync()[0], l.gLoss.dataSync()[0]].every(Number.isFinite)).toBe(true);
          tf.dispose([l.dLoss, l.gLoss]);
        }
        expect(events).toEqual(['power', 'D', 'power', 'D']);

        // Each estimate σ = vᵀWu is the weight's largest singular value (float64 reference), within 2 %.
        const sigmas = sn.sigmas();
        for (const m of matrices) {
          const v = gan.D.params.all().find((e) => e.name === m)!.variable;
          const out = v.shape[v.shape.length - 1];
          const ref = topSingularValue(v.dataSync(), v.size / out, out, 300);
          expect(Math.abs(sigmas.get(m)! / ref - 1), m).toBeLessThan(0.02);
        }
      });
    }
  }

  it('is off by default; on, it changes the fingerprint and the weight set, and round-trips through getWeights/setWeights', () => {
    expect(parseGanConfig({}).discriminator.spectralNorm).toBe(false);
    const plain = model(config('acgan', 'cnn'));
    const a = model(config('acgan', 'cnn', { discriminator: { type: 'cnn', baseChannels: 4, dropout: 0, spectralNorm: true } }));
    const b = model(config('acgan', 'cnn', { discriminator: { type: 'cnn', baseChannels: 4, dropout: 0, spectralNorm: true }, seed: 9 }));
    expect(a.fingerprint).not.toBe(plain.fingerprint);
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(a.spec.filter((s) => s.name.endsWith('/sn_u')).map((s) => s.name)).toEqual(['d/conv1/kernel/sn_u', 'd/conv2/kernel/sn_u', 'd/conv3/kernel/sn_u', 'd/conv4/kernel/sn_u', 'd/score/kernel/sn_u', 'd/classifier/kernel/sn_u']);
    // The estimates travel with the weights: b takes a's, and then computes a's σ.
    b.setWeights(a.getWeights());
    expect([...b.D.spectralNorm!.sigmas().values()]).toEqual([...a.D.spectralNorm!.sigmas().values()]);
  });
});

describe('recipe config', () => {
  it('defaults: no augmentation, no EMA, no R1; bce for ACGAN and CGAN, wasserstein for WGAN-GP', () => {
    for (const gan of ['acgan', 'cgan'] as const) {
      const c = parseGanConfig({ gan });
      expect([c.adversarialLoss, c.ema, c.r1, c.augment.policy]).toEqual(['bce', null, null, []]);
    }
    expect(parseGanConfig({ gan: 'wgan-gp' }).adversarialLoss).toBe('wasserstein');
    expect(parseGanConfig({ gan: 'cgan', adversarialLoss: 'hinge', r1: { gamma: 10 }, ema: { decay: 0.999 } })).toMatchObject({
      adversarialLoss: 'hinge',
      r1: { gamma: 10 },
      ema: { decay: 0.999 },
    });
  });

  it('refuses combinations that do not exist, naming the field (with the prefix of an enclosing config)', () => {
    expect(() => parseGanConfig({ gan: 'wgan-gp', adversarialLoss: 'hinge' })).toThrow(/adversarialLoss: wgan-gp uses the wasserstein loss, not hinge/);
    expect(() => parseGanConfig({ gan: 'acgan', adversarialLoss: 'wasserstein' })).toThrow(/adversarialLoss: acgan takes bce or hinge/);
    expect(() => parseGanConfig({ gan: 'wgan-gp', r1: { gamma: 1 } }, 'fed config', 'model')).toThrow(/model\.r1: applies to acgan and cgan only/);
    expect(() => parseGanConfig({ adversarialLoss: 'logistic' })).toThrow(/adversarialLoss/);
    expect(() => parseGanConfig({ ema: { decay: 1 } })).toThrow(/ema\.decay: must be below 1/);
    expect(() => parseGanConfig({ ema: { decay: -0.1 } })).toThrow(/ema\.decay/);
    expect(() => parseGanConfig({ ema: {} })).toThrow(/ema\.decay/);
    expect(() => parseGanConfig({ r1: { gamma: 0 } })).toThrow(/r1\.gamma/);
    expect(() => parseGanConfig({ gan: 'cgan', r1: { gamma: 1 }, discriminator: { type: 'resnet' } })).toThrow(/r1: needs a discriminator without batch norm/);
  });

  it('the defaults are off: spelling them out changes neither the fingerprint nor the step', () => {
    const a = model(config('acgan', 'cnn'));
    const b = model(config('acgan', 'cnn', { adversarialLoss: 'bce', augment: { policy: [] }, ema: null, r1: null, modeSeeking: null }));
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(a.spec.some((s) => s.name.startsWith('ema/'))).toBe(false);
    const { images, labels } = batch();
    const [ta, tb] = [createTrainer(a), createTrainer(b)];
    disposables.push(ta, tb);
    const la = ta.step({ images, labels });
    const lb = tb.step({ images, labels });
    expect([la.dLoss.dataSync()[0], la.gLoss.dataSync()[0]]).toEqual([lb.dLoss.dataSync()[0], lb.gLoss.dataSync()[0]]);
    tf.dispose([la.dLoss, la.gLoss, lb.dLoss, lb.gLoss]);
  });
});
