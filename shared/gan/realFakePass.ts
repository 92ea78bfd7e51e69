import * as tf from '@tensorflow/tfjs-core';
import type { SeedSource } from '../nn/random.ts';
import { noAugment, type Augment } from './augment.ts';
import type { Discriminator, DiscriminatorOutput } from './discriminators/index.ts';

/**
 * The discriminator on a batch of reals and a batch of fakes of the same size. When it is per sample (no
 * batch norm), one pass over [reals; fakes] is the same function as two passes, and it issues half the
 * kernel dispatches forward and backward: the WebGPU training step is bound by dispatches, not by
 * arithmetic. Otherwise (batch norm must see reals and fakes apart), two passes.
 *
 * `augment` (DiffAugment, augment.ts) is applied to reals and fakes before the discriminator sees them, as
 * one call on [reals; fakes] either way, so both paths draw the same random parameters. `dropoutSeed`
 * seeds the discriminator's dropout masks (Discriminator.apply): one mask over [reals; fakes] in one pass,
 * one per batch in two, so the two paths draw different masks.
 */
export function realFakePass(
  D: Discriminator,
  real: tf.Tensor4D,
  realLabels: tf.Tensor1D,
  fake: tf.Tensor4D,
  fakeLabels: tf.Tensor1D,
  training: boolean,
  augment: Augment = noAugment,
  dropoutSeed?: SeedSource,
): { real: DiscriminatorOutput; fake: DiscriminatorOutput } {
  const b = real.shape[0];
  if (!D.perSample || fake.shape[0] !== b) {
    if (augment === noAugment) return { real: D.apply(real, realLabels, training, dropoutSeed), fake: D.apply(fake, fakeLabels, training, dropoutSeed) };
    const [r, f] = tf.split(augment(tf.concat([real, fake])), [b, fake.shape[0]]) as [tf.Tensor4D, tf.Tensor4D];
    return { real: D.apply(r, realLabels, training, dropoutSeed), fake: D.apply(f, fakeLabels, training, dropoutSeed) };
  }
  const both = D.apply(augment(tf.concat([real, fake])), tf.concat([realLabels, fakeLabels]), training, dropoutSeed);
  const [realScore, fakeScore] = tf.split(both.score, 2) as [tf.Tensor1D, tf.Tensor1D];
  if (!both.classLogits) return { real: { score: realScore }, fake: { score: fakeScore } };
  const [realLogits, fakeLogits] = tf.split(both.classLogits, 2) as [tf.Tensor2D, tf.Tensor2D];
  return { real: { score: realScore, classLogits: realLogits }, fake: { score: fakeScore, classLogits: fakeLogits } };
}
