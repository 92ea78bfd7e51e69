import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import type { GanConfig, GanType } from '../config/ganConfig.ts';
import { createAdam } from '../nn/optimizer.ts';
import { ParamStore } from '../nn/params.ts';
import type { WeightSet } from '../weights.ts';
import { acganStep } from './acgan.ts';
import { cganStep } from './cgan.ts';
import { BACKBONES } from './discriminators/index.ts';
import { createHead } from './discriminators/heads.ts';
import { createGan, type Gan } from './gan.ts';
import type { GanStep, StepContext } from './step.ts';
import { recordDraws, snapshottingOptimizer, type Draw } from './testProbes.ts';
import { tinyConfig } from './testConfig.ts';
import { wganGpStep } from './wgangp.ts';

/**
 * Each GAN type's D and G losses, as the real step returns them, against the loss formulas written out
 * here in float64 JavaScript. The step runs on a fixed batch; the test records the latents, labels and
 * penalty weights it drew (testProbes.recordDraws) and the weights each loss was computed with (a
 * snapshot whenever the step calls an optimizer). A reference model with those weights gives the
 * discriminator's features for the same inputs; the heads (real/fake logit, class logits, projection,
 * critic value) and the losses are then computed in JavaScript.
 *
 * The discriminator's dropout is 0 here, so its outputs are a function of its inputs (the formulas do not
 * involve dropout; the CNN critic has none anyway). Each test also computes mutants of its formulas (a
 * swapped target, a flipped sign, a dropped term, mixed-up labels, ε and 1 − ε swapped) and checks that
 * the fixed batch and weights set each of them far apart from the formula, so such a change in the
 * source would fail the test.
 */

const STEPS: Record<GanType, (ctx: StepContext) => GanStep> = { acgan: acganStep, cgan: cganStep, 'wgan-gp': wganGpStep };

const restores: (() => void)[] = [];
afterEach(() => {
  while (restores.length) restores.pop()!();
});

// ---- the formulas, in float64 ----
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
/** Binary cross-entropy of probability σ(x) against target t: −[t·ln σ(x) + (1 − t)·ln(1 − σ(x))], mean over the batch. */
const bce = (logits: number[], t: 0 | 1) => mean(logits.map((x) => -(t * Math.log(sigmoid(x)) + (1 - t) * Math.log(1 - sigmoid(x)))));
/** Cross-entropy of the softmax of each row against its label, mean over the batch. */
const crossEntropy = (rows: number[][], labels: ArrayLike<number>) =>
  mean(rows.map((row, n) => Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[labels[n]]));

/** The discriminator's features from a separately built backbone, and its heads written out in JavaScript. */
function reference(cfg: GanConfig) {
  const gan = createGan(cfg);
  const params = new ParamStore('d', cfg.seed + 1);
  const backbone = BACKBONES[cfg.discriminator.type]!({ cfg, params, critic: cfg.gan === 'wgan-gp' });
  createHead(cfg.gan, params, backbone.featureDim, cfg.classes.length); // registers the head's weights under their names
  const F = backbone.featureDim;
  const K = cfg.classes.length;
  let w = new Map<string, Float32Array>();
  return {
    gan,
    load(ws: WeightSet) {
      gan.setWeights(ws);
      params.write(ws.tensors.filter((t) => t.name.startsWith('d/')));
      w = new Map(ws.tensors.map((t) => [t.name, t.data]));
    },
    /** Real/fake logit or critic value: w·h + b, plus ⟨E[y], h⟩ for the projection heads (CGAN, WGAN-GP). */
    score(x: tf.Tensor4D, labels: ArrayLike<number>, projection = true): number[] {
      const h = tf.tidy(() => backbone.features(x, true)).dataSync();
      const kernel = w.get('d/score/kernel')!;
      const bias = w.get('d/score/bias')![0];
      const table = projection ? w.get('d/projection/table') : undefined;
      return Array.from({ length: x.shape[0] }, (_, n) => {
        let s = bias;
        for (let f = 0; f < F; f++) s += h[n * F + f] * (kernel[f] + (table ? table[labels[n] * F + f] : 0));
        return s;
      });
    },
    /** ACGAN's class logits: h·C + c. */
    classLogits(x: tf.Tensor4D): number[][] {
      const h = tf.tidy(() => backbone.features(x, true)).dataSync();
      const kernel = w.get('d/classifier/kernel')!;
      const bias = w.get('d/classifier/bias')!;
      return Array.from({ length: x.shape[0] }, (_, n) =>
        Array.from({ length: K }, (_, k) => {
          let s = bias[k];
          for (let f = 0; f < F; f++) s += h[n * F + f] * kernel[f * K + k];
          return s;
        }),
      );
    },
    fake(z: Draw, labels: Draw): tf.Tensor4D {
      return tf.tidy(() => gan.G.apply(tf.tensor2d(z.values as Float32Array, z.shape as [number, number]), tf.tensor1d(labels.values as Int32Array, 'int32'), true));
    },
    dispose() {
      gan.dispose();
      params.dispose();
    },
  };
}

interface Run {
  cfg: GanConfig;
  images: tf.Tensor4D;
  labels: Int32Array;
  dLoss: number;
  gLoss: number;
  draws: Draw[];
  /** Weights at each optimizer call, i.e. the weights each loss was computed with. */
  dSnaps: WeightSet[];
  gSnaps: WeightSet[];
}

const SCALE: Record<GanType, { kernel: number; projection: number }> = {
  acgan: { kernel: 10, projection: 1 },
  cgan: { kernel: 10, projection: 200 },
  'wgan-gp': { kernel: 0.1, projection: 2 },
};

/** One real step of `ganType` on a fixed batch, recording its draws and the weights of each loss. */
function runStep(ganType: GanType): Run & { gan: Gan } {
  const cfg = tinyConfig(ganType, { discriminator: { baseChannels: 4, dropout: 0 } });
  const gan = createGan(cfg);
  // Fixed weights whose outputs are well away from 0 and from each other, so that a swapped target, a
  // flipped sign or a dropped term changes the losses by far more than float32 rounding (checked below).
  // The critic's head is scaled down instead: its gradient norms are then near 1, and the penalty does
  // not dwarf the Wasserstein term.
  const scale = SCALE[ganType];
  const start = gan.getWeights();
  gan.setWeights({
    ...start,
    tensors: start.tensors.map((t) => {
      if (t.name === 'd/score/bias') return { ...t, data: Float32Array.of(0.4) };
      if (t.name === 'd/classifier/bias') return { ...t, data: Float32Array.from(t.data, (_, k) => 1 - 2 * k) };
      if (t.name === 'd/score/kernel' || t.name === 'd/classifier/kernel') return { ...t, data: t.data.map((v) => scale.kernel * v) };
      if (t.name === 'd/projection/table') return { ...t, data: t.data.map((v) => scale.projection * v) };
      return t;
    }),
  });
  // Reals in [−1, 1]: a vertical ramp with seeded noise, unlike the untrained generator's near-grey fakes.
  const images = tf.tidy(() => tf.mul(tf.randomUniform([8, 16, 16, 3], 0.5, 1, 'float32', 11), tf.linspace(-1, 1, 16).reshape([1, 16, 1, 1]))) as tf.Tensor4D;
  // Unbalanced, so that a class bias does not cancel out when labels are mixed up.
  const labels = Int32Array.of(1, 1, 0, 1, 1, 1, 1, 1);
  const dSnaps: WeightSet[] = [];
  const gSnaps: WeightSet[] = [];
  const { optimizerG: og, optimizerD: od } = cfg;
  const optG = snapshottingOptimizer(createAdam(og.learningRate, og.beta1, og.beta2), () => gan.getWeights(), gSnaps);
  const optD = snapshottingOptimizer(createAdam(od.learningRate, od.beta1, od.beta2), () => gan.getWeights(), dSnaps);
  let seed = 1000;
  const step = STEPS[ganType]({ gan, optG, optD, nextSeed: () => ++seed });
  const rec = recordDraws();
  restores.push(rec.restore);
  const labelTensor = tf.tensor1d(labels, 'int32');
  const out = step({ images, labels: labelTensor });
  rec.restore();
  const run = { cfg, gan, images, labels, dLoss: out.dLoss.dataSync()[0], gLoss: out.gLoss.dataSync()[0], draws: rec.draws, dSnaps, gSnaps };
  tf.dispose([out.dLoss, out.gLoss, labelTensor]);
  optG.dispose();
  optD.dispose();
  return run;
}

const draws = (run: Run, kind: Draw['kind']) => run.draws.filter((d) => d.kind === kind);

const tolerance = (want: number) => 1e-5 * Math.max(1, Math.abs(want));

function expectClose(got: number, want: number, what: string) {
  expect(Math.abs(got - want), `${what}: step ${got}, formula ${want}`).toBeLessThan(tolerance(want));
}

/**
 * The batch and weights make each mistake visible: every mutant of the formula (a swapped target, a
 * flipped sign, a dropped term, mixed-up labels) differs from it by over 100 times the tolerance.
 */
function expectMutantsVisible(want: number, mutants: Record<string, number>) {
  for (const [what, m] of Object.entries(mutants)) expect(Math.abs(m - want), `mutant "${what}": ${m} vs ${want}`).toBeGreaterThan(100 * tolerance(want));
}

describe('ACGAN losses', () => {
  it('D: BCE(real→1) + BCE(fake→0) + CE(class|real, y) + CE(class|fake, ỹ);  G: BCE(fake→1) + CE(class|fake, ỹ)', () => {
    const run = runStep('acgan');
    const ref = reference(run.cfg);
    const [z] = draws(run, 'normal');
    const [fakeLabels] = draws(run, 'uniformInt');
    expect(run.dSnaps).toHaveLength(1);
    expect(run.gSnaps).toHaveLength(1);

    // Discriminator update: the weights before the step.
    ref.load(run.dSnaps[0]);
    const fake = ref.fake(z, fakeLabels);
    const r = ref.score(run.images, run.labels);
    const f = ref.score(fake, fakeLabels.values);
    const rc = ref.classLogits(run.images);
    const fc = ref.classLogits(fake);
    const y = run.labels;
    const yFake = fakeLabels.values;
    const dRef = bce(r, 1) + bce(f, 0) + crossEntropy(rc, y) + crossEntropy(fc, yFake);
    expectClose(run.dLoss, dRef, 'D loss');
    expectMutantsVisible(dRef, {
      'real target 0': bce(r, 0) + bce(f, 0) + crossEntropy(rc, y) + crossEntropy(fc, yFake),
      'fake target 1': bce(r, 1) + bce(f, 1) + crossEntropy(rc, y) + crossEntropy(fc, yFake),
      'targets swapped': bce(r, 0) + bce(f, 1) + crossEntropy(rc, y) + crossEntropy(fc, yFake),
      'no real BCE': bce(f, 0) + crossEntropy(rc, y) + crossEntropy(fc, yFake),
      'no fake BCE': bce(r, 1) + crossEntropy(rc, y) + crossEntropy(fc, yFake),
      'no real CE': bce(r, 1) + bce(f, 0) + crossEntropy(fc, yFake),
      'no fake CE': bce(r, 1) + bce(f, 0) + crossEntropy(rc, y),
      'CE subtracted': bce(r, 1) + bce(f, 0) - crossEntropy(rc, y) - crossEntropy(fc, yFake),
      'reals classed with the fake labels': bce(r, 1) + bce(f, 0) + crossEntropy(rc, yFake) + crossEntropy(fc, yFake),
      'fakes classed with the real labels': bce(r, 1) + bce(f, 0) + crossEntropy(rc, y) + crossEntropy(fc, y),
    });

    // Generator update: the discriminator after its update, the generator before its own.
    const zG = draws(run, 'normal').at(-1)!;
    const labelsG = draws(run, 'uniformInt').at(-1)!;
    ref.load(run.gSnaps[0]);
    const fakeG = ref.fake(zG, labelsG);
    const fg = ref.score(fakeG, labelsG.values);
    const fgc = ref.classLogits(fakeG);
    const gRef = bce(fg, 1) + crossEntropy(fgc, labelsG.values);
    expectClose(run.gLoss, gRef, 'G loss');
    expectMutantsVisible(gRef, {
      'target 0': bce(fg, 0) + crossEntropy(fgc, labelsG.values),
      'no BCE': crossEntropy(fgc, labelsG.values),
      'no CE': bce(fg, 1),
      'CE subtracted': bce(fg, 1) - crossEntropy(fgc, labelsG.values),
      'classed with the real labels': bce(fg, 1) + crossEntropy(fgc, y),
    });
    tf.dispose([fake, fakeG, run.images]);
    ref.dispose();
    run.gan.dispose();
  });
});

describe('CGAN losses', () => {
  it('D: BCE(D(x, y)→1) + BCE(D(G(z, ỹ), ỹ)→0);  G: BCE(D(G(z, ỹ), ỹ)→1), D(x, y) = w·h + b + ⟨E[y], h⟩', () => {
    const run = runStep('cgan');
    const ref = reference(run.cfg);
    const [z] = draws(run, 'normal');
    const [fakeLabels] = draws(run, 'uniformInt');
    expect(run.dSnaps).toHaveLength(1);
    expect(run.gSnaps).toHaveLength(1);

    ref.load(run.dSnaps[0]);
    const fake = ref.fake(z, fakeLabels);
    const r = ref.score(run.images, run.labels);
    const f = ref.score(fake, fakeLabels.values);
    const dRef = bce(r, 1) + bce(f, 0);
    expectClose(run.dLoss, dRef, 'D loss');
    expectMutantsVisible(dRef, {
      'real target 0': bce(r, 0) + bce(f, 0),
      'fake target 1': bce(r, 1) + bce(f, 1),
      'targets swapped': bce(r, 0) + bce(f, 1),
      'no real term': bce(f, 0),
      'no fake term': bce(r, 1),
      'no projection': bce(ref.score(run.images, run.labels, false), 1) + bce(ref.score(fake, fakeLabels.values, false), 0),
      'reals projected on the fake labels': bce(ref.score(run.images, fakeLabels.values), 1) + bce(f, 0),
      'fakes projected on the real labels': bce(r, 1) + bce(ref.score(fake, run.labels), 0),
    });

    const zG = draws(run, 'normal').at(-1)!;
    const labelsG = draws(run, 'uniformInt').at(-1)!;
    ref.load(run.gSnaps[0]);
    const fakeG = ref.fake(zG, labelsG);
    const fg = ref.score(fakeG, labelsG.values);
    const gRef = bce(fg, 1);
    expectClose(run.gLoss, gRef, 'G loss');
    expectMutantsVisible(gRef, {
      'target 0': bce(fg, 0),
      'no projection': bce(ref.score(fakeG, labelsG.values, false), 1),
      'projected on the real labels': bce(ref.score(fakeG, run.labels), 1),
    });
    tf.dispose([fake, fakeG, run.images]);
    ref.dispose();
    run.gan.dispose();
  });
});

describe('WGAN-GP losses', () => {
  it('critic: mean D(x̃, y) − mean D(x, y) + λ·mean((‖∇D(x̂, y)‖ − 1)²), x̂ = εx + (1 − ε)x̃;  G: −mean D(G(z, ỹ), ỹ)', () => {
    const run = runStep('wgan-gp');
    const { nCritic, gpLambda } = run.cfg;
    const ref = reference(run.cfg);
    // Draws: per critic update its noise z and the penalty's ε; then the generator's noise and labels.
    const zs = draws(run, 'normal');
    const eps = draws(run, 'uniform');
    expect(zs).toHaveLength(nCritic + 1);
    expect(eps).toHaveLength(nCritic);
    expect(run.dSnaps).toHaveLength(nCritic);
    expect(run.gSnaps).toHaveLength(1);

    // The step returns the last critic update's loss, computed with the weights before that update.
    ref.load(run.dSnaps[nCritic - 1]);
    const realLabels = { kind: 'uniformInt', shape: [8], values: run.labels } as Draw;
    const fake = ref.fake(zs[nCritic - 1], realLabels);
    const cr = ref.score(run.images, run.labels);
    const cf = ref.score(fake, run.labels);
    const wasserstein = mean(cf) - mean(cr);
    const e = eps[nCritic - 1].values;
    expect(eps[nCritic - 1].shape).toEqual([8, 1, 1, 1]);
    const real = run.images.dataSync();
    const fk = fake.dataSync();
    const per = real.length / 8;
    const labelTensor = tf.tensor1d(run.labels, 'int32');
    // ∇ₓD per sample (every critic is per sample, so the gradient of the batch sum is each sample's own).
    const gradNorms = (x: tf.Tensor4D) => {
      const g = tf.grad((v: tf.Tensor) => tf.sum(ref.gan.D.apply(v as tf.Tensor4D, labelTensor, true).score))(x);
      const d = g.dataSync() as Float32Array;
      g.dispose();
      return Array.from({ length: 8 }, (_, n) => Math.sqrt(d.slice(n * per, (n + 1) * per).reduce((s, v) => s + v * v, 0)));
    };
    const interpolate = (a: Float32Array, b: Float32Array, w: ArrayLike<number>) => tf.tensor4d(Float32Array.from(a, (v, i) => w[Math.floor(i / per)] * v + (1 - w[Math.floor(i / per)]) * b[i]), run.images.shape);
    const xHat = interpolate(real as Float32Array, fk as Float32Array, e);
    const norms = gradNorms(xHat);
    const penalty = gpLambda * mean(norms.map((g) => (g - 1) ** 2));
    const dRef = wasserstein + penalty;
    expectClose(run.dLoss, dRef, 'critic loss');
    const swapped = interpolate(real as Float32Array, fk as Float32Array, Array.from(e, (v) => 1 - v));
    expectMutantsVisible(dRef, {
      'Wasserstein sign flipped': -wasserstein + penalty,
      'no Wasserstein term': penalty,
      'no penalty': wasserstein,
      'penalty without λ': wasserstein + mean(norms.map((g) => (g - 1) ** 2)),
      'penalty on ‖∇‖² (no − 1)': wasserstein + gpLambda * mean(norms.map((g) => g ** 2)),
      'penalty on |‖∇‖ − 1| (not squared)': wasserstein + gpLambda * mean(norms.map((g) => Math.abs(g - 1))),
      'ε and 1 − ε swapped': wasserstein + gpLambda * mean(gradNorms(swapped).map((g) => (g - 1) ** 2)),
      'penalty at the fakes': wasserstein + gpLambda * mean(gradNorms(fake).map((g) => (g - 1) ** 2)),
    });
    swapped.dispose();

    const zG = zs[nCritic];
    const [labelsG] = draws(run, 'uniformInt');
    ref.load(run.gSnaps[0]);
    const fakeG = ref.fake(zG, labelsG);
    const cg = ref.score(fakeG, labelsG.values);
    const gRef = -mean(cg);
    expectClose(run.gLoss, gRef, 'G loss');
    expectMutantsVisible(gRef, {
      'sign flipped': mean(cg),
      'no projection': -mean(ref.score(fakeG, labelsG.values, false)),
      'projected on the real labels': -mean(ref.score(fakeG, run.labels)),
    });
    tf.dispose([fake, fakeG, xHat, labelTensor, run.images]);
    ref.dispose();
    run.gan.dispose();
  });
});
