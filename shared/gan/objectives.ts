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
