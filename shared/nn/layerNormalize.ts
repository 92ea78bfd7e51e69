import * as tf from '@tensorflow/tfjs-core';

/**
 * Layer normalisation's core, x̂ = (x − μ)/√(σ² + ε) with μ, σ² over the last axis (the layer then
 * applies γ and β). tfjs ops by default; a backend's fast path may install a fused kernel with
 * `setLayerNormalize` (the WebGPU path does: shared/kernels/webgpu/layerNorm.ts). WGAN-GP's critics
 * differentiate it twice, so an installed kernel must have first- and second-order gradients.
 */
export type LayerNormalize = (x: tf.Tensor, epsilon: number) => tf.Tensor;

export const tfjsLayerNormalize: LayerNormalize = (x, epsilon) => {
  const { mean, variance } = tf.moments(x, [x.rank - 1], true);
  return tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, epsilon)));
};

let impl: LayerNormalize = tfjsLayerNormalize;

export function layerNormalize(x: tf.Tensor, epsilon: number): tf.Tensor {
  return impl(x, epsilon);
}

/** Install a layer-normalisation implementation (null restores tfjs ops). */
export function setLayerNormalize(f: LayerNormalize | null): void {
  impl = f ?? tfjsLayerNormalize;
}
