import * as tf from '@tensorflow/tfjs-core';

/**
 * How the trainer makes its Adam optimizers. tfjs's own by default; a backend's fast path may install
 * a drop-in replacement (the WebGPU path installs a fused, in-place Adam: shared/kernels/webgpu).
 */
export type AdamFactory = (learningRate: number, beta1: number, beta2: number) => tf.Optimizer;

const tfjsAdam: AdamFactory = (lr, b1, b2) => tf.train.adam(lr, b1, b2);
let factory: AdamFactory = tfjsAdam;

export function createAdam(learningRate: number, beta1: number, beta2: number): tf.Optimizer {
  return factory(learningRate, beta1, beta2);
}

/** Install an Adam factory (null restores tfjs's). Trainers created afterwards use it. */
export function setAdamFactory(f: AdamFactory | null): void {
  factory = f ?? tfjsAdam;
}
