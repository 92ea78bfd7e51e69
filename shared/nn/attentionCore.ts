import * as tf from '@tensorflow/tfjs-core';

/**
 * The core of multi-head self-attention, between the projections: per head h,
 *
 *     head_h = softmax(Q_h K_hᵀ + bias_h + mask) V_h
 *
 * with q (already scaled by 1/√d_h), k and v given as [B, N, dim] (head h is features h·d_h … (h+1)·d_h − 1)
 * and the heads returned concatenated, [B, N, dim], ready for the output projection. tfjs ops by default
 * (split heads, matMul, add bias and mask, softmax, matMul, merge heads: about ten dispatches forward and
 * twenty backward on a GPU); a backend's fast path may install a fused kernel with `setAttentionCore` (the
 * WebGPU path does: shared/kernels/webgpu/fusedAttention.ts). WGAN-GP's critics differentiate it twice, so
 * an installed kernel must have first- and second-order gradients.
 *
 * The caller (attention.ts) has checked the shapes: bias [heads, N, N] (every item) or [E, heads, N, N]
 * (item b belongs to example ⌊b/(B/E)⌋), mask [G, N, N] (item b uses mask b mod G).
 */
export interface AttentionCoreOptions {
  bias?: tf.Tensor3D | tf.Tensor4D;
  mask?: tf.Tensor3D;
}

export type AttentionCore = (q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, opts: AttentionCoreOptions) => tf.Tensor3D;

export const tfjsAttentionCore: AttentionCore = (q, k, v, heads, opts) => {
  const [b, n, dim] = q.shape;
  const headDim = dim / heads;
  // [B, N, dim] → [B·heads, N, headDim]
  const split = (t: tf.Tensor3D) => tf.reshape(tf.transpose(tf.reshape(t, [b, n, heads, headDim]), [0, 2, 1, 3]), [b * heads, n, headDim]) as tf.Tensor3D;
  const attn = tf.softmax(attentionScores(split(q), split(k), heads, opts));
  const heads3 = tf.matMul(attn, split(v)); // [B·heads, N, headDim]
  return tf.reshape(tf.transpose(tf.reshape(heads3, [b, heads, n, headDim]), [0, 2, 1, 3]), [b, n, dim]) as tf.Tensor3D;
};

/** Q Kᵀ + bias + mask for split heads q, k: [B·heads, N, d] → [B·heads, N, N]. */
export function attentionScores(q: tf.Tensor3D, k: tf.Tensor3D, heads: number, opts: AttentionCoreOptions): tf.Tensor3D {
  const [bh, n] = q.shape;
  const b = bh / heads;
  let scores = tf.matMul(q, k, false, true) as tf.Tensor3D; // [B·heads, N, N]
  if (opts.bias?.rank === 4) {
    const e = opts.bias.shape[0];
    scores = tf.reshape(tf.add(tf.reshape(scores, [e, b / e, heads * n, n]), tf.reshape(opts.bias, [e, 1, heads * n, n])), [b * heads, n, n]);
  } else if (opts.bias) {
    scores = tf.reshape(tf.add(tf.reshape(scores, [b, heads, n, n]), opts.bias), [b * heads, n, n]);
  }
  if (opts.mask) {
    const g = opts.mask.shape[0];
    // Item b·heads + h of the scores belongs to group (b mod G): repeat each group's mask per head.
    const perHead = tf.reshape(tf.tile(tf.reshape(opts.mask, [g, 1, n, n]), [1, heads, 1, 1]), [g * heads, n, n]);
    scores = tf.reshape(tf.add(tf.reshape(scores, [b / g, g * heads, n, n]), perHead), [b * heads, n, n]);
  }
  return scores;
}

let impl: AttentionCore = tfjsAttentionCore;

export function attentionCore(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, opts: AttentionCoreOptions = {}): tf.Tensor3D {
  return impl(q, k, v, heads, opts);
}

/** Install an attention-core implementation (null restores tfjs ops). */
export function setAttentionCore(f: AttentionCore | null): void {
  impl = f ?? tfjsAttentionCore;
}
