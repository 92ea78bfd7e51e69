import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { batchNorm } from './layers.ts';
import { movingAverage } from './movingAverage.ts';
import { ParamStore } from './params.ts';

const close = (got: ArrayLike<number>, want: number[], tol = 1e-6) => {
  expect(got.length).toBe(want.length);
  Array.from(got).forEach((g, i) => expect(Math.abs(g - want[i]), `[${i}]: got ${g}, want ${want[i]}`).toBeLessThan(tol));
};

describe('batch norm layer', () => {
  // Two channels over four rows. Channel 0: 1, 3, 5, 7 (mean 4, biased variance 20/4 = 5);
  // channel 1: 2, 6, 10, 2 (mean 5, biased variance (9 + 1 + 25 + 9)/4 = 11).
  const rows = [
    [1, 2],
    [3, 6],
    [5, 10],
    [7, 2],
  ];
  const eps = 1e-3;
  const normalised = (mean: number[], variance: number[]) => rows.flatMap((r) => r.map((v, c) => (v - mean[c]) / Math.sqrt(variance[c] + eps)));

  function layer() {
    const p = new ParamStore('t', 1);
    const bn = batchNorm(p, 'bn1', 2, 0.9, eps);
    const stat = (n: string) => Array.from(p.all().find((e) => e.name === `t/bn1/${n}`)!.variable.dataSync());
    return { p, bn, mean: () => stat('movingMean'), variance: () => stat('movingVariance') };
  }

  it('training mode normalises with the batch statistics and moves the moving ones once: m·old + (1 − m)·batch', () => {
    const { p, bn, mean, variance } = layer();
    const x = tf.tensor2d(rows);
    const y = bn.apply(x, true);
    close(y.dataSync(), normalised([4, 5], [5, 11]), 1e-5);
    // Initial moving statistics 0 and 1, momentum 0.9.
    close(mean(), [0.1 * 4, 0.1 * 5]);
    close(variance(), [0.9 + 0.1 * 5, 0.9 + 0.1 * 11]);
    tf.dispose([x, y]);
    p.dispose();
  });

  it('training mode with updateStats false gives the same output and leaves the moving statistics alone', () => {
    const { p, bn, mean, variance } = layer();
    const x = tf.tensor2d(rows);
    const y = bn.apply(x, true, false);
    close(y.dataSync(), normalised([4, 5], [5, 11]), 1e-5);
    expect(mean()).toEqual([0, 0]);
    expect(variance()).toEqual([1, 1]);
    tf.dispose([x, y]);
    p.dispose();
  });

  it('inference mode normalises with the moving statistics and does not move them', () => {
    const { p, bn, mean, variance } = layer();
    const x = tf.tensor2d(rows);
    tf.dispose(bn.apply(x, true));
    const y = bn.apply(x, false);
    close(y.dataSync(), normalised([0.4, 0.5], [1.4, 2.0]), 1e-5);
    close(mean(), [0.4, 0.5]);
    close(variance(), [1.4, 2.0]);
    tf.dispose([x, y]);
    p.dispose();
  });

  it('refuses a name FedBN would not recognise', () => {
    expect(() => batchNorm(new ParamStore('t', 1), 'norm1', 2, 0.9)).toThrow(/norm1 must be named bn<k>/);
  });
});

describe('movingAverage', () => {
  it('is moving·momentum + batch·(1 − momentum)', () => {
    const got = movingAverage(tf.tensor1d([1, -2]), tf.tensor1d([3, 4]), 0.8);
    // 0.8·1 + 0.2·3 = 1.4;  0.8·(−2) + 0.2·4 = −0.8
    close(got.dataSync(), [1.4, -0.8]);
    got.dispose();
  });
});
