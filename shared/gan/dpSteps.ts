import * as tf from '@tensorflow/tfjs-core';
import type { GanConfig } from '../config/ganConfig.ts';
import { randomOps, type SeedSource } from '../nn/random.ts';
import { checkDpDiscriminator, dpUpdate } from '../privacy/dpSgd.ts';
import { acganGeneratorUpdate } from './acgan.ts';
import type { Augment } from './augment.ts';
import { cganGeneratorUpdate } from './cgan.ts';
import type { Discriminator } from './discriminators/index.ts';
import { saturatingLoss, type SaturatingLoss } from './objectives.ts';
import { sampleLatent, stepAugment, stepDropoutSeed, type Batch, type GanStep, type StepContext } from './step.ts';
import { wganGpGeneratorUpdate } from './wgangp.ts';

/**
 * The GAN steps under differential privacy (StepContext.dp): the discriminator's update is DP-SGD
 * (shared/privacy/dpSgd.ts), the generator's is the ordinary one (it reads no tile).
 *
 * One example is real tile b with everything of the discriminator's loss paired with it: fake b (generated
 * for this step, in a batch of the same size), and for WGAN-GP the penalty's interpolate between real b
 * and fake b. The per-example losses below sum, over the batch, to b times the ordinary step's loss (their
 * mean is the loss the non-DP step minimises), so with clipping off and no noise the DP step is the
 * ordinary step. Reals and fakes go through the discriminator as two passes (the per-example weights
 * pair example b of each with copy b), each through the config's augmentation as one call on
 * [reals; fakes], as realFakePass does.
 */

/** What a per-example discriminator loss reads: reals and their labels, the paired fakes and their labels. */
export interface DpInputs {
  reals: tf.Tensor4D;
  labels: tf.Tensor1D;
  fakes: tf.Tensor4D;
  fakeLabels: tf.Tensor1D;
}

function scoresOf(D: Discriminator, x: DpInputs, augment: Augment, dropoutSeed: SeedSource | undefined) {
  const [r, f] = tf.split(augment(tf.concat([x.reals, x.fakes])), 2) as [tf.Tensor4D, tf.Tensor4D];
  return { real: D.apply(r, x.labels, true, dropoutSeed), fake: D.apply(f, x.fakeLabels, true, dropoutSeed) };
}

/** Per-example adversarial terms of ACGAN and CGAN: softplus(−D(x_b)) + softplus(D(x̃_b)), or the hinge's. */
function adversarialPerExample(kind: SaturatingLoss, real: tf.Tensor1D, fake: tf.Tensor1D): tf.Tensor1D {
  if (kind === 'hinge') return tf.add(tf.relu(tf.sub(1, real)), tf.relu(tf.add(1, fake)));
  return tf.add(tf.softplus(tf.neg(real)), tf.softplus(fake));
}

/** Per-example softmax cross-entropy of integer labels: [B]. */
function crossEntropyPerExample(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.neg(tf.sum(tf.mul(tf.oneHot(labels, logits.shape[1]), tf.logSoftmax(logits)), 1));
}

/** R1 per example: γ/2·‖∇ₓD(T(x_b), y_b)‖² on the un-augmented reals. */
function r1PerExample(D: Discriminator, x: DpInputs, augment: Augment, dropoutSeed: SeedSource | undefined, gamma: number): tf.Tensor1D {
  const g = tf.grad((r: tf.Tensor) => tf.sum(D.apply(augment(r as tf.Tensor4D), x.labels, true, dropoutSeed).score))(x.reals);
  return tf.mul(tf.sum(tf.square(g), [1, 2, 3]), gamma / 2);
}

/**
 * The discriminator's loss of each example, [B], for ACGAN and CGAN: the adversarial terms on real b and
 * fake b, ACGAN's class cross-entropies on both, and R1 on real b when the config asks for it.
 */
export function saturatingDpLoss(cfg: GanConfig, D: Discriminator, x: DpInputs, augment: Augment, dropoutSeed?: SeedSource): tf.Tensor1D {
  const { real, fake } = scoresOf(D, x, augment, dropoutSeed);
  const terms = [adversarialPerExample(saturatingLoss(cfg.adversarialLoss), real.score, fake.score)];
  if (cfg.gan === 'acgan') terms.push(crossEntropyPerExample(real.classLogits!, x.labels), crossEntropyPerExample(fake.classLogits!, x.fakeLabels));
  if (cfg.r1) terms.push(r1PerExample(D, x, augment, dropoutSeed, cfg.r1.gamma));
  return tf.addN(terms) as tf.Tensor1D;
}

/**
 * The critic's loss of each example, [B], for WGAN-GP: D(x̃_b) − D(x_b) + λ(‖∇_x̂ D(T(x̂_b))‖₂ − 1)², with
 * x̂_b = ε_b·x_b + (1 − ε_b)·x̃_b and `eps` [B, 1, 1, 1] (drawn by the caller, as gradientPenalty draws it).
 */
export function wganGpDpLoss(cfg: GanConfig, D: Discriminator, x: DpInputs, eps: tf.Tensor, augment: Augment, dropoutSeed?: SeedSource): tf.Tensor1D {
  const { real, fake } = scoresOf(D, x, augment, dropoutSeed);
  const xHat = tf.add(tf.mul(eps, x.reals), tf.mul(tf.sub(1, eps), x.fakes)) as tf.Tensor4D;
  const g = tf.grad((h: tf.Tensor) => tf.sum(D.apply(augment(h as tf.Tensor4D), x.labels, true, dropoutSeed).score))(xHat);
  const norm = tf.sqrt(tf.add(tf.sum(tf.square(g), [1, 2, 3]), 1e-12));
  return tf.add(tf.sub(fake.score, real.score), tf.mul(tf.square(tf.sub(norm, 1)), cfg.gpLambda)) as tf.Tensor1D;
}

/** The generator's batch under DP: the expected batch size, rounded, at least 1. */
function generatorBatch(batch: Batch): number {
  return Math.max(1, Math.round(batch.expectedSize ?? batch.images.shape[0]));
}

function requireDp(ctx: StepContext) {
  const dp = ctx.dp;
  if (!dp) throw new Error('a DP step needs StepContext.dp');
  checkDpDiscriminator(ctx.gan.D.perSample, ctx.gan.cfg);
  return dp;
}

/** ACGAN or CGAN with a DP-SGD discriminator update, then the ordinary generator update. */
export function saturatingDpStep(ctx: StepContext): GanStep {
  const dp = requireDp(ctx);
  const { gan, optD, nextSeed } = ctx;
  const { G, D, cfg } = gan;
  const augment = stepAugment(ctx);
  const dropoutSeed = stepDropoutSeed(ctx);
  const dVars = D.params.trainableVariables();
  const noiseSeed = ctx.dpNoiseSeed ?? nextSeed;
  const generatorUpdate = cfg.gan === 'acgan' ? acganGeneratorUpdate : cganGeneratorUpdate;
  return (batch) =>
    tf.tidy(() => {
      const { images, labels } = batch;
      const b = images.shape[0];
      const expected = batch.expectedSize ?? b;
      let loss = () => tf.zeros([0]) as tf.Tensor1D;
      if (b > 0) {
        const { z, labels: fakeLabels } = sampleLatent(cfg, b, nextSeed);
        const fakes = G.apply(z, fakeLabels, true, { dropoutSeed });
        loss = () => saturatingDpLoss(cfg, D, { reals: images, labels, fakes, fakeLabels }, augment, dropoutSeed);
      }
      // First order unless R1 differentiates the discriminator itself (perExampleGradients).
      const dLoss = dpUpdate(optD, dVars, b, expected, loss, dp, noiseSeed, !cfg.r1);
      const { z, labels: fakeLabels } = sampleLatent(cfg, generatorBatch(batch), nextSeed);
      return { dLoss, gLoss: generatorUpdate(ctx, z, fakeLabels) };
    });
}

/** WGAN-GP with `nCritic` DP-SGD critic updates on the batch (fresh fakes and noise each), then the generator's. */
export function wganGpDpStep(ctx: StepContext): GanStep {
  const dp = requireDp(ctx);
  const { gan, optD, nextSeed } = ctx;
  const { G, D, cfg } = gan;
  const augment = stepAugment(ctx);
  const dropoutSeed = stepDropoutSeed(ctx);
  const dVars = D.params.trainableVariables();
  const noiseSeed = ctx.dpNoiseSeed ?? nextSeed;
  return (batch) => {
    const { images, labels } = batch;
    const b = images.shape[0];
    const expected = batch.expectedSize ?? b;
    let dLoss: tf.Scalar | null = null;
    for (let i = 0; i < cfg.nCritic; i++) {
      const value = tf.tidy(() => {
        let loss = () => tf.zeros([0]) as tf.Tensor1D;
        if (b > 0) {
          const z = randomOps().normal([b, cfg.latentDim], 0, 1, nextSeed()) as tf.Tensor2D;
          const fakes = G.apply(z, labels, true, { dropoutSeed });
          const eps = randomOps().uniform([b, 1, 1, 1], 0, 1, nextSeed());
          loss = () => wganGpDpLoss(cfg, D, { reals: images, labels, fakes, fakeLabels: labels }, eps, augment, dropoutSeed);
        }
        return dpUpdate(optD, dVars, b, expected, loss, dp, noiseSeed);
      });
      dLoss?.dispose();
      dLoss = value;
    }
    return { dLoss: dLoss!, gLoss: wganGpGeneratorUpdate(ctx, generatorBatch(batch)) };
  };
}

/** The DP step for the config's GAN type. */
export function dpStep(ctx: StepContext): GanStep {
  return ctx.gan.cfg.gan === 'wgan-gp' ? wganGpDpStep(ctx) : saturatingDpStep(ctx);
}
