import * as tf from '@tensorflow/tfjs-core';

/**
 * The batch-norm moving statistics' update, moving·momentum + batch·(1 − momentum) (Keras's convention).
 * tfjs ops by default (three dispatches on a GPU); the WebGPU fast path installs one kernel with
 * `setMovingAverage` (shared/kernels/webgpu/movingAverage.ts). State, never differentiated.
 */
export type MovingAverage = (moving: tf.Tensor, batch: tf.Tensor, momentum: number) => tf.Tensor;

export const tfjsMovingAverage: MovingAverage = (moving, batch, momentum) => tf.add(tf.mul(moving, momentum), tf.mul(batch, 1 - momentum));

let impl: MovingAverage = tfjsMovingAverage;

export function movingAverage(moving: tf.Tensor, batch: tf.Tensor, momentum: number): tf.Tensor {
  return impl(moving, batch, momentum);
}

/** Install a moving-average implementation (null restores tfjs ops). */
export function setMovingAverage(f: MovingAverage | null): void {
  impl = f ?? tfjsMovingAverage;
}
