import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../../shared/rng.ts';

/**
 * Geometric augmentation as in the paper, applied alike to real and synthetic tiles: a random crop
 * (zoom to 80–100 % of the tile, randomly placed), horizontal and vertical flips, and an affine
 * rotation by up to ±45°, all composed into one affine map per image and applied with bilinear
 * sampling and reflected borders (so rotated corners stay tissue-like rather than black).
 */
export interface AugmentOptions {
  maxRotationDeg?: number;
  minCropScale?: number;
}

/**
 * The 8 projective-transform parameters of tf.image.transform (output pixel → input pixel) for
 * p_in = c + s·R(θ)·F·(p_out − c) + t, with c the tile centre.
 */
export function affineParams(size: number, thetaRad: number, scale: number, flipX: boolean, flipY: boolean, tx: number, ty: number): number[] {
  const c = (size - 1) / 2;
  const cos = Math.cos(thetaRad);
  const sin = Math.sin(thetaRad);
  const fx = flipX ? -1 : 1;
  const fy = flipY ? -1 : 1;
  const m00 = scale * cos * fx;
  const m01 = -scale * sin * fy;
  const m10 = scale * sin * fx;
  const m11 = scale * cos * fy;
  return [m00, m01, c + tx - m00 * c - m01 * c, m10, m11, c + ty - m10 * c - m11 * c, 0, 0];
}

export function randomAffineParams(size: number, rng: Rng, opts: AugmentOptions = {}): number[] {
  const maxRot = ((opts.maxRotationDeg ?? 45) * Math.PI) / 180;
  const minScale = opts.minCropScale ?? 0.8;
  const theta = (2 * rng.next() - 1) * maxRot;
  const scale = minScale + (1 - minScale) * rng.next();
  const slack = ((1 - scale) * size) / 2;
  const tx = (2 * rng.next() - 1) * slack;
  const ty = (2 * rng.next() - 1) * slack;
  return affineParams(size, theta, scale, rng.next() < 0.5, rng.next() < 0.5, tx, ty);
}

/** Augment a batch (NHWC, any value range); returns a new tensor of the same shape. */
export function augmentBatch(x: tf.Tensor4D, rng: Rng, opts: AugmentOptions = {}): tf.Tensor4D {
  const [b, h, w] = x.shape;
  if (h !== w) throw new Error(`augmentation expects square tiles, got ${h}×${w}`);
  const params: number[] = [];
  for (let i = 0; i < b; i++) params.push(...randomAffineParams(h, rng, opts));
  return tf.tidy(() => tf.image.transform(x, tf.tensor2d(params, [b, 8]), 'bilinear', 'reflect'));
}
