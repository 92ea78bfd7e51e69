import * as tf from '@tensorflow/tfjs-core';

/**
 * Where the training step's random tensors come from: latent noise, fake labels, dropout masks, the
 * gradient penalty's interpolation weights. By default tfjs's own ops (numbers drawn on the CPU, then
 * uploaded); a backend's fast path may take over with `setRandomOps` (the WebGPU path draws them on the
 * GPU: shared/kernels/webgpu). Same distributions, seeded and reproducible either way, but the two
 * sources give different numbers for the same seed.
 *
 * A draw without a seed is not reproducible: tfjs answers it from an unseeded generator, the WebGPU fast
 * path from one stream per page (shared by every trainer in it). The GAN steps therefore seed every draw,
 * dropout masks included (StepContext.dropoutSeed, from the trainer's seed: shared/gan/trainer.ts).
 */
export interface RandomOps {
  normal(shape: number[], mean: number, std: number, seed?: number): tf.Tensor;
  uniform(shape: number[], min: number, max: number, seed?: number): tf.Tensor;
  /** int32 uniform in [min, max). */
  uniformInt(shape: number[], min: number, max: number, seed?: number): tf.Tensor;
  /** Inverted dropout: x · mask / (1 − rate), mask ~ Bernoulli(1 − rate). */
  dropout(x: tf.Tensor, rate: number, seed?: number): tf.Tensor;
}

/** Hands out a fresh seed on each call: one per random draw, so that the draws can be repeated. */
export type SeedSource = () => number;

export const tfjsRandomOps: RandomOps = {
  normal: (shape, mean, std, seed) => tf.randomNormal(shape, mean, std, 'float32', seed),
  uniform: (shape, min, max, seed) => tf.randomUniform(shape, min, max, 'float32', seed),
  uniformInt: (shape, min, max, seed) => tf.randomUniform(shape, min, max, 'int32', seed),
  dropout: (x, rate, seed) => tf.dropout(x, rate, undefined, seed),
};

let current: RandomOps = tfjsRandomOps;

/** Install a random-tensor provider (null restores tfjs's own). */
export function setRandomOps(ops: RandomOps | null): void {
  current = ops ?? tfjsRandomOps;
}

export function randomOps(): RandomOps {
  return current;
}
