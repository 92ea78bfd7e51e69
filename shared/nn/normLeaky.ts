import * as tf from '@tensorflow/tfjs-core';

/**
 * A normalisation's affine part and LeakyReLU as one operation: LeakyReLU(x̂·γ + β, α), γ and β over the
 * last axis. tfjs ops by default (three dispatches on a GPU); a backend's fast path may install a fused
 * kernel with `setAffineLeaky` (the WebGPU path does: shared/kernels/webgpu/affineLeaky.ts). An installed
 * kernel must compute the same function and be differentiable twice (WGAN-GP's critics), and return null
 * where it does not apply.
 */
export type AffineLeaky = (xHat: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, alpha: number) => tf.Tensor | null;

let impl: AffineLeaky | null = null;

export function affineLeaky(xHat: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, alpha: number): tf.Tensor {
  return impl?.(xHat, gamma, beta, alpha) ?? tf.leakyRelu(tf.add(tf.mul(xHat, gamma), beta), alpha);
}

/** Install a fused affine + LeakyReLU (null restores tfjs ops). */
export function setAffineLeaky(f: AffineLeaky | null): void {
  impl = f;
}
