import * as tf from '@tensorflow/tfjs-core';
import { noAugment, type Augment } from './augment.ts';
import type { Discriminator, DiscriminatorOutput } from './discriminators/index.ts';

/**
 * The discriminator on a batch of reals and a batch of fakes of the same size. When it is per sample (no
 * batch norm), one pass over [reals; fakes] is the same function as two passes, and it issues half the
 * kernel dispatches forward and backward: the WebGPU training step is bound by dispatches, not by
 * arithmetic. Otherwise (batch norm must see reals and fakes apart), two passes.
 *
 * `augment` (DiffAugment, augment.ts) is applied to reals and fakes before the discriminator sees them, as
 * one call on [reals; fakes] either way, so both paths draw the same random parameters.
 */
export function realFakePass(
  D: Discriminator,
  real: tf.Tensor4D,
  realLabels: tf.Tensor1D,
  fake: tf.Tensor4D,
  fakeLabels: tf.Tensor1D,
  training: boolean,
  augment: Augment = noAugment,
): { real: DiscriminatorOutput; fake: DiscriminatorOutput } {
  const b = real.shape[0];
  if (!D.perSample || fake.shape[0] !== b) {
    if (augment === noAugment) return { real: D.apply(real, realLabels, training), fake: D.apply(fake, fakeLabels, training) };
    const [r, f] = tf.split(augment(tf.concat([real, fake])), [b, fake.shape[0]]) as [tf.Tensor4D, tf.Tensor4D];
    return { real: D.apply(r, realLabels, training), fake: D.apply(f, fakeLabels, training) };
  }
  const both = D.apply(augment(tf.concat([real, fake])), tf.concat([realLabels, fakeLabels]), training);
  const [realScore, fakeScore] = tf.split(both.score, 2) as [tf.Tensor1D, tf.Tensor1D];
  if (!both.classLogits) return { real: { score: realScore }, fake: { score: fakeScore } };
  const [realLogits, fakeLogits] = tf.split(both.classLogits, 2) as [tf.Tensor2D, tf.Tensor2D];
  return { real: { score: realScore, classLogits: realLogits }, fake: { score: fakeScore, classLogits: fakeLogits } };
}
