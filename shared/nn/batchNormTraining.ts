import * as tf from '@tensorflow/tfjs-core';

/**
 * Training-mode batch normalisation over all axes but the last: y and the batch statistics (the layer
 * folds these into its moving averages). With `leakyAlpha`, y is LeakyReLU(normalised, leakyAlpha): the
 * generator's batch norm is always followed by one, and a backend's fused kernel can apply it in the same
 * pass. tfjs ops by default; a backend's fast path may install a fused kernel with `setBatchNormTrain` (the
 * WebGPU path does: shared/kernels/webgpu/batchNormTrain.ts).
 */
export type BatchNormTrain = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number, leakyAlpha?: number) => { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor };

export const tfjsBatchNormTrain: BatchNormTrain = (x, gamma, beta, epsilon, leakyAlpha) => {
  const axes = x.shape.map((_, i) => i).slice(0, -1);
  const { mean, variance } = tf.moments(x, axes);
  // (x − μ)·(γ/√(σ² + ε)) + β with broadcasting elementwise ops rather than tf.batchNorm, whose
  // gradient tiles the per-channel statistics to the full activation shape (the Tile kernel was 40 %
  // of a small CNN's training step on wasm); these ops' gradients are per-channel sums instead.
  const scale = tf.mul(gamma, tf.rsqrt(tf.add(variance, epsilon)));
  const y = tf.add(tf.mul(tf.sub(x, mean), scale), beta);
  return { y: leakyAlpha === undefined ? y : tf.leakyRelu(y, leakyAlpha), mean, variance };
};

let impl: BatchNormTrain = tfjsBatchNormTrain;

export function batchNormTrain(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number, leakyAlpha?: number): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  return impl(x, gamma, beta, epsilon, leakyAlpha);
}

/** Install a batch-norm implementation (null restores tfjs ops). */
export function setBatchNormTrain(f: BatchNormTrain | null): void {
  impl = f ?? tfjsBatchNormTrain;
}
