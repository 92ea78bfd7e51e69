import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { attentionCore, setAttentionCore, tfjsAttentionCore, type AttentionCoreOptions } from '../../nn/attentionCore.ts';
import { MASKED, shiftedWindowMask } from '../../nn/windows.ts';
import { attentionGradVjp, webgpuAttentionCore } from './fusedAttention.ts';

// The fused attention's CPU side (the test setup runs tfjs on the cpu backend): its fallback is the tfjs
// composition attention.ts ran before the fused kernels existed, bit for bit, and the second-order
// formula its backward kernels are differentiated with equals tfjs's own second derivative.

/** The composition attention.ts ran before attentionCore existed, verbatim (scores, bias, mask, softmax, values). */
function oldComposition(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, opts: AttentionCoreOptions): tf.Tensor3D {
  const [b, n, dim] = q.shape;
  const headDim = dim / heads;
  const split = (t: tf.Tensor3D) => tf.reshape(tf.transpose(tf.reshape(t, [b, n, heads, headDim]), [0, 2, 1, 3]), [b * heads, n, headDim]) as tf.Tensor3D;
  const qs = split(q);
  const ks = split(k);
  const vs = split(v);
  let scores = tf.matMul(qs, ks, false, true) as tf.Tensor3D;
  if (opts.bias?.rank === 4) {
    const e = opts.bias.shape[0];
    scores = tf.reshape(tf.add(tf.reshape(scores, [e, b / e, heads * n, n]), tf.reshape(opts.bias, [e, 1, heads * n, n])), [b * heads, n, n]);
  } else if (opts.bias) {
    scores = tf.reshape(tf.add(tf.reshape(scores, [b, heads, n, n]), opts.bias), [b * heads, n, n]);
  }
  if (opts.mask) {
    const g = opts.mask.shape[0];
    const perHead = tf.reshape(tf.tile(tf.reshape(opts.mask, [g, 1, n, n]), [1, heads, 1, 1]), [g * heads, n, n]);
    scores = tf.reshape(tf.add(tf.reshape(scores, [b / g, g * heads, n, n]), perHead), [b * heads, n, n]);
  }
  const heads3 = tf.matMul(tf.softmax(scores), vs);
  return tf.reshape(tf.transpose(tf.reshape(heads3, [b, heads, n, headDim]), [0, 2, 1, 3]), [b, n, dim]) as tf.Tensor3D;
}

interface Case {
  name: string;
  b: number;
  n: number;
  heads: number;
  d: number;
  bias: 'none' | 'shared' | 'perExample';
  /** Swin's shifted-window mask for a grid × grid map with windows of side √n. */
  maskGrid?: number;
}

const cases: Case[] = [
  { name: 'ViT (17 tokens, 4 heads of 6)', b: 2, n: 17, heads: 4, d: 6, bias: 'none' },
  { name: 'Swin W-MSA (bias)', b: 2, n: 16, heads: 2, d: 5, bias: 'shared' },
  { name: 'Swin SW-MSA (bias + shifted-window mask, 4 windows)', b: 8, n: 4, heads: 2, d: 3, bias: 'shared', maskGrid: 4 },
  { name: 'per-example bias (DP) + mask', b: 8, n: 4, heads: 2, d: 3, bias: 'perExample', maskGrid: 4 },
];

function inputs(c: Case, seed: number) {
  const dim = c.heads * c.d;
  const r = (shape: number[], s: number, sd = 1) => tf.randomNormal(shape, 0, sd, 'float32', seed + s);
  const q = r([c.b, c.n, dim], 1) as tf.Tensor3D;
  const k = r([c.b, c.n, dim], 2) as tf.Tensor3D;
  const v = r([c.b, c.n, dim], 3) as tf.Tensor3D;
  const dy = r([c.b, c.n, dim], 4) as tf.Tensor3D;
  const opts: AttentionCoreOptions = {};
  if (c.bias === 'shared') opts.bias = r([c.heads, c.n, c.n], 5, 0.5) as tf.Tensor3D;
  if (c.bias === 'perExample') opts.bias = r([2, c.heads, c.n, c.n], 5, 0.5) as tf.Tensor4D;
  if (c.maskGrid) {
    const m = Math.sqrt(c.n);
    const windows = (c.maskGrid / m) ** 2;
    opts.mask = tf.tensor3d(shiftedWindowMask(c.maskGrid, c.maskGrid, m, m / 2), [windows, c.n, c.n]);
  }
  return { q, k, v, dy, opts };
}

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
};

describe('fused attention: the tfjs fallback and the second-order formula (cpu backend)', () => {
  afterEach(() => setAttentionCore(null));

  it.each(cases)('$name: the fallback equals the old composition bit for bit, values and gradients, also with the WebGPU core installed', (c) => {
    expect(tf.getBackend()).toBe('cpu');
    const { q, k, v, dy, opts } = inputs(c, 10);
    if (opts.mask) expect(Array.from(opts.mask.dataSync()).some((x) => x === MASKED)).toBe(true);
    const withBias = opts.bias != null;
    const run = (f: (q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, bias: tf.Tensor | undefined) => tf.Tensor3D) => {
      const y = f(q, k, v, opts.bias);
      const grads = tf.grads((q2: tf.Tensor, k2: tf.Tensor, v2: tf.Tensor, b2?: tf.Tensor) => tf.sum(tf.mul(f(q2 as tf.Tensor3D, k2 as tf.Tensor3D, v2 as tf.Tensor3D, b2), dy)))(withBias ? [q, k, v, opts.bias!] : [q, k, v]);
      return [y, ...grads].map((t) => Array.from(t.dataSync()));
    };
    const old = run((q2, k2, v2, b2) => oldComposition(q2, k2, v2, c.heads, { ...opts, bias: b2 as tf.Tensor3D | undefined }));
    const fallback = run((q2, k2, v2, b2) => tfjsAttentionCore(q2, k2, v2, c.heads, { ...opts, bias: b2 as tf.Tensor3D | undefined }));
    setAttentionCore(webgpuAttentionCore); // installed, but the backend is cpu: it must fall back
    const hooked = run((q2, k2, v2, b2) => attentionCore(q2, k2, v2, c.heads, { ...opts, bias: b2 as tf.Tensor3D | undefined }));
    expect(old.length).toBe(withBias ? 5 : 4);
    expect(old[0].some((x) => x !== 0)).toBe(true);
    expect(fallback).toEqual(old);
    expect(hooked).toEqual(old);
  });

  it.each(cases)('$name: attentionGradVjp equals tfjs second derivatives of the composition', (c) => {
    const { q, k, v, dy, opts } = inputs(c, 20);
    const dim = c.heads * c.d;
    const r = (shape: number[], s: number) => tf.randomNormal(shape, 0, 1, 'float32', 90 + s);
    const a = r([c.b, c.n, dim], 1) as tf.Tensor3D;
    const bk = r([c.b, c.n, dim], 2) as tf.Tensor3D;
    const cv = r([c.b, c.n, dim], 3) as tf.Tensor3D;
    const e = opts.bias ? r(opts.bias.shape, 4) : null;
    // ⟨a, dq⟩ + ⟨bk, dk⟩ + ⟨c, dv⟩ (+ ⟨e, dbias⟩), the backward map taken by tfjs's autodiff of the composition.
    const pairing = (dy2: tf.Tensor, q2: tf.Tensor, k2: tf.Tensor, v2: tf.Tensor, b2?: tf.Tensor) => {
      const f = (q3: tf.Tensor, k3: tf.Tensor, v3: tf.Tensor, b3?: tf.Tensor) => tf.sum(tf.mul(tfjsAttentionCore(q3 as tf.Tensor3D, k3 as tf.Tensor3D, v3 as tf.Tensor3D, c.heads, { ...opts, bias: b3 as tf.Tensor3D | undefined }), dy2));
      const g = tf.grads(f)(b2 ? [q2, k2, v2, b2] : [q2, k2, v2]);
      const terms = [tf.sum(tf.mul(g[0], a)), tf.sum(tf.mul(g[1], bk)), tf.sum(tf.mul(g[2], cv))];
      if (b2 && e) terms.push(tf.sum(tf.mul(g[3], e)));
      return tf.addN(terms) as tf.Scalar;
    };
    const xs = opts.bias ? [dy, q, k, v, opts.bias] : [dy, q, k, v];
    const ref = tf.grads(pairing)(xs);
    const got = attentionGradVjp(dy, q, k, v, c.heads, opts, { a, bk, c: cv, e });
    const mine = [got.dy, got.q, got.k, got.v, ...(opts.bias ? [got.bias!] : [])];
    expect(mine.length).toBe(ref.length);
    for (let i = 0; i < ref.length; i++) {
      expect(mine[i].shape, `input ${i}`).toEqual(ref[i].shape);
      const want = ref[i].dataSync();
      expect(Math.max(...Array.from(want, Math.abs)), `input ${i}`).toBeGreaterThan(0);
      expect(relErr(mine[i].dataSync(), want), `input ${i}`).toBeLessThan(1e-4);
    }
  });
});
