import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { registerMissingGradients } from './gradients.ts';

registerMissingGradients();

/** A scalar function of the variable w whose value needs the second derivative of softmax: ‖∇ₓ Σ c ⊙ softmax(x ⊙ w)‖². */
function penalty(x: tf.Tensor, w: tf.Variable, c: tf.Tensor): tf.Scalar {
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(c, tf.softmax(tf.mul(t, w)))))(x);
  return tf.sum(tf.square(g)) as tf.Scalar;
}

describe('the Softmax gradient', () => {
  it('keeps its first-order values: dx = y⊙dy − y·Σ(y⊙dy)', () => {
    const x = tf.tensor2d([[0.5, -1, 2], [0, 0.3, -0.7]]);
    const dy = tf.tensor2d([[1, -2, 0.5], [0.25, 3, -1]]);
    const got = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(dy, tf.softmax(t))))(x).arraySync() as number[][];
    const xs = x.arraySync();
    const dys = dy.arraySync();
    xs.forEach((row, r) => {
      const e = row.map(Math.exp);
      const z = e.reduce((a, b) => a + b, 0);
      const y = e.map((v) => v / z);
      const s = y.reduce((a, yi, i) => a + yi * dys[r][i], 0);
      y.forEach((yi, i) => expect(got[r][i]).toBeCloseTo(yi * dys[r][i] - yi * s, 6));
    });
    tf.dispose([x, dy]);
  });

  it('differentiates twice: the gradient of a softmax gradient penalty matches finite differences', () => {
    const x = tf.randomNormal([2, 3, 5], 0, 1, 'float32', 9);
    const c = tf.randomNormal([2, 3, 5], 0, 1, 'float32', 12);
    const w = tf.variable(tf.randomNormal([2, 3, 5], 0, 1, 'float32', 10));
    const analytic = tf.tidy(() => tf.variableGrads(() => penalty(x, w, c), [w]).grads[w.name].dataSync().slice());
    const base = w.dataSync().slice();
    const eps = 1e-2;
    let err = 0;
    let norm = 0;
    for (let i = 0; i < base.length; i++) {
      const at = (d: number) => {
        const moved = base.slice();
        moved[i] += d;
        w.assign(tf.tensor(moved, w.shape));
        return tf.tidy(() => penalty(x, w, c).dataSync()[0]);
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      err += (numeric - analytic[i]) ** 2;
      norm += numeric ** 2;
    }
    // tfjs's stock gradient (which reads the saved output) is off by ~30 % here.
    expect(Math.sqrt(err / norm)).toBeLessThan(1e-3);
    tf.dispose([x, c, w]);
  });
});
