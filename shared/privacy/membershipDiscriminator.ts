/**
 * LOGAN's white-box score (Hayes et al., PoPETs 2019): the discriminator's real/fake output on a tile,
 * given the tile's class, in inference mode and without augmentation. For ACGAN and CGAN it is the
 * real/fake logit, for WGAN-GP the critic's value; higher means "looks like training data". The audit
 * (./membership.ts) compares these scores on training and held-out tiles.
 */
import * as tf from '@tensorflow/tfjs-core';
import { datasetFromTiles } from '../data/dataset.ts';
import type { Gan } from '../gan/gan.ts';
import { MembershipError } from './membership.ts';

export interface DiscriminatorScoreOptions {
  /** Tiles per forward pass (default 64). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * The discriminator's output on each tile (`size × size × 3` RGB bytes at the model's image size, class
 * index in `labels`), as float64 numbers in the order given.
 */
export async function discriminatorScores(gan: Gan, pixels: readonly Uint8Array[], labels: readonly number[], opts: DiscriminatorScoreOptions = {}): Promise<Float64Array> {
  const size = gan.cfg.imageSize;
  const per = size * size * 3;
  const classes = gan.cfg.classes.length;
  if (pixels.length !== labels.length) throw new MembershipError(`discriminator scores: ${pixels.length} tiles but ${labels.length} labels`);
  pixels.forEach((p, i) => {
    if (p.length !== per) throw new MembershipError(`discriminator scores: tile ${i} has ${p.length} bytes, expected ${per} (${size}×${size} RGB, the model's size)`);
    if (!Number.isInteger(labels[i]) || labels[i] < 0 || labels[i] >= classes) throw new MembershipError(`discriminator scores: tile ${i} has class ${labels[i]}, expected 0..${classes - 1}`);
  });
  const batchSize = opts.batchSize ?? 64;
  const out = new Float64Array(pixels.length);
  for (let start = 0; start < pixels.length; start += batchSize) {
    const n = Math.min(batchSize, pixels.length - start);
    // The training data's own conversion to [-1, 1] (shared/data/dataset.ts), so the discriminator sees what it saw in training.
    const batch = datasetFromTiles(
      pixels.slice(start, start + n).map((p, i) => ({ pixels: p, label: labels[start + i] })),
      size,
      classes,
    );
    let score: tf.Tensor1D;
    try {
      score = tf.tidy(() => gan.D.apply(batch.images, batch.labels, false).score);
    } finally {
      batch.dispose();
    }
    const values = (await score.data()) as Float32Array;
    score.dispose();
    for (let i = 0; i < n; i++) out[start + i] = values[i];
    opts.onProgress?.(start + n, pixels.length);
  }
  return out;
}
