import * as tf from '@tensorflow/tfjs-core';
import { randomOps } from '../nn/random.ts';

/**
 * Fused kernels for the two classification losses, installed by a backend's fast path (the WebGPU one:
 * shared/kernels/webgpu/fusedLosses.ts). Each returns null where it does not apply (another backend,
 * other dtypes), and the tfjs ops below are used instead. Same function, first-order gradients.
 */
export interface FusedLosses {
  bceWithLogits(logits: tf.Tensor, target: 0 | 1): tf.Scalar | null;
  softmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar | null;
}

let fused: FusedLosses | null = null;

/** Install fused loss kernels (null restores tfjs ops). */
export function setFusedLosses(f: FusedLosses | null): void {
  fused = f;
}

/** Binary cross-entropy against a constant target, from logits: mean softplus(∓x). Numerically stable. */
export function bceWithLogits(logits: tf.Tensor, target: 0 | 1): tf.Scalar {
  return fused?.bceWithLogits(logits, target) ?? tf.mean(tf.softplus(target === 1 ? tf.neg(logits) : logits));
}

/** Softmax cross-entropy of integer labels, from logits. */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const f = fused?.softmaxCrossEntropy(logits, labels);
  if (f) return f;
  const k = logits.shape[1];
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(labels, k), tf.logSoftmax(logits)), 1)));
}

/**
 * Fused kernels for the gradient penalty's two ends, installed by a backend's fast path (the WebGPU one:
 * shared/kernels/webgpu/gradientPenalty.ts). Each returns null where it does not apply, and the tfjs ops
 * of `gradientPenalty` are used instead. Same functions, with first-order gradients.
 */
export interface FusedPenalty {
  /** x̂ = ε·real + (1 − ε)·fake with ε [B, 1, 1, 1]. */
  interpolate(eps: tf.Tensor, real: tf.Tensor4D, fake: tf.Tensor4D): tf.Tensor4D | null;
  /** λ · mean_b (‖g_b‖ − 1)², ‖g_b‖ = √(Σ g_b² + 1e-12) over all axes but the first. */
  penalty(g: tf.Tensor, lambda: number): tf.Scalar | null;
}

let fusedPenalty: FusedPenalty | null = null;

/** Install fused gradient-penalty kernels (null restores tfjs ops). */
export function setFusedPenalty(f: FusedPenalty | null): void {
  fusedPenalty = f;
}

/**
 * WGAN-GP gradient penalty (Gulrajani et al. 2017): λ · E[(‖∇ₓ D(x̂)‖₂ − 1)²] on x̂ = εx + (1 − ε)x̃.
 * Needs second-order gradients: see gradients.ts for the kernels tfjs lacks.
 */
export function gradientPenalty(critic: (x: tf.Tensor4D) => tf.Tensor1D, real: tf.Tensor4D, fake: tf.Tensor4D, lambda: number, seed?: number): tf.Scalar {
  const b = real.shape[0];
  const eps = randomOps().uniform([b, 1, 1, 1], 0, 1, seed);
  const xHat = fusedPenalty?.interpolate(eps, real, fake) ?? (tf.add(tf.mul(eps, real), tf.mul(tf.sub(1, eps), fake)) as tf.Tensor4D);
  const g = tf.grad((x: tf.Tensor) => tf.sum(critic(x as tf.Tensor4D)))(xHat);
  const fused = fusedPenalty?.penalty(g, lambda);
  if (fused) return fused;
  const norm = tf.sqrt(tf.add(tf.sum(tf.square(g), [1, 2, 3]), 1e-12));
  return tf.mul(tf.mean(tf.square(tf.sub(norm, 1))), lambda);
}
