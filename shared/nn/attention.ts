import * as tf from '@tensorflow/tfjs-core';
import { dense } from './layers.ts';
import type { ParamStore } from './params.ts';

/**
 * Multi-head self-attention (Vaswani et al. 2017) from raw tfjs-core ops, because tfjs-layers has none:
 *
 *     head_h(X) = softmax(Q_h K_hᵀ / √d_h + bias_h + mask) V_h,   Q = X W_q, K = X W_k, V = X W_v
 *     MHSA(X)   = concat_h(head_h) W_o
 *
 * Every op used (matMul, softmax, transpose, reshape, add) has a tfjs gradient that is itself
 * differentiable, so critics built from it support the WGAN-GP gradient penalty.
 * Weights: `<name>/{query,key,value,output}/{kernel,bias}`.
 */
export interface AttentionOptions {
  /**
   * Additive bias per head, [heads, N, N], e.g. Swin's relative position bias. Added to every item. Or one
   * per example, [E, heads, N, N] (a per-example pass, perExample.ts): the batch is then E examples of
   * B/E items each (example-major, as windowPartition lays out an image's windows).
   */
  bias?: tf.Tensor3D | tf.Tensor4D;
  /**
   * Additive mask [G, N, N] (0 to keep a pair, a large negative value to cut it), e.g. Swin's
   * shifted-window mask. The batch must be a multiple of G; item b uses mask b mod G.
   */
  mask?: tf.Tensor3D;
}

export interface MultiHeadAttention {
  readonly dim: number;
  readonly heads: number;
  /** x: [B, N, dim] → [B, N, dim]. */
  apply(x: tf.Tensor3D, opts?: AttentionOptions): tf.Tensor3D;
}

export function multiHeadSelfAttention(p: ParamStore, name: string, dim: number, heads: number): MultiHeadAttention {
  if (!Number.isInteger(heads) || heads < 1) throw new Error(`attention ${name}: heads must be a positive integer, got ${heads}`);
  if (dim % heads !== 0) throw new Error(`attention ${name}: dim ${dim} is not divisible by heads ${heads}`);
  const headDim = dim / heads;
  const scale = 1 / Math.sqrt(headDim);
  const query = dense(p, `${name}/query`, dim, dim);
  const key = dense(p, `${name}/key`, dim, dim);
  const value = dense(p, `${name}/value`, dim, dim);
  const output = dense(p, `${name}/output`, dim, dim);
  return {
    dim,
    heads,
    apply(x, opts = {}) {
      const [b, n, d] = x.shape;
      if (d !== dim) throw new Error(`attention ${name}: expected ${dim} features per token, got ${d}`);
      const flat = tf.reshape(x, [b * n, dim]) as tf.Tensor2D;
      // [B·N, dim] → [B·heads, N, headDim]
      const split = (t: tf.Tensor2D) => tf.reshape(tf.transpose(tf.reshape(t, [b, n, heads, headDim]), [0, 2, 1, 3]), [b * heads, n, headDim]) as tf.Tensor3D;
      const q = split(tf.mul(query.apply(flat), scale) as tf.Tensor2D);
      const k = split(key.apply(flat));
      const v = split(value.apply(flat));
      let scores = tf.matMul(q, k, false, true) as tf.Tensor3D; // [B·heads, N, N]
      if (opts.bias?.rank === 4) {
        const e = opts.bias.shape[0];
        checkShape(opts.bias, [e, heads, n, n], `attention ${name}: per-example bias`);
        if (b % e !== 0) throw new Error(`attention ${name}: batch ${b} is not a multiple of the bias's ${e} examples`);
        scores = tf.reshape(tf.add(tf.reshape(scores, [e, b / e, heads * n, n]), tf.reshape(opts.bias, [e, 1, heads * n, n])), [b * heads, n, n]);
      } else if (opts.bias) {
        checkShape(opts.bias, [heads, n, n], `attention ${name}: bias`);
        scores = tf.reshape(tf.add(tf.reshape(scores, [b, heads, n, n]), opts.bias), [b * heads, n, n]);
      }
      if (opts.mask) {
        const g = opts.mask.shape[0];
        checkShape(opts.mask, [g, n, n], `attention ${name}: mask`);
        if (b % g !== 0) throw new Error(`attention ${name}: batch ${b} is not a multiple of the mask's ${g} groups`);
        // Item b·heads + h of the scores belongs to group (b mod G): repeat each group's mask per head.
        const perHead = tf.reshape(tf.tile(tf.reshape(opts.mask, [g, 1, n, n]), [1, heads, 1, 1]), [g * heads, n, n]);
        scores = tf.reshape(tf.add(tf.reshape(scores, [b / g, g * heads, n, n]), perHead), [b * heads, n, n]);
      }
      const attn = tf.softmax(scores);
      const heads3 = tf.matMul(attn, v); // [B·heads, N, headDim]
      const merged = tf.reshape(tf.transpose(tf.reshape(heads3, [b, heads, n, headDim]), [0, 2, 1, 3]), [b * n, dim]) as tf.Tensor2D;
      return tf.reshape(output.apply(merged), [b, n, dim]) as tf.Tensor3D;
    },
  };
}

function checkShape(t: tf.Tensor, expected: number[], what: string): void {
  if (t.rank !== expected.length || t.shape.some((s, i) => s !== expected[i])) {
    throw new Error(`${what} has shape [${t.shape}], expected [${expected}]`);
  }
}
