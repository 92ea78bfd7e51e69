import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initNodeBackend } from '../../node/nodeBackend.ts';
import { featuresFromRows } from '../../shared/metrics/features.ts';
import { Rng } from '../../shared/rng.ts';
import { affineParams, augmentBatch } from './augment.ts';
import { trainLinearProbe } from './linearProbe.ts';
import { scoreTiles, trainTileClassifier } from './train.ts';

beforeAll(async () => {
  await initNodeBackend();
});

describe('augmentation', () => {
  it('composes crop, flips and rotation into the output→input map of tf.image.transform', () => {
    const close = (got: number[], want: number[]) => want.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 12));
    close(affineParams(8, 0, 1, false, false, 0, 0), [1, 0, 0, 0, 1, 0, 0, 0]);
    // Horizontal flip: x_in = 7 − x_out
    close(affineParams(8, 0, 1, true, false, 0, 0), [-1, 0, 7, 0, 1, 0, 0, 0]);
    // Zoom to half size, shifted right by 1: x_in = 3.5 + 0.5 (x_out − 3.5) + 1
    close(affineParams(8, 0, 0.5, false, false, 1, 0), [0.5, 0, 2.75, 0, 0.5, 1.75, 0, 0]);
    // 90° rotation about the centre (3.5, 3.5): x_in = 7 − y_out, y_in = x_out
    close(affineParams(8, Math.PI / 2, 1, false, false, 0, 0), [0, -1, 7, 1, 0, 0, 0, 0]);
  });

  it('flips a real image as expected and keeps shape and value range', () => {
    const img = tf.tensor4d(Array.from({ length: 16 }, (_, i) => i % 4), [1, 4, 4, 1]); // each row 0 1 2 3
    const flipped = tf.image.transform(img, tf.tensor2d([affineParams(4, 0, 1, true, false, 0, 0)]), 'bilinear', 'reflect');
    expect(Array.from(flipped.dataSync().slice(0, 4))).toEqual([3, 2, 1, 0]);
    const batch = tf.randomUniform([3, 16, 16, 3], -1, 1) as tf.Tensor4D;
    const out = augmentBatch(batch, new Rng(1));
    expect(out.shape).toEqual([3, 16, 16, 3]);
    const v = out.dataSync();
    expect(Math.min(...v)).toBeGreaterThanOrEqual(-1.0001);
    expect(Math.max(...v)).toBeLessThanOrEqual(1.0001);
    tf.dispose([img, flipped, batch, out]);
  });
});

describe('classifiers', () => {
  it('the small CNN learns to tell two clearly different tile kinds apart', async () => {
    const size = 16;
    const rng = new Rng(3);
    const pixels: Uint8Array[] = [];
    const labels: number[] = [];
    for (let i = 0; i < 64; i++) {
      const c = i % 2;
      pixels.push(Uint8Array.from({ length: size * size * 3 }, (_, j) => (j % 3 === c ? 200 : 60) + Math.floor(rng.next() * 40)));
      labels.push(c);
    }
    const before = tf.memory().numTensors;
    const model = await trainTileClassifier({ pixels, labels }, { size, classes: 2, epochs: 8, batchSize: 16, learningRate: 5e-3, seed: 1, augment: true });
    const scores = await scoreTiles(model, pixels, 0);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const correct = labels.filter((l, i) => (scores[i] >= 0.5) === (l === 0)).length;
    expect(correct / labels.length).toBeGreaterThan(0.9);
  });

  it('the linear probe separates linearly separable features', () => {
    const rng = new Rng(2);
    const rows = Array.from({ length: 80 }, (_, i) => [i % 2 ? 3 + rng.normal() : -3 + rng.normal(), rng.normal(), rng.normal()]);
    const f = featuresFromRows(rows);
    const positive = rows.map((_, i) => i % 2 === 1);
    const p = trainLinearProbe(f, positive, { seed: 1, epochs: 300, batchSize: 16 }).predict(f);
    // As good as the ideal rule (x₀ ≥ 0) on these samples, give or take one.
    const ideal = positive.filter((y, i) => rows[i][0] >= 0 === y).length;
    expect(ideal).toBeGreaterThanOrEqual(78);
    expect(positive.filter((y, i) => (p[i] >= 0.5) === y).length).toBeGreaterThanOrEqual(ideal - 1);
  });
});
