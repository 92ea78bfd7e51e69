import * as tf from '@tensorflow/tfjs-core';
import type { ParamStore } from './params.ts';
import { randomOps, type SeedSource } from './random.ts';
import { batchNormTrain } from './batchNormTraining.ts';
import { layerNormalize } from './layerNormalize.ts';
import { fusedLayerOps } from './fusedLayerOps.ts';
import { affineLeaky } from './normLeaky.ts';
import { movingAverage } from './movingAverage.ts';
import { cachedConstant } from './constants.ts';
import { perExampleConvLayer, perExampleDenseLayer, perExampleGather, perExampleScaleShift, perExampleWeight } from './perExample.ts';

/**
 * Building blocks written with raw tfjs-core ops, so every weight is a named variable we own. Dense, conv,
 * layer-norm and embedding layers also run with per-example copies of their weights inside a per-example
 * pass (perExample.ts: differentially private training's per-example gradients). Dense, conv and embedding
 * layers compute with their weight matrix as the ParamStore gives it (`ParamStore.matrix`): the variable
 * itself, or W / σ(W) in a discriminator with spectral normalisation (spectralNorm.ts).
 */

export interface Dense {
  apply(x: tf.Tensor2D): tf.Tensor2D;
}
export function dense(p: ParamStore, name: string, inUnits: number, outUnits: number, bias = true): Dense {
  const kernel = p.matrix(`${name}/kernel`, [inUnits, outUnits], 'glorot');
  const b = bias ? p.create(`${name}/bias`, [outUnits], 'zeros') : null;
  return {
    apply: (x) => {
      // The kernel as the layer computes with it (the variable itself unless the store transforms it);
      // taken first, so that a transform that cannot run in a per-example pass says so.
      const w = kernel.value();
      return perExampleDenseLayer(x, kernel.variable, b) ?? fusedLayerOps().dense(x, w as tf.Tensor2D, b as tf.Tensor1D | null);
    },
  };
}

export interface Conv2D {
  readonly outChannels: number;
  apply(x: tf.Tensor4D): tf.Tensor4D;
  /** LeakyReLU(conv(x) + bias), as one fused operation where the backend has one. */
  applyLeaky(x: tf.Tensor4D, alpha?: number): tf.Tensor4D;
}
export function conv2d(
  p: ParamStore,
  name: string,
  inChannels: number,
  outChannels: number,
  opts: { kernel?: number; stride?: number; bias?: boolean } = {},
): Conv2D {
  const k = opts.kernel ?? 3;
  const stride = opts.stride ?? 1;
  const kernel = p.matrix(`${name}/kernel`, [k, k, inChannels, outChannels], 'glorot');
  const b = opts.bias === false ? null : p.create(`${name}/bias`, [outChannels], 'zeros');
  const apply = (x: tf.Tensor4D, alpha: number | null): tf.Tensor4D => {
    const w = kernel.value(); // as in dense
    const y = perExampleConvLayer(x, kernel.variable, b, stride);
    if (!y) return fusedLayerOps().conv(x, w as tf.Tensor4D, b as tf.Tensor1D | null, stride, alpha);
    return alpha == null ? y : tf.leakyRelu(y, alpha);
  };
  return {
    outChannels,
    apply: (x) => apply(x, null),
    applyLeaky: (x, alpha = LEAKY_ALPHA) => apply(x, alpha),
  };
}

export interface Norm<T extends tf.Tensor = tf.Tensor> {
  apply(x: T, training: boolean): T;
  /** LeakyReLU(apply(x), alpha), as one operation where the norm and backend offer one (layer norm: normLeaky.ts). */
  applyLeaky?(x: T, training: boolean, alpha?: number): T;
}

export interface BatchNorm extends Norm {
  /**
   * Training mode normalises with the batch's statistics and, when `updateStats` (by default), folds them
   * once into the moving statistics; inference mode normalises with the moving statistics. A model that
   * runs several training-mode passes per optimisation step passes `updateStats` true on exactly one of
   * them, or the effective momentum becomes momentum^passes (see shared/gan/generator.ts).
   */
  apply(x: tf.Tensor, training: boolean, updateStats?: boolean): tf.Tensor;
  /**
   * LeakyReLU(apply(x, training, updateStats), alpha): in training mode one fused operation where the
   * backend offers one (the WebGPU fast path's batch-norm kernels apply the activation in their
   * normalising pass and its gradient in their backward passes), tfjs ops otherwise.
   */
  applyLeaky(x: tf.Tensor, training: boolean, alpha?: number, updateStats?: boolean): tf.Tensor;
}

/**
 * Batch normalisation over all axes but the last, with Keras's momentum convention
 * (moving = moving·momentum + batch·(1 − momentum)). Weights are named `<name>/gamma|beta|movingMean|movingVariance`,
 * and `name` must be `bn<k>` so FedBN can recognise them (see shared/weights.ts).
 */
export function batchNorm(p: ParamStore, name: string, channels: number, momentum: number, epsilon = 1e-3): BatchNorm {
  if (!/(^|\/)bn\d*$/.test(name)) throw new Error(`batch-norm layer ${name} must be named bn<k>`);
  const gamma = p.create(`${name}/gamma`, [channels], 'ones');
  const beta = p.create(`${name}/beta`, [channels], 'zeros');
  const movingMean = p.create(`${name}/movingMean`, [channels], 'zeros', false);
  const movingVar = p.create(`${name}/movingVariance`, [channels], 'ones', false);
  const apply = (x: tf.Tensor, training: boolean, updateStats: boolean, leakyAlpha?: number): tf.Tensor => {
    if (!training) {
      const y = tf.batchNorm(x, movingMean, movingVar, beta, gamma, epsilon);
      return leakyAlpha === undefined ? y : tf.leakyRelu(y, leakyAlpha);
    }
    const { y, mean, variance } = batchNormTrain(x, gamma, beta, epsilon, leakyAlpha);
    if (!updateStats) return y;
    // Moving statistics are state, not part of the gradient computation.
    const m = tf.keep(movingAverage(movingMean, mean, momentum));
    const v = tf.keep(movingAverage(movingVar, variance, momentum));
    movingMean.assign(m);
    movingVar.assign(v);
    m.dispose();
    v.dispose();
    return y;
  };
  return {
    apply: (x, training, updateStats = true) => apply(x, training, updateStats),
    applyLeaky: (x, training, alpha = LEAKY_ALPHA, updateStats = true) => apply(x, training, updateStats, alpha),
  };
}

/** Layer normalisation over the last axis (used by critics, where batch norm would break the gradient penalty). */
export function layerNorm(p: ParamStore, name: string, channels: number, epsilon = 1e-5): Norm {
  const gamma = p.create(`${name}/gamma`, [channels], 'ones');
  const beta = p.create(`${name}/beta`, [channels], 'zeros');
  const layer: Norm = {
    apply: (x) => {
      const g = perExampleWeight(gamma);
      if (g) return perExampleScaleShift(layerNormalize(x, epsilon), g, perExampleWeight(beta) ?? beta);
      return tf.add(tf.mul(layerNormalize(x, epsilon), gamma), beta);
    },
    applyLeaky: (x, _training, alpha = LEAKY_ALPHA) => {
      if (perExampleWeight(gamma)) return tf.leakyRelu(layer.apply(x, true), alpha);
      return affineLeaky(layerNormalize(x, epsilon), gamma, beta, alpha);
    },
  };
  return layer;
}

export interface Embedding {
  apply(labels: tf.Tensor1D): tf.Tensor2D;
}
export function embedding(p: ParamStore, name: string, count: number, dim: number, init: { normal: number; mean?: number } | { uniform: number } = { uniform: 0.05 }): Embedding {
  const table = p.matrix(`${name}/table`, [count, dim], init);
  return {
    apply: (labels) => {
      const w = table.value(); // as in dense
      const t = perExampleWeight(table.variable);
      return t ? perExampleGather(t, labels) : tf.gather(w as tf.Tensor2D, labels);
    },
  };
}

/** The LeakyReLU slope used throughout the models. */
export const LEAKY_ALPHA = 0.2;

export function leakyRelu<T extends tf.Tensor>(x: T, alpha = LEAKY_ALPHA): T {
  return tf.leakyRelu(x, alpha);
}

/**
 * Inverted dropout in training mode with rate > 0 (x unchanged otherwise). `seed` makes the mask
 * reproducible: a number, or a source asked for one seed per mask actually drawn (the GAN steps pass their
 * trainer's dropout stream, StepContext.dropoutSeed). Without one the mask comes from the random
 * provider's unseeded draw, which no run can repeat (shared/nn/random.ts).
 */
export function dropout<T extends tf.Tensor>(x: T, rate: number, training: boolean, seed?: number | SeedSource): T {
  if (!training || !(rate > 0)) return x;
  return randomOps().dropout(x, rate, typeof seed === 'function' ? seed() : seed) as T;
}

export type UpsampleMode = 'nearest' | 'bilinear';

/**
 * 2× upsampling. `nearest` copies each pixel into a 2 × 2 block. `bilinear` interpolates with half-pixel
 * centres and clamped edges, as `tf.image.resizeBilinear(x, [2h, 2w], false, true)` computes its values:
 * output o along an axis of n reads source position (o + ½)/2 − ½, so every output is ¾ of its own source
 * pixel and ¼ of the neighbour on its side (the edge pixel itself at the border). It is computed as two
 * matrix products with the fixed interpolation matrices U_H (2h × h) and U_W (2w × w), out = U_H · x · U_Wᵀ
 * per image and channel, because tfjs 4.22's ResizeBilinearGrad ignores `halfPixelCenters` on every
 * backend (its gradient is the adjoint of a different resize). The matrix form's gradient is the exact
 * adjoint, on every backend and to any order, in two dispatches each way on the GPU.
 */
export function upsample2x(x: tf.Tensor4D, mode: UpsampleMode = 'nearest'): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  if (mode === 'nearest') return tf.image.resizeNearestNeighbor(x, [h * 2, w * 2]);
  return tf.tidy(() => {
    const rows = tf.matMul(bilinearMatrix(h), tf.reshape(x, [b, h, w * c])); // [b, 2h, w·c]
    const cols = tf.matMul(bilinearMatrix(w), tf.reshape(rows, [b * 2 * h, w, c])); // [b·2h, 2w, c]
    return tf.reshape(cols, [b, 2 * h, 2 * w, c]);
  });
}

/** U[1, 2n, n]: row o holds the bilinear weights of output o on the n source pixels (half-pixel centres, clamped). */
export function bilinearWeights(n: number): Float32Array {
  const u = new Float32Array(2 * n * n);
  const clamp = (i: number) => Math.min(n - 1, Math.max(0, i));
  for (let o = 0; o < 2 * n; o++) {
    const src = (o + 0.5) / 2 - 0.5;
    const i0 = Math.floor(src);
    const f = src - i0;
    u[o * n + clamp(i0)] += 1 - f;
    u[o * n + clamp(i0 + 1)] += f;
  }
  return u;
}

const bilinearMatrix = (n: number) => cachedConstant(`bilinear2x:${n}`, () => tf.tensor3d(bilinearWeights(n), [1, 2 * n, n]));
