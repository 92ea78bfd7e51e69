import * as tf from '@tensorflow/tfjs-core';
import { overrideGradient, type Restore } from './overrides.ts';

/**
 * Gradients of Mean and Sum that never build an array on the CPU. tfjs-core's own multiply the
 * reshaped dy by `ones(x.shape)`, and `ones` fills a typed array of x's size on the CPU and uploads it:
 * for the batch-norm moments of a 64 px batch-64 generator that is megabytes per step. Here the ones
 * come from `tf.fill`, a fill kernel on the GPU, and Mean divides the small dy by n before the
 * broadcast: (dy/n)·1 is the same float as (dy·1)/n, so results are bit-identical to tfjs's.
 *
 * Not a Tile (broadcastTo): its gradient slices dy once per repetition, which second-order
 * differentiation (WGAN-GP's penalty through layer norm) would hit. Multiply's gradient is one sum.
 * Gradients are global in tfjs, so these apply on every backend while the fast path is enabled.
 */
function expandedShape(x: tf.Tensor, axis: unknown): { axes: number[]; expanded: number[] } {
  const axes = tf.util.parseAxisParam(axis as number | number[], x.shape);
  const expanded = x.shape.slice();
  for (const a of axes) expanded[a] = 1;
  return { axes, expanded };
}

export function installReductionGradients(): Restore {
  const restoreMean = overrideGradient({
    kernelName: 'Mean',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { axes, expanded } = expandedShape(x, (attrs as { axis: unknown }).axis);
      const reduceSize = axes.reduce((n, a) => n * x.shape[a], 1);
      return { x: () => tf.mul(tf.div(tf.reshape(dy as tf.Tensor, expanded), reduceSize), tf.fill(x.shape, 1, 'float32')) };
    },
  });
  const restoreSum = overrideGradient({
    kernelName: 'Sum',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { expanded } = expandedShape(x, (attrs as { axis: unknown }).axis);
      return { x: () => tf.mul(tf.reshape(dy as tf.Tensor, expanded), tf.fill(x.shape, 1, 'float32')) };
    },
  });
  return () => {
    restoreMean();
    restoreSum();
  };
}
