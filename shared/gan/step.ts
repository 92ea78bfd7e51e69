import type * as tf from '@tensorflow/tfjs-core';
import type { Gan } from './gan.ts';

/** One training batch: images in [-1, 1] (NHWC) and integer class labels. */
export interface Batch {
  images: tf.Tensor4D;
  labels: tf.Tensor1D;
}

/** Losses of one step, as scalars that stay on the device; the caller disposes them. */
export interface StepLosses {
  dLoss: tf.Scalar;
  gLoss: tf.Scalar;
}

/** A training step: pure computation on the models and optimizers it closes over, no I/O. */
export type GanStep = (batch: Batch) => StepLosses;

export interface StepContext {
  gan: Gan;
  optG: tf.Optimizer;
  optD: tf.Optimizer;
  /** Returns a fresh seed for each random draw, so runs are reproducible. */
  nextSeed: () => number;
}
