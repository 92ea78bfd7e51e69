import * as tf from '@tensorflow/tfjs-core';
import { setBatchNormTrain, tfjsBatchNormTrain } from '../nn/batchNormTraining.ts';
import { setMovingAverage, tfjsMovingAverage } from '../nn/movingAverage.ts';
import { randomOps, setRandomOps, tfjsRandomOps, type RandomOps } from '../nn/random.ts';
import type { WeightSet } from '../weights.ts';

/**
 * Probes for tests of the GAN steps (test-only, like testConfig.ts): they record what a real step does
 * through the seams shared/nn offers (random draws, batch-norm statistics, moving averages, optimizer
 * calls) without changing what it computes on the CPU backend of the Node tests. Each returns a restore
 * function (call it in `finally` or `afterEach`): recordDraws puts back the previous random source, the
 * batch-norm and moving-average probes put back tfjs's ops (no fast path is installed in Node tests).
 */

/** One random draw of a step, in call order. */
export interface Draw {
  kind: 'normal' | 'uniform' | 'uniformInt' | 'dropout';
  shape: number[];
  values: Float32Array | Int32Array;
}

/** Records every draw made through randomOps() (tfjs's numbers, unchanged). */
export function recordDraws(): { draws: Draw[]; restore: () => void } {
  const draws: Draw[] = [];
  const previous = randomOps();
  const keep = (kind: Draw['kind'], t: tf.Tensor) => {
    draws.push({ kind, shape: t.shape.slice(), values: t.dataSync().slice() as Float32Array | Int32Array });
    return t;
  };
  const ops: RandomOps = {
    normal: (shape, mean, std, seed) => keep('normal', tfjsRandomOps.normal(shape, mean, std, seed)),
    uniform: (shape, min, max, seed) => keep('uniform', tfjsRandomOps.uniform(shape, min, max, seed)),
    uniformInt: (shape, min, max, seed) => keep('uniformInt', tfjsRandomOps.uniformInt(shape, min, max, seed)),
    dropout: (x, rate, seed) => keep('dropout', tfjsRandomOps.dropout(x, rate, seed)),
  };
  setRandomOps(ops);
  return { draws, restore: () => setRandomOps(previous) };
}

/** One training-mode batch normalisation: the layer (by its γ variable) and its input, in call order. */
export interface BatchNormCall {
  gamma: tf.Tensor;
  shape: number[];
  x: Float32Array;
}

/** Records every training-mode batch normalisation's input (computed by tfjs ops, as before). */
export function recordBatchNorms(): { calls: BatchNormCall[]; restore: () => void } {
  const calls: BatchNormCall[] = [];
  setBatchNormTrain((x, gamma, beta, epsilon, leakyAlpha) => {
    calls.push({ gamma, shape: x.shape.slice(), x: x.dataSync().slice() as Float32Array });
    return tfjsBatchNormTrain(x, gamma, beta, epsilon, leakyAlpha);
  });
  return { calls, restore: () => setBatchNormTrain(null) };
}

/** Counts moving-average updates per moving-statistic tensor (tfjs ops, as before). */
export function countMovingAverages(): { counts: Map<tf.Tensor, number>; restore: () => void } {
  const counts = new Map<tf.Tensor, number>();
  setMovingAverage((moving, batch, momentum) => {
    counts.set(moving, (counts.get(moving) ?? 0) + 1);
    return tfjsMovingAverage(moving, batch, momentum);
  });
  return { counts, restore: () => setMovingAverage(null) };
}

/**
 * An optimizer that snapshots the model's weights (read: () => WeightSet) whenever the step calls
 * `minimize` or `applyGradients` on it, i.e. the weights its loss was computed with, then delegates.
 */
export function snapshottingOptimizer(opt: tf.Optimizer, read: () => WeightSet, snapshots: WeightSet[]): tf.Optimizer {
  return new Proxy(opt, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if ((key === 'minimize' || key === 'applyGradients') && typeof value === 'function') {
        return (...args: unknown[]) => {
          snapshots.push(read());
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
