import * as tf from '@tensorflow/tfjs-core';
import type { Augmentation, AugmentConfig } from '../config/ganConfig.ts';
import { randomOps } from '../nn/random.ts';
import { cachedConstant } from '../nn/constants.ts';

/**
 * Differentiable augmentation (DiffAugment, Zhao et al. 2020): the discriminator only ever sees
 * augmented images, reals and fakes alike, and the generator's gradient flows back through the same
 * transforms. With few training images this keeps the discriminator from memorising them without
 * teaching the generator to produce the augmentations.
 *
 * Every transform is a function of x that is linear for fixed random parameters (an affine map per
 * sample, a shift by a 0/1 matrix, a 0/1 mask), built from ordinary tfjs ops: it is differentiable to
 * every order, as WGAN-GP's gradient penalty and R1 need, on every backend. The random parameters are
 * drawn per sample, through `randomOps()` (on the GPU with the WebGPU fast path) with seeds from the
 * step's seed stream, so a run is reproducible.
 *
 * Images are NHWC in [−1, 1]; zero (the value translation shifts in and cutout writes) is mid-grey.
 */

/** An augmentation of a batch of images, with fresh random parameters on each call. */
export type Augment = (x: tf.Tensor4D) => tf.Tensor4D;

/** No augmentation: returns its input and draws nothing. */
export const noAugment: Augment = (x) => x;

const perSample = (p: tf.Tensor1D) => tf.reshape(p, [-1, 1, 1, 1]);

/** x + δ_b: brightness. */
export function brightness(x: tf.Tensor4D, delta: tf.Tensor1D): tf.Tensor4D {
  return tf.add(x, perSample(delta));
}

/** (x − m)·s_b + m, m the mean over channels of each pixel: saturation (0 is grey, 1 unchanged). */
export function saturation(x: tf.Tensor4D, factor: tf.Tensor1D): tf.Tensor4D {
  const m = tf.mean(x, 3, true);
  return tf.add(tf.mul(tf.sub(x, m), perSample(factor)), m);
}

/** (x − m)·c_b + m, m the mean of each image over pixels and channels: contrast. */
export function contrast(x: tf.Tensor4D, factor: tf.Tensor1D): tf.Tensor4D {
  const m = tf.mean(x, [1, 2, 3], true);
  return tf.add(tf.mul(tf.sub(x, m), perSample(factor)), m);
}

/** 0, 1, …, n − 1 as float32 [1, n]. */
const iota = (n: number) => cachedConstant(`iota${n}`, () => tf.reshape(tf.range(0, n, 1, 'float32'), [1, n]) as tf.Tensor2D);

/** M[b, i, j] = 1 where j = i − shift_b, else 0: (M·v)_i = v_{i − shift}, zero where that is outside. */
function shiftMatrix(shift: tf.Tensor1D, n: number): tf.Tensor3D {
  const iMinusJ = cachedConstant(`diff${n}`, () => tf.reshape(tf.sub(tf.reshape(iota(n), [n, 1]), iota(n)), [1, n, n]));
  const s = tf.reshape(tf.cast(shift, 'float32'), [-1, 1, 1]);
  return tf.cast(tf.equal(iMinusJ, s), 'float32') as tf.Tensor3D;
}

/**
 * out[b, i, j] = x[b, i − dy_b, j − dx_b], zero where that pixel is outside the image (zero padding):
 * the content moves dy_b pixels down and dx_b right. Integer shifts, as two batched matrix products
 * with 0/1 shift matrices (rows, then columns), so the gradient is the opposite shift.
 */
export function translate(x: tf.Tensor4D, dy: tf.Tensor1D, dx: tf.Tensor1D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const rows = tf.reshape(tf.matMul(shiftMatrix(dy, h), tf.reshape(x, [b, h, w * c])), [b, h, w, c]);
  const t = tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [b, w, h * c]);
  const cols = tf.reshape(tf.matMul(shiftMatrix(dx, w), t), [b, w, h, c]);
  return tf.transpose(cols, [0, 2, 1, 3]) as tf.Tensor4D;
}

/** 1 for the indices in [start_b, start_b + size), else 0: [B, n]. */
function band(start: tf.Tensor1D, size: number, n: number): tf.Tensor2D {
  const i = iota(n);
  const lo = tf.reshape(tf.cast(start, 'float32'), [-1, 1]);
  return tf.cast(tf.logicalAnd(tf.greaterEqual(i, lo), tf.less(i, tf.add(lo, size))), 'float32') as tf.Tensor2D;
}

/**
 * Zero a size×size square of each image (all channels): the rows [cy_b − ⌊size/2⌋, cy_b − ⌊size/2⌋ + size)
 * and the columns likewise around cx_b, clipped to the image.
 */
export function cutout(x: tf.Tensor4D, cy: tf.Tensor1D, cx: tf.Tensor1D, size: number): tf.Tensor4D {
  const [b, h, w] = x.shape;
  const half = Math.floor(size / 2);
  const rows = tf.reshape(band(tf.sub(tf.cast(cy, 'float32'), half) as tf.Tensor1D, size, h), [b, h, 1, 1]);
  const cols = tf.reshape(band(tf.sub(tf.cast(cx, 'float32'), half) as tf.Tensor1D, size, w), [b, 1, w, 1]);
  return tf.mul(x, tf.sub(1, tf.mul(rows, cols)));
}

/** Pixels of the largest translation of an image of side n: round(n·fraction), as DiffAugment. */
export function translationPixels(n: number, fraction: number): number {
  return Math.floor(n * fraction + 0.5);
}

/** Pixels of the cutout square's side for an image of side n: round(n·fraction), as DiffAugment. */
export function cutoutPixels(n: number, fraction: number): number {
  return Math.floor(n * fraction + 0.5);
}

type Transform = (x: tf.Tensor4D, cfg: AugmentConfig, nextSeed: () => number) => tf.Tensor4D;

/** Split a [k, B] draw into k per-sample parameter vectors. */
const rowsOf = (t: tf.Tensor, k: number) => tf.unstack(t).slice(0, k) as tf.Tensor1D[];

const TRANSFORMS: Record<Augmentation, Transform> = {
  // One draw of u ∈ [0, 1)³ per sample: brightness δ = u₀ − ½ ∈ [−½, ½), saturation s = 2u₁ ∈ [0, 2),
  // contrast c = u₂ + ½ ∈ [½, 3/2) (DiffAugment's ranges), applied in that order.
  color(x, _cfg, nextSeed) {
    const [u0, u1, u2] = rowsOf(randomOps().uniform([3, x.shape[0]], 0, 1, nextSeed()), 3);
    const y = saturation(brightness(x, tf.sub(u0, 0.5) as tf.Tensor1D), tf.mul(u1, 2) as tf.Tensor1D);
    return contrast(y, tf.add(u2, 0.5) as tf.Tensor1D);
  },
  // Shifts dy, dx uniform in {−t, …, t}, t = translationPixels(side, fraction); drawn in [0, 2t + 1), minus t.
  translation(x, cfg, nextSeed) {
    const t = translationPixels(x.shape[1], cfg.translation);
    if (t === 0) return x;
    const [dy, dx] = rowsOf(tf.sub(randomOps().uniformInt([2, x.shape[0]], 0, 2 * t + 1, nextSeed()), t), 2);
    return translate(x, dy, dx);
  },
  // Centres uniform in [0, side + (1 − size mod 2)), as DiffAugment, so every pixel is cut equally often.
  cutout(x, cfg, nextSeed) {
    const side = x.shape[1];
    const size = cutoutPixels(side, cfg.cutout);
    const [cy, cx] = rowsOf(randomOps().uniformInt([2, x.shape[0]], 0, side + (1 - (size % 2)), nextSeed()), 2);
    return cutout(x, cy, cx, size);
  },
};

/**
 * The augmentation a config asks for: its policy's transforms in order, each drawing its parameters
 * with one seed from `nextSeed`. `noAugment` (no draws at all) when the policy is empty, so a config
 * without augmentation trains exactly as before.
 */
export function createAugment(cfg: AugmentConfig, nextSeed: () => number): Augment {
  if (cfg.policy.length === 0) return noAugment;
  const transforms = cfg.policy.map((name) => TRANSFORMS[name]);
  return (x) => {
    if (x.shape[1] !== x.shape[2]) throw new Error(`augmentation expects square images, got ${x.shape[1]}×${x.shape[2]}`);
    return transforms.reduce((y, t) => t(y, cfg, nextSeed), x);
  };
}
