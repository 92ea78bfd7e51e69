import * as tf from '@tensorflow/tfjs-core';
import { multiHeadSelfAttention, type AttentionOptions, type MultiHeadAttention } from './attention.ts';
import { dense, layerNorm, type Norm } from './layers.ts';
import type { ParamStore } from './params.ts';

/** Exact GELU (Hendrycks & Gimpel 2016), x·Φ(x) = ½x(1 + erf(x/√2)), as ViT and Swin use it. */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

export interface Mlp {
  /** x: [..., dim] → [..., dim] (applied per token). */
  apply<T extends tf.Tensor>(x: T): T;
}

/** The transformer's per-token MLP: dense dim→hidden, GELU, dense hidden→dim. Weights `<name>/{fc1,fc2}`. */
export function mlp(p: ParamStore, name: string, dim: number, hidden: number): Mlp {
  const fc1 = dense(p, `${name}/fc1`, dim, hidden);
  const fc2 = dense(p, `${name}/fc2`, hidden, dim);
  return {
    apply<T extends tf.Tensor>(x: T): T {
      const flat = tf.reshape(x, [-1, dim]) as tf.Tensor2D;
      return tf.reshape(fc2.apply(gelu(fc1.apply(flat))), x.shape) as T;
    },
  };
}

export interface TransformerBlock {
  readonly attention: MultiHeadAttention;
  /** x: [B, N, dim] → [B, N, dim]. */
  apply(x: tf.Tensor3D, opts?: AttentionOptions): tf.Tensor3D;
}

/**
 * Pre-norm transformer encoder block (ViT):  x ← x + MHSA(LN(x));  x ← x + MLP(LN(x)).
 * Weights `<name>/{norm1,attention,norm2,mlp}/…`.
 */
export function transformerBlock(p: ParamStore, name: string, dim: number, heads: number, mlpRatio = 4): TransformerBlock {
  const norm1: Norm = layerNorm(p, `${name}/norm1`, dim);
  const attention = multiHeadSelfAttention(p, `${name}/attention`, dim, heads);
  const norm2: Norm = layerNorm(p, `${name}/norm2`, dim);
  const ffn = mlp(p, `${name}/mlp`, dim, Math.round(dim * mlpRatio));
  return {
    attention,
    apply(x, opts) {
      const h = tf.add(x, attention.apply(norm1.apply(x, true) as tf.Tensor3D, opts)) as tf.Tensor3D;
      return tf.add(h, ffn.apply(norm2.apply(h, true))) as tf.Tensor3D;
    },
  };
}
