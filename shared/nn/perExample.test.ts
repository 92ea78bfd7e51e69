import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { perExampleConv, perExampleDense, perExampleGather, perExampleScaleShift, withPerExampleWeights } from './perExample.ts';

/**
 * The per-example layer ops compute, for example b, exactly what the ordinary op computes with weight
 * copy b: convolution against tf.conv2d ('same' padding) for the kernels and strides the models use,
 * odd sizes included; dense, layer-norm affine and embedding rows against their plain forms.
 */

function close(a: tf.Tensor, b: tf.Tensor, tol = 1e-5): void {
  expect(a.shape).toEqual(b.shape);
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
  const m = tf.tidy(() => tf.max(tf.abs(b)).dataSync()[0]);
  expect(d).toBeLessThanOrEqual(tol * Math.max(1, m));
}

describe('per-example layer ops', () => {
  it.each([
    // [H, W, C, O, kernel, stride]
    [8, 8, 3, 4, 3, 1],
    [8, 8, 3, 4, 3, 2],
    [7, 9, 2, 3, 3, 2],
    [8, 8, 4, 5, 1, 2],
    [16, 16, 3, 6, 4, 4],
    [5, 5, 2, 2, 3, 1],
  ])('conv %i×%i×%i → %i, kernel %i, stride %i equals tf.conv2d with each example’s filter', (h, w, c, o, k, s) => {
    tf.tidy(() => {
      const b = 3;
      const x = tf.randomNormal([b * 2, h, w, c], 0, 1, 'float32', 1) as tf.Tensor4D; // two items per example (r = 2)
      const filters = tf.randomNormal([b, k, k, c, o], 0, 1, 'float32', 2);
      const bias = tf.randomNormal([b, o], 0, 1, 'float32', 3);
      const got = perExampleConv(x, filters, bias, s);
      const want = tf.concat(
        Array.from({ length: b }, (_, i) => {
          const xi = tf.slice(x, [2 * i], [2]) as tf.Tensor4D;
          const fi = tf.reshape(tf.slice(filters, [i], [1]), [k, k, c, o]) as tf.Tensor4D;
          return tf.add(tf.conv2d(xi, fi, s, 'same'), tf.reshape(tf.slice(bias, [i], [1]), [o]));
        }),
      );
      close(got, want);
    });
  });

  it('dense, layer-norm affine and embedding rows use example b’s copy for example b', () => {
    tf.tidy(() => {
      const b = 2;
      {
        const x = tf.randomNormal([b * 3, 4], 0, 1, 'float32', 4) as tf.Tensor2D;
        const kernel = tf.randomNormal([b, 4, 5], 0, 1, 'float32', 5);
        const bias = tf.randomNormal([b, 5], 0, 1, 'float32', 6);
        const want = tf.concat(Array.from({ length: b }, (_, i) => tf.add(tf.matMul(tf.slice(x, [3 * i], [3]), tf.reshape(tf.slice(kernel, [i], [1]), [4, 5])), tf.reshape(tf.slice(bias, [i], [1]), [5]))));
        close(perExampleDense(x, kernel, bias), want);
        // A shared bias [out] is broadcast.
        close(perExampleDense(x, kernel, tf.slice(bias, [0, 0], [1, 5]).reshape([5])), tf.concat(Array.from({ length: b }, (_, i) => tf.add(tf.matMul(tf.slice(x, [3 * i], [3]), tf.reshape(tf.slice(kernel, [i], [1]), [4, 5])), tf.reshape(tf.slice(bias, [0], [1]), [5])))));

        const y = tf.randomNormal([b, 2, 2, 4], 0, 1, 'float32', 7);
        const gamma = tf.randomNormal([b, 4], 0, 1, 'float32', 8);
        const beta = tf.randomNormal([b, 4], 0, 1, 'float32', 9);
        const wantLn = tf.concat(Array.from({ length: b }, (_, i) => tf.add(tf.mul(tf.slice(y, [i], [1]), tf.reshape(tf.slice(gamma, [i], [1]), [4])), tf.reshape(tf.slice(beta, [i], [1]), [4]))));
        close(perExampleScaleShift(y, gamma, beta), wantLn);

        const table = tf.randomNormal([b, 3, 4], 0, 1, 'float32', 10);
        const labels = tf.tensor1d([2, 0], 'int32');
        close(perExampleGather(table, labels), tf.stack([tf.reshape(tf.slice(table, [0, 2, 0], [1, 1, 4]), [4]), tf.reshape(tf.slice(table, [1, 0, 0], [1, 1, 4]), [4])]));
      }
    });
  });

  it('refuses a batch the examples do not divide, copies of the wrong shape and nested passes', () => {
    tf.tidy(() => {
      const v = tf.variable(tf.zeros([2, 3]));
      expect(() => withPerExampleWeights(2, new Map([[v, tf.zeros([3, 2, 3])]]), () => 0)).toThrow(/per-example copy of .* has shape \[3,2,3\], expected \[2,2,3\]/);
      expect(() => withPerExampleWeights(2, new Map(), () => withPerExampleWeights(2, new Map(), () => 0))).toThrow(/already active/);
      expect(() => perExampleDense(tf.zeros([3, 3]) as tf.Tensor2D, tf.zeros([2, 3, 1]), null)).toThrow(/over 2 examples got a leading axis of 3/);
      v.dispose();
    });
  });
});
