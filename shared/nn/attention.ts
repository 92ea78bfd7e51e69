import * as tf from '@tensorflow/tfjs-core';
import { dense } from './layers.ts';
import type { ParamStore } from './params.ts';
import { attentionCore } from './attentionCore.ts';

/**
 * Multi-head self-attention (Vaswani et al. 2017) from raw tfjs-core ops, because tfjs-layers has none:
 *
 *     head_h(X) = softmax(Q_h K_hᵀ / √d_h + bias_h + mask) V_h,   Q = X W_q, K = X W_k, V = X W_v
 *     MHSA(X)   = concat_h(head_h) W_o
 *
 * Every op used (matMul, softmax, transpose, reshape, add) has a tfjs gradient that is itself
 * differentiable, so critics built from it support the WGAN-GP gradient penalty. The part between the
 * projections is `attentionCore` (attentionCore.ts), which the WebGPU fast path replaces by fused kernels.
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
      const tokens = (t: tf.Tensor2D) => tf.reshape(t, [b, n, dim]) as tf.Tensor3D;
      const q = tokens(tf.mul(query.apply(flat), scale) as tf.Tensor2D);
      const k = tokens(key.apply(flat));
      const v = tokens(value.apply(flat));
      if (opts.bias?.rank === 4) {
        const e = opts.bias.shape[0];
        checkShape(opts.bias, [e, heads, n, n], `attention ${name}: per-example bias`);
        if (b % e !== 0) throw new Error(`attention ${name}: batch ${b} is not a multiple of the bias's ${e} examples`);
      } else if (opts.bias) {
        checkShape(opts.bias, [heads, n, n], `attention ${name}: bias`);
      }
      if (opts.mask) {
        const g = opts.mask.shape[0];
        checkShape(opts.mask, [g, n, n], `attention ${name}: mask`);
        if (b % g !== 0) throw new Error(`attention ${name}: batch ${b} is not a multiple of the mask's ${g} groups`);
      }
      // Scores, bias, mask, softmax and the weighted sum of values per head: tfjs ops, or a fused kernel
      // installed by a backend's fast path (attentionCore.ts).
      const merged = tf.reshape(attentionCore(q, k, v, heads, opts), [b * n, dim]) as tf.Tensor2D;
      return tf.reshape(output.apply(merged), [b, n, dim]) as tf.Tensor3D;
    },
  };
}

function checkShape(t: tf.Tensor, expected: number[], what: string): void {
  if (t.rank !== expected.length || t.shape.some((s, i) => s !== expected[i])) {
    throw new Error(`${what} has shape [${t.shape}], expected [${expected}]`);
  }
}
