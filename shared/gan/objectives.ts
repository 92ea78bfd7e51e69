import * as tf from '@tensorflow/tfjs-core';
import type { AdversarialLoss } from '../config/ganConfig.ts';
import { bceWithLogits } from './losses.ts';

/**
 * The adversarial terms of ACGAN and CGAN (`cfg.adversarialLoss`) and R1 regularisation (`cfg.r1`).
 *
 * - bce, the non-saturating GAN loss (Goodfellow et al. 2014), from logits:
 *   D: E[softplus(−D(x))] + E[softplus(D(x̃))];  G: E[softplus(−D(x̃))].
 * - hinge (Lim & Ye 2017; Miyato et al. 2018; BigGAN):
 *   D: E[max(0, 1 − D(x))] + E[max(0, 1 + D(x̃))];  G: −E[D(x̃)].
 */
export type SaturatingLoss = Exclude<AdversarialLoss, 'wasserstein'>;

/** The config's adversarial loss, for ACGAN and CGAN (parseGanConfig refuses `wasserstein` for them). */
export function saturatingLoss(kind: AdversarialLoss): SaturatingLoss {
  if (kind === 'wasserstein') throw new Error('the wasserstein loss belongs to wgan-gp; acgan and cgan take bce or hinge');
  return kind;
}

/** The discriminator's two adversarial terms, [on reals, on fakes]; the loss is their sum. */
export function discriminatorTerms(kind: SaturatingLoss, real: tf.Tensor1D, fake: tf.Tensor1D): [tf.Scalar, tf.Scalar] {
  if (kind === 'hinge') return [tf.mean(tf.relu(tf.sub(1, real))), tf.mean(tf.relu(tf.add(1, fake)))];
  return [bceWithLogits(real, 1), bceWithLogits(fake, 0)];
}

/** The generator's adversarial term on the discriminator's scores of its fakes. */
export function generatorTerm(kind: SaturatingLoss, fake: tf.Tensor1D): tf.Scalar {
  return kind === 'hinge' ? tf.neg(tf.mean(fake)) : bceWithLogits(fake, 1);
}

/**
 * R1 regularisation (Mescheder et al. 2018): γ/2 · E_b ‖∇ₓ D(x_b)‖² on real images, the squared norm
 * of each sample's gradient summed over its pixels and channels. `score` is the discriminator as a
 * function of its (un-augmented) input: with DiffAugment it augments first, so the gradient is taken
 * with respect to the real images themselves, as StyleGAN2-ADA does. Differentiated again for the
 * discriminator's update, like WGAN-GP's penalty (gradients.ts registers what tfjs lacks for that).
 */
export function r1Penalty(score: (x: tf.Tensor4D) => tf.Tensor1D, real: tf.Tensor4D, gamma: number): tf.Scalar {
  const g = tf.grad((x: tf.Tensor) => tf.sum(score(x as tf.Tensor4D)))(real);
  return tf.mul(tf.mean(tf.sum(tf.square(g), [1, 2, 3])), gamma / 2);
}

/** MSGAN's ε: keeps the mode-seeking term finite when a pair's two fakes are identical. */
export const MODE_SEEKING_EPSILON = 1e-5;

/**
 * The number of (first, second) pairs of fakes that share a class in a batch of `b` (sampleLatent draws them
 * so when the config turns mode seeking on): fake i and fake i + ⌊b/2⌋ for i < ⌊b/2⌋.
 */
export function modeSeekingPairs(b: number): number {
  return Math.floor(b / 2);
}

/**
 * Mode seeking (Mao et al. 2019, "Mode seeking generative adversarial networks for diverse image
 * synthesis"), added to the generator's loss: λ / (r + ε), r = mean|G(z₁,y) − G(z₂,y)| / mean|z₁ − z₂|, the
 * means over the batch's pairs (modeSeekingPairs) and all their pixels and latent entries. A generator that
 * maps different latents of a class to the same tile makes r small and this term large: minimising it
 * spreads the fakes of each class, the diversity that adversarial losses alone let collapse. The latents
 * are constants here; only the fakes carry gradient. A batch with no pair (b < 2) adds 0.
 */
export function modeSeekingTerm(fake: tf.Tensor4D, z: tf.Tensor2D, lambda: number): tf.Scalar {
  const h = modeSeekingPairs(fake.shape[0]);
  if (h === 0) return tf.scalar(0);
  const half = <T extends tf.Tensor>(t: T, from: number): T => tf.slice(t, from, h) as T;
  const imageGap = tf.mean(tf.abs(tf.sub(half(fake, 0), half(fake, h))));
  const latentGap = tf.mean(tf.abs(tf.sub(half(z, 0), half(z, h))));
  return tf.div(lambda, tf.add(tf.div(imageGap, latentGap), MODE_SEEKING_EPSILON));
}
