import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { dense, conv2d, embedding } from './layers.ts';
import { ParamStore } from './params.ts';
import { withPerExampleWeights } from './perExample.ts';
import { SPECTRAL_INIT_ITERATIONS, SpectralNorm } from './spectralNorm.ts';
import { topSingularValue } from '../testing/topSingularValue.ts';

const entry = (p: ParamStore, suffix: string) => p.all().find((e) => e.name.endsWith(suffix))!.variable;
const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe('spectral normalisation (shared/nn/spectralNorm.ts)', () => {
  it('estimates the largest singular value of a conv kernel as a [k·k·in, out] matrix', () => {
    // A kernel [2, 2, 1, 3] = M [4, 3] with orthogonal columns of norms 2, 5 and 3: singular values 5, 3, 2.
    const m = [
      [2, 0, 0],
      [0, 5, 0],
      [0, 0, 3],
      [0, 0, 0],
    ];
    const sn = new SpectralNorm();
    const p = new ParamStore('d', 1, sn);
    const w = p.matrix('conv/kernel', [2, 2, 1, 3], 'glorot');
    w.variable.assign(tf.tensor4d(m.flat(), [2, 2, 1, 3]));
    for (let i = 0; i < 30; i++) sn.powerIteration();
    expect(sn.sigmas().get('d/conv/kernel')).toBeCloseTo(5, 4);
    // The layer computes with W / 5.
    expect(values(w.value())).toEqual(m.flat().map((x) => expect.closeTo(x / 5, 6)));
    p.dispose();
  });

  it('keeps u [out] and v [fanIn] as non-trainable weights after the kernel, named <kernel>/sn_u and /sn_v', () => {
    const p = new ParamStore('d', 3, new SpectralNorm());
    conv2d(p, 'conv1', 3, 8, { stride: 2 });
    dense(p, 'score', 16, 1);
    embedding(p, 'projection', 2, 16);
    expect(p.all().map((e) => [e.name, e.variable.shape, e.trainable])).toEqual([
      ['d/conv1/kernel', [3, 3, 3, 8], true],
      ['d/conv1/kernel/sn_u', [8], false],
      ['d/conv1/kernel/sn_v', [27], false],
      ['d/conv1/bias', [8], true],
      ['d/score/kernel', [16, 1], true],
      ['d/score/kernel/sn_u', [1], false],
      ['d/score/kernel/sn_v', [16], false],
      ['d/score/bias', [1], true],
      ['d/projection/table', [2, 16], true],
      ['d/projection/table/sn_u', [16], false],
      ['d/projection/table/sn_v', [2], false],
    ]);
    // The same seed gives the same state: creation order and the initial power iterations are deterministic.
    const q = new ParamStore('d', 3, new SpectralNorm());
    conv2d(q, 'conv1', 3, 8, { stride: 2 });
    expect(values(entry(q, 'conv1/kernel/sn_u'))).toEqual(values(entry(p, 'conv1/kernel/sn_u')));
    p.dispose();
    q.dispose();
  });

  it(`starts from ${SPECTRAL_INIT_ITERATIONS} iterations: a glorot kernel computes with W / σ of spectral norm ≈ 1, and u, v are unit vectors`, () => {
    const p = new ParamStore('d', 5, new SpectralNorm());
    const layer = conv2d(p, 'conv1', 4, 6, { stride: 2 });
    const kernel = entry(p, 'conv1/kernel');
    // The layer's output equals the convolution with W / σ(W), σ the reference's top singular value (±1 %).
    const x = tf.randomNormal([1, 5, 5, 4], 0, 1, 'float32', 9) as tf.Tensor4D;
    const sigma = topSingularValue(values(kernel), 36, 6);
    const expected = values(tf.conv2d(x, tf.div(kernel, sigma) as tf.Tensor4D, 2, 'same'));
    const got = values(layer.apply(x));
    got.forEach((g, i) => expect(g).toBeCloseTo(expected[i], 1));
    expect(Math.abs(got.reduce((a, g, i) => a + Math.abs(g - expected[i]), 0) / expected.reduce((a, e) => a + Math.abs(e), 0))).toBeLessThan(0.01);
    expect(Math.hypot(...values(entry(p, 'kernel/sn_u')))).toBeCloseTo(1, 5);
    expect(Math.hypot(...values(entry(p, 'kernel/sn_v')))).toBeCloseTo(1, 5);
    p.dispose();
  });

  it('differentiates W / σ(W) with u and v held constant: ∂/∂W ⟨C, W/σ⟩ = C/σ − ⟨C, W⟩/σ² · v·uᵀ', () => {
    const p = new ParamStore('d', 7, new SpectralNorm());
    const w = p.matrix('fc/kernel', [3, 2], 'glorot');
    w.variable.assign(tf.tensor2d([0.3, -0.7, 0.5, 0.2, -0.4, 0.9], [3, 2]));
    entry(p, 'sn_u').assign(tf.tensor1d([0.6, 0.8]));
    entry(p, 'sn_v').assign(tf.tensor1d([0.48, 0.6, 0.64]));
    const c = [1.5, -2, 0.25, 3, -1, 0.5];
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(w.value(), tf.tensor2d(c, [3, 2]))) as tf.Scalar, [w.variable]);
    // Reference, in float64: σ = vᵀWu, d = C/σ − ⟨C,W⟩/σ² · v uᵀ.
    const W = [0.3, -0.7, 0.5, 0.2, -0.4, 0.9];
    const u = [0.6, 0.8];
    const v = [0.48, 0.6, 0.64];
    const sigma = v.reduce((a, vi, i) => a + vi * (W[2 * i] * u[0] + W[2 * i + 1] * u[1]), 0);
    const cw = c.reduce((a, ci, i) => a + ci * W[i], 0);
    const expected = c.map((ci, k) => ci / sigma - (cw / sigma ** 2) * v[Math.floor(k / 2)] * u[k % 2]);
    values(grads[w.variable.name]).forEach((g, i) => expect(g).toBeCloseTo(expected[i], 5));
    p.dispose();
  });

  it('is differentiable twice: a penalty on ∇ₓ of a normalised layer has the float64 finite-difference gradient in W', () => {
    // f(W) = ‖∇ₓ Σ_j sin((x · W/σ(W))_j)‖², σ = vᵀWu with u, v fixed; reference by central differences in float64.
    const x = [0.9, -0.4, 0.7];
    const u = [0.6, 0.8];
    const v = [0.48, 0.6, 0.64];
    const W0 = [0.3, -0.7, 0.5, 0.2, -0.4, 0.9];
    const f64 = (W: number[]) => {
      const sigma = v.reduce((a, vi, i) => a + vi * (W[2 * i] * u[0] + W[2 * i + 1] * u[1]), 0);
      const ws = W.map((w) => w / sigma);
      const h = [0, 1].map((j) => x.reduce((a, xi, i) => a + xi * ws[2 * i + j], 0));
      const dh = h.map((hj) => Math.cos(hj));
      const gx = [0, 1, 2].map((i) => ws[2 * i] * dh[0] + ws[2 * i + 1] * dh[1]);
      return gx.reduce((a, g) => a + g * g, 0);
    };
    const expected = W0.map((_, k) => {
      const e = 1e-6;
      const plus = W0.slice();
      const minus = W0.slice();
      plus[k] += e;
      minus[k] -= e;
      return (f64(plus) - f64(minus)) / (2 * e);
    });

    const p = new ParamStore('d', 7, new SpectralNorm());
    const layer = dense(p, 'fc', 3, 2, false);
    entry(p, 'fc/kernel').assign(tf.tensor2d(W0, [3, 2]));
    entry(p, 'sn_u').assign(tf.tensor1d(u));
    entry(p, 'sn_v').assign(tf.tensor1d(v));
    const kernel = entry(p, 'fc/kernel');
    const { grads } = tf.variableGrads(() => {
      const gx = tf.grad((xx: tf.Tensor) => tf.sum(tf.sin(layer.apply(xx as tf.Tensor2D))))(tf.tensor2d([x]));
      return tf.sum(tf.square(gx)) as tf.Scalar;
    }, [kernel]);
    values(grads[kernel.name]).forEach((g, i) => expect(g).toBeCloseTo(expected[i], 4));
    p.dispose();
  });

  it('refuses to run inside a per-example pass (differential privacy), naming the weight and the option', () => {
    const p = new ParamStore('d', 1, new SpectralNorm());
    const layer = dense(p, 'score', 4, 1);
    const kernel = entry(p, 'score/kernel');
    const copies = new Map([[kernel, tf.stack([kernel, kernel])]]);
    expect(() => withPerExampleWeights(2, copies, () => layer.apply(tf.ones([2, 4])))).toThrow(
      'd/score/kernel is spectrally normalised and cannot run in a per-example pass (differential privacy): turn discriminator.spectralNorm off',
    );
    p.dispose();
  });

  it('keeps u and v finite when a weight is all zero (e.g. an average of opposite weights)', () => {
    const sn = new SpectralNorm();
    const p = new ParamStore('d', 1, sn);
    const w = p.matrix('fc/kernel', [3, 2], 'glorot');
    w.variable.assign(tf.zeros([3, 2]));
    sn.powerIteration();
    expect(values(entry(p, 'sn_u')).every(Number.isFinite)).toBe(true);
    expect(values(entry(p, 'sn_v')).every(Number.isFinite)).toBe(true);
    p.dispose();
  });
});
