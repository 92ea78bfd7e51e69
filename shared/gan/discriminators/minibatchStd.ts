import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from './types.ts';

/**
 * Minibatch standard deviation (Karras et al. 2018, "Progressive growing of GANs"), the config's
 * `discriminator.minibatchStd`. A collapsed generator's fakes are each plausible but too alike; a
 * discriminator that sees one tile at a time cannot tell. This layer appends one feature to every sample's
 * backbone features f [B, F]: s = mean_j sqrt(Var_b f[b, j] + ε), the features' standard deviation across
 * the batch (population variance), averaged over the features: the same value for every sample of a batch.
 * The head can then score a batch of too-similar fakes lower, and the generator's gradient through s rewards
 * variety. Because s mixes the batch, the backbone is no longer per-sample: reals and fakes are scored in
 * separate passes (realFakePass.ts), and differential privacy refuses it (dpRefusal). Ordinary tfjs ops,
 * differentiable to any order (the gradient penalty and R1 differentiate through it).
 */
export const MINIBATCH_STD_EPSILON = 1e-8;

export function minibatchStdFeature(f: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const { variance } = tf.moments(f, 0);
    const s = tf.mean(tf.sqrt(tf.add(variance, MINIBATCH_STD_EPSILON)));
    const column = tf.mul(tf.onesLike(tf.slice(f, [0, 0], [-1, 1])), s);
    return tf.concat([f, column], 1) as tf.Tensor2D;
  });
}

/** The backbone with the minibatch standard deviation appended to its features (featureDim + 1). */
export function withMinibatchStd(backbone: Backbone): Backbone {
  return {
    featureDim: backbone.featureDim + 1,
    perSample: false,
    features: (x, training, dropoutSeed) => minibatchStdFeature(backbone.features(x, training, dropoutSeed)),
  };
}
