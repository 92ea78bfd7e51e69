import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { setRandomOps, tfjsRandomOps } from '../nn/random.ts';
import { bceWithLogits, gradientPenalty, softmaxCrossEntropy } from './losses.ts';

/** The shared loss helpers against numbers worked out by hand (softplus(x) = ln(1 + eˣ)). */

afterEach(() => setRandomOps(null));

const value = (t: tf.Scalar) => {
  const v = t.dataSync()[0];
  t.dispose();
  return v;
};

describe('bceWithLogits', () => {
  // softplus(2) = 2.1269280110, softplus(0) = ln 2 = 0.6931471806, softplus(−3) = 0.0485873516
  it('target 1 is mean −ln σ(x) = mean softplus(−x)', () => {
    const logits = tf.tensor1d([-2, 0, 3]);
    // (softplus(2) + softplus(0) + softplus(−3)) / 3
    expect(value(bceWithLogits(logits, 1))).toBeCloseTo((2.126928011 + 0.6931471806 + 0.0485873516) / 3, 6);
    logits.dispose();
  });

  it('target 0 is mean −ln(1 − σ(x)) = mean softplus(x)', () => {
    const logits = tf.tensor1d([-2, 0, 3]);
    // softplus(−2) = 0.1269280110, softplus(3) = 3.0485873516
    expect(value(bceWithLogits(logits, 0))).toBeCloseTo((0.126928011 + 0.6931471806 + 3.0485873516) / 3, 6);
    logits.dispose();
  });

  it('stays finite and exact for large logits', () => {
    const logits = tf.tensor1d([-100, 100]);
    // target 1: (softplus(100) + softplus(−100)) / 2 = (100 + e⁻¹⁰⁰) / 2
    expect(value(bceWithLogits(logits, 1))).toBeCloseTo(50, 4);
    logits.dispose();
  });
});

describe('softmaxCrossEntropy', () => {
  it('is the mean over rows of −ln softmax(logits)[label]', () => {
    const logits = tf.tensor2d([
      [1, 2, 3],
      [0, 0, 0],
    ]);
    const labels = tf.tensor1d([2, 1], 'int32');
    // row 0: ln(e + e² + e³) − 3 = 3.4076059644 − 3 = 0.4076059644; row 1: ln 3 = 1.0986122887
    expect(value(softmaxCrossEntropy(logits, labels))).toBeCloseTo((0.4076059644 + 1.0986122887) / 2, 6);
    // The label picks the row's class: label 0 in row 0 costs ln(e + e² + e³) − 1.
    const other = tf.tensor1d([0, 1], 'int32');
    expect(value(softmaxCrossEntropy(logits, other))).toBeCloseTo((2.4076059644 + 1.0986122887) / 2, 6);
    tf.dispose([logits, labels, other]);
  });
});

describe('gradientPenalty', () => {
  it('is λ·mean((‖∇D(x̂)‖ − 1)²) at x̂ = ε·real + (1 − ε)·fake, ε drawn per sample', () => {
    // ε is the step's one uniform draw, fixed here: 0.25 for sample 0, 0.75 for sample 1.
    const drawn: number[][] = [];
    setRandomOps({
      ...tfjsRandomOps,
      uniform: (shape, min, max) => {
        drawn.push([...shape, min, max]);
        return tf.tensor4d([0.25, 0.75], [2, 1, 1, 1]);
      },
    });
    const real = tf.tensor4d([1, 2, 0, 4], [2, 1, 1, 2]);
    const fake = tf.tensor4d([-1, 0, 2, 0], [2, 1, 1, 2]);
    // D(x) = ½‖x‖² per sample, so ∇D(x̂) = x̂.
    const critic = (x: tf.Tensor4D) => tf.sum(tf.mul(0.5, tf.square(x)), [1, 2, 3]) as tf.Tensor1D;
    // x̂₀ = 0.25·(1, 2) + 0.75·(−1, 0) = (−0.5, 0.5): ‖x̂₀‖ = √0.5, (√0.5 − 1)² = 1.5 − √2 = 0.0857864376
    // x̂₁ = 0.75·(0, 4) + 0.25·(2, 0) = (0.5, 3):    ‖x̂₁‖ = √9.25, (√9.25 − 1)² = 10.25 − 2√9.25 = 4.1672374697
    // λ = 10: 10 · (0.0857864376 + 4.1672374697) / 2 = 21.2651195366
    expect(value(gradientPenalty(critic, real, fake, 10, 5))).toBeCloseTo(21.2651195366, 4);
    expect(drawn).toEqual([[2, 1, 1, 1, 0, 1]]);
    // λ scales it linearly; a critic with unit-norm gradients costs nothing.
    expect(value(gradientPenalty(critic, real, fake, 1, 5))).toBeCloseTo(2.1265119537, 5);
    const unit = (x: tf.Tensor4D) => tf.mul(tf.sum(x, [1, 2, 3]), Math.SQRT1_2) as tf.Tensor1D;
    expect(value(gradientPenalty(unit, real, fake, 10, 5))).toBeCloseTo(0, 5);
    tf.dispose([real, fake]);
  });
});
