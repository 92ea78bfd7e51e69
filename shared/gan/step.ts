import * as tf from '@tensorflow/tfjs-core';
import type { GanConfig } from '../config/ganConfig.ts';
import type { DpOptions } from '../privacy/dpSgd.ts';
import { randomOps, type SeedSource } from '../nn/random.ts';
import { createAugment, type Augment } from './augment.ts';
import type { Gan } from './gan.ts';
import type { DiscriminatorOutput } from './discriminators/index.ts';
import { modeSeekingPairs, modeSeekingTerm } from './objectives.ts';

/** One training batch: images in [-1, 1] (NHWC) and integer class labels. */
export interface Batch {
  images: tf.Tensor4D;
  labels: tf.Tensor1D;
  /**
   * The batch size the sampling aims at, when it varies from step to step (Poisson sampling under
   * differential privacy, localTraining.ts): the DP step divides its noisy gradient sum by it and generates
   * this many fakes for the generator's update. Default: the batch's own size.
   */
  expectedSize?: number;
}

/** Losses of one step, as scalars that stay on the device; the caller disposes them. */
export interface StepLosses {
  dLoss: tf.Scalar;
  gLoss: tf.Scalar;
}

/** A training step: pure computation on the models and optimizers it closes over, no I/O. */
export type GanStep = (batch: Batch) => StepLosses;

export interface StepContext {
  gan: Gan;
  optG: tf.Optimizer;
  optD: tf.Optimizer;
  /** Returns a fresh seed for each random draw, so runs are reproducible. */
  nextSeed: SeedSource;
  /**
   * Returns a fresh seed for each dropout mask (generator and discriminator, every pass of the step). The
   * trainer gives it a stream of its own, derived from its seed (trainer.ts), so that dropout on or off
   * leaves `nextSeed`'s draws as they were. Default: `nextSeed`.
   */
  dropoutSeed?: SeedSource;
  /**
   * Applied to every discriminator input, reals and fakes (augment.ts). Default: the config's
   * (`createAugment(cfg.augment, nextSeed)`, no augmentation unless `cfg.augment.policy` names some).
   */
  augment?: Augment;
  /**
   * Differential privacy for the discriminator (DP-SGD, shared/privacy/dpSgd.ts): every discriminator
   * update that reads real tiles clips each example's gradient and adds noise. Absent: ordinary training.
   */
  dp?: DpOptions;
  /**
   * Seeds of the DP noise (one per variable per update). Default: `nextSeed`. A hospital passes a stream
   * from a secret seed (TrainerOptions.dp.noiseSeed): noise that the server could replay from the round's
   * seed would protect nothing.
   */
  dpNoiseSeed?: SeedSource;
}

/** The seeds of the step's dropout masks: the context's dropout stream, else `nextSeed`. */
export function stepDropoutSeed({ nextSeed, dropoutSeed }: StepContext): SeedSource {
  return dropoutSeed ?? nextSeed;
}

/** The step's discriminator-input augmentation: the context's, else the one its config asks for. */
export function stepAugment({ gan, nextSeed, augment }: StepContext): Augment {
  return augment ?? createAugment(gan.cfg.augment, nextSeed);
}

/**
 * Latent noise and uniformly random class labels for `b` generated images (drawn on the device when the
 * WebGPU fast path is on). Noise is drawn before labels, so seeds map to the same draws everywhere.
 * With mode seeking (`cfg.modeSeeking`), fake i + ⌊b/2⌋ takes fake i's class for i < ⌊b/2⌋, so the batch
 * holds the same-class pairs modeSeekingTerm compares (⌈b/2⌉ labels are drawn, each class still equally
 * likely for every fake).
 */
export function sampleLatent(cfg: GanConfig, b: number, nextSeed: () => number): { z: tf.Tensor2D; labels: tf.Tensor1D } {
  const z = randomOps().normal([b, cfg.latentDim], 0, 1, nextSeed()) as tf.Tensor2D;
  if (!cfg.modeSeeking || modeSeekingPairs(b) === 0) {
    return { z, labels: randomOps().uniformInt([b], 0, cfg.classes.length, nextSeed()) as tf.Tensor1D };
  }
  const h = modeSeekingPairs(b);
  const drawn = randomOps().uniformInt([b - h], 0, cfg.classes.length, nextSeed()) as tf.Tensor1D;
  const labels = tf.concat([tf.slice(drawn, 0, h), drawn]) as tf.Tensor1D;
  drawn.dispose();
  return { z, labels };
}

/**
 * One generator update, the same for every GAN type: fakes G(z, ỹ) (the one pass per step that moves G's
 * batch-norm statistics, generator.ts says why), the discriminator's output on their augmented copies,
 * `objective` of that output, plus the mode-seeking term on the fakes when the config turns it on
 * (objectives.ts modeSeekingTerm). Minimises it over G's trainable variables; returns the loss.
 */
export function generatorUpdate(ctx: StepContext, z: tf.Tensor2D, fakeLabels: tf.Tensor1D, objective: (d: DiscriminatorOutput) => tf.Scalar): tf.Scalar {
  const { G, D, cfg } = ctx.gan;
  const augment = stepAugment(ctx);
  const dropoutSeed = stepDropoutSeed(ctx);
  return ctx.optG.minimize(
    () => {
      const fake = G.apply(z, fakeLabels, true, { updateStats: true, dropoutSeed });
      const loss = objective(D.apply(augment(fake), fakeLabels, true, dropoutSeed));
      return cfg.modeSeeking ? tf.add(loss, modeSeekingTerm(fake, z, cfg.modeSeeking.lambda)) : loss;
    },
    true,
    G.params.trainableVariables(),
  )!;
}
