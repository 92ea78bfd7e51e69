import * as tf from '@tensorflow/tfjs-core';
import type { Discriminator, DiscriminatorOutput } from './discriminators/index.ts';

/**
 * The discriminator on a batch of reals and a batch of fakes of the same size. When it is per sample (no
 * batch norm), one pass over [reals; fakes] is the same function as two passes, and it issues half the
 * kernel dispatches forward and backward: the WebGPU training step is bound by dispatches, not by
 * arithmetic. Otherwise (batch norm must see reals and fakes apart), two passes.
 */
export function realFakePass(
  D: Discriminator,
  real: tf.Tensor4D,
  realLabels: tf.Tensor1D,
  fake: tf.Tensor4D,
  fakeLabels: tf.Tensor1D,
  training: boolean,
): { real: DiscriminatorOutput; fake: DiscriminatorOutput } {
  const b = real.shape[0];
  if (!D.perSample || fake.shape[0] !== b) return { real: D.apply(real, realLabels, training), fake: D.apply(fake, fakeLabels, training) };
  const both = D.apply(tf.concat([real, fake]), tf.concat([realLabels, fakeLabels]), training);
  const [realScore, fakeScore] = tf.split(both.score, 2) as [tf.Tensor1D, tf.Tensor1D];
  if (!both.classLogits) return { real: { score: realScore }, fake: { score: fakeScore } };
  const [realLogits, fakeLogits] = tf.split(both.classLogits, 2) as [tf.Tensor2D, tf.Tensor2D];
  return { real: { score: realScore, classLogits: realLogits }, fake: { score: fakeScore, classLogits: fakeLogits } };
}
