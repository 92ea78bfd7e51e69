import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createGan } from './gan.ts';
import { registerMissingGradients } from './gradients.ts';
import { gradientPenalty } from './losses.ts';
import { tinyConfig } from './testConfig.ts';

registerMissingGradients();

/** Central finite difference of a scalar function of one tensor, at the given flat coordinates. */
function finiteDifference(f: (x: tf.Tensor) => tf.Scalar, x: tf.Tensor, coords: number[], eps: number): number[] {
  const base = x.dataSync().slice();
  return coords.map((i) => {
    const plus = base.slice();
    const minus = base.slice();
    plus[i] += eps;
    minus[i] -= eps;
    const fp = tf.tidy(() => f(tf.tensor(plus, x.shape)).dataSync()[0]);
    const fm = tf.tidy(() => f(tf.tensor(minus, x.shape)).dataSync()[0]);
    return (fp - fm) / (2 * eps);
  });
}

function expectClose(actual: number[], expected: number[], rel: number) {
  const scale = Math.max(1e-3, ...expected.map(Math.abs));
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]) / scale).toBeLessThan(rel));
}

describe('registered second-order gradients', () => {
  it('Greater and friends have zero gradients, so LeakyReLU can be differentiated twice', () => {
    const x = tf.tensor1d([-2, -0.5, 0.3, 1.5]);
    // d/dx Σ c·(d/dx Σ leakyRelu(x)²) = c · 2·slope², slope = 1 or 0.2
    const c = tf.tensor1d([1, 2, 3, 4]);
    const inner = (v: tf.Tensor) => tf.grad((u: tf.Tensor) => tf.sum(tf.square(tf.leakyRelu(u, 0.2))))(v);
    const outer = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(c, inner(v))))(x);
    const expected = [1 * 2 * 0.04, 2 * 2 * 0.04, 3 * 2, 4 * 2];
    Array.from(outer.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 6));
    for (const op of ['Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal', 'NotEqual']) expect(tf.getGradient(op)).toBeDefined();
  });

  it('ResizeNearestNeighborGrad has a gradient matching finite differences', () => {
    const x = tf.randomNormal([2, 3, 3, 2], 0, 1, 'float32', 11);
    const u = tf.randomNormal([2, 6, 6, 2], 0, 1, 'float32', 12);
    const c = tf.randomNormal([2, 3, 3, 2], 0, 1, 'float32', 13);
    // G(x) = Σ c ⊙ ∇ₓ Σ u ⊙ resize(x)²  — differentiating G needs the gradient of ResizeNearestNeighborGrad.
    const G = (v: tf.Tensor) =>
      tf.sum(tf.mul(c, tf.grad((w: tf.Tensor) => tf.sum(tf.mul(u, tf.square(tf.image.resizeNearestNeighbor(w as tf.Tensor4D, [6, 6])))))(v))) as tf.Scalar;
    const analytic = tf.grad(G)(x).dataSync();
    const coords = [0, 5, 11, 17, 23, 35];
    expectClose(coords.map((i) => analytic[i]), finiteDifference(G, x, coords, 1e-2), 1e-2);
  });

  it('the gradient penalty gradient w.r.t. critic weights matches finite differences', () => {
    // The penalty is piecewise smooth: ∇ₓD changes abruptly when a LeakyReLU unit flips sign. A central
    // difference is only valid where the two one-sided differences agree (no flip inside ±eps); we check
    // every such coordinate and require enough of them.
    const model = createGan(tinyConfig('wgan-gp', { imageSize: 16 }));
    const labels = tf.tensor1d([0, 1, 1], 'int32');
    const real = tf.randomUniform([3, 16, 16, 3], -1, 1, 'float32', 21) as tf.Tensor4D;
    const fake = tf.randomUniform([3, 16, 16, 3], -1, 1, 'float32', 22) as tf.Tensor4D;
    const critic = (x: tf.Tensor4D) => model.D.apply(x, labels, true).score;
    const penalty = () => gradientPenalty(critic, real, fake, 10, 99);
    let checked = 0;
    for (const name of ['d/conv1/kernel', 'd/conv3/kernel', 'd/ln2/gamma', 'd/score/kernel', 'd/projection/table']) {
      const v = model.D.params.all().find((e) => e.name === name)!.variable;
      const base = v.dataSync().slice();
      const { grads } = tf.variableGrads(penalty, [v]);
      const analytic = grads[v.name].dataSync();
      const at = (i: number, delta: number) => {
        const w = base.slice();
        w[i] += delta;
        v.assign(tf.tensor(w, v.shape));
        return tf.tidy(() => penalty().dataSync()[0]);
      };
      const eps = 1e-3;
      for (let k = 0; k < 8; k++) {
        const i = Math.floor(((k + 0.5) / 8) * v.size);
        const f0 = at(i, 0);
        const forward = (at(i, eps) - f0) / eps;
        const backward = (f0 - at(i, -eps)) / eps;
        const scale = Math.max(1, Math.abs(forward), Math.abs(backward));
        if (Math.abs(forward - backward) > 0.02 * scale) continue; // a unit flipped inside ±eps
        expect(Math.abs(analytic[i] - (forward + backward) / 2)).toBeLessThan(0.02 * scale);
        checked++;
      }
      v.assign(tf.tensor(base, v.shape));
      tf.dispose(grads);
    }
    expect(checked).toBeGreaterThanOrEqual(25);
    model.dispose();
  });
});
