import * as tf from '@tensorflow/tfjs-core';
import type { GanType } from '../../config/ganConfig.ts';
import { dense, embedding } from '../../nn/layers.ts';
import type { ParamStore } from '../../nn/params.ts';

export interface DiscriminatorOutput {
  /** Real/fake logit (ACGAN, CGAN) or unbounded critic value (WGAN-GP): [B]. */
  score: tf.Tensor1D;
  /** Class logits [B, K] (ACGAN only). */
  classLogits?: tf.Tensor2D;
}

export interface Head {
  apply(h: tf.Tensor2D, labels: tf.Tensor1D): DiscriminatorOutput;
}

/**
 * Heads per GAN type:
 * - ACGAN: a real/fake logit and an auxiliary classifier.
 * - CGAN and WGAN-GP: label-conditioned through a projection (Miyato & Koyama 2018):
 *   score = w·h + b + ⟨E[y], h⟩, so the critic stays unbounded and linear in its features.
 */
export function createHead(gan: GanType, params: ParamStore, featureDim: number, numClasses: number): Head {
  const real = dense(params, 'score', featureDim, 1);
  if (gan === 'acgan') {
    const cls = dense(params, 'classifier', featureDim, numClasses);
    return {
      apply: (h) => ({ score: tf.reshape(real.apply(h), [-1]) as tf.Tensor1D, classLogits: cls.apply(h) }),
    };
  }
  const project = embedding(params, 'projection', numClasses, featureDim, { normal: 0.02 });
  return {
    apply: (h, labels) => {
      const proj = tf.sum(tf.mul(project.apply(labels), h), 1);
      return { score: tf.add(tf.reshape(real.apply(h), [-1]), proj) as tf.Tensor1D };
    },
  };
}
