import * as tf from '@tensorflow/tfjs-core';

/**
 * A layer's affine part and activation as one operation: conv 3×3 'same' + bias (+ LeakyReLU), and
 * dense + bias. tfjs ops by default (each a dispatch of its own on a GPU); a backend's fast path may
 * install fused kernels with `setFusedLayerOps` (the WebGPU path does: shared/kernels/webgpu/fusedLayers.ts).
 * Installed kernels must compute the same function and be differentiable twice (WGAN-GP's penalty).
 */
export interface FusedLayerOps {
  /** conv2d(x, filter, stride, 'same') + bias, then LeakyReLU(alpha) when alpha is not null. */
  conv(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D | null, stride: number, alpha: number | null): tf.Tensor4D;
  /** x·kernel + bias. */
  dense(x: tf.Tensor2D, kernel: tf.Tensor2D, bias: tf.Tensor1D | null): tf.Tensor2D;
}

export const tfjsFusedLayerOps: FusedLayerOps = {
  conv(x, filter, bias, stride, alpha) {
    let y = tf.conv2d(x, filter, stride, 'same');
    if (bias) y = tf.add(y, bias) as tf.Tensor4D;
    return alpha == null ? y : tf.leakyRelu(y, alpha);
  },
  dense(x, kernel, bias) {
    const y = tf.matMul(x, kernel) as tf.Tensor2D;
    return bias ? (tf.add(y, bias) as tf.Tensor2D) : y;
  },
};

let impl: FusedLayerOps = tfjsFusedLayerOps;

export function fusedLayerOps(): FusedLayerOps {
  return impl;
}

/** Install fused layer ops (null restores tfjs ops). */
export function setFusedLayerOps(ops: FusedLayerOps | null): void {
  impl = ops ?? tfjsFusedLayerOps;
}
