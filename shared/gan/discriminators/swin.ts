import * as tf from '@tensorflow/tfjs-core';
import type { GanConfig } from '../../config/ganConfig.ts';
import { multiHeadSelfAttention } from '../../nn/attention.ts';
import { conv2d, dense, dropout, layerNorm } from '../../nn/layers.ts';
import { perExampleWeight } from '../../nn/perExample.ts';
import type { ParamStore } from '../../nn/params.ts';
import { mlp } from '../../nn/transformer.ts';
import { relativePositionIndex, roll, shiftedWindowMask, windowPartition, windowReverse } from '../../nn/windows.ts';
import type { Backbone, BackboneOptions } from './types.ts';

/** One stage of the Swin discriminator: its token grid (grid × grid), width, heads and window. */
export interface SwinStage {
  grid: number;
  dim: number;
  heads: number;
  /** Window side: `windowSize`, or the whole grid once the grid is no larger. */
  window: number;
  /** Cyclic shift of the odd blocks: ⌊window/2⌋, or 0 when one window covers the grid. */
  shift: number;
}

/** Swin-T has four stages; small images get fewer. */
export const SWIN_MAX_STAGES = 4;

/**
 * The stage layout for a config: stage 1 works on the (imageSize/patchSize)² patch grid with
 * `embedDim` channels and `heads` heads; each further stage halves the grid (patch merging) and doubles
 * channels and heads, as long as the halved grid still holds whole windows (and at most four stages).
 */
export function swinStages(cfg: GanConfig): SwinStage[] {
  const { patchSize, embedDim, heads, windowSize: m } = cfg.discriminator;
  if (cfg.imageSize % patchSize !== 0) throw new Error(`discriminator.patchSize ${patchSize} must divide imageSize ${cfg.imageSize}`);
  if (embedDim % heads !== 0) throw new Error(`discriminator.embedDim ${embedDim} must be divisible by discriminator.heads ${heads}`);
  const grid0 = cfg.imageSize / patchSize;
  if (grid0 > m && grid0 % m !== 0) {
    throw new Error(`discriminator.windowSize ${m} must divide the swin patch grid ${grid0} (imageSize ${cfg.imageSize} / patchSize ${patchSize})`);
  }
  const stages: SwinStage[] = [];
  let g = grid0;
  for (let s = 0; s < SWIN_MAX_STAGES; s++) {
    const window = Math.min(m, g);
    stages.push({ grid: g, dim: embedDim << s, heads: heads << s, window, shift: g > m ? Math.floor(m / 2) : 0 });
    const next = g / 2;
    if (g % 2 !== 0 || next < m || next % m !== 0) break;
    g = next;
  }
  return stages;
}

/**
 * A Swin Transformer discriminator (Liu et al. 2021) at a small size: patch embedding (kernel = stride =
 * patchSize) with layer norm, then stages of `depth` blocks each, alternating window attention (W-MSA)
 * and shifted-window attention (SW-MSA, cyclic shift by ⌊M/2⌋ with the wrap-around mask), each block
 * pre-norm with a learned relative position bias and a GELU MLP (ratio 4); patch merging (2×2
 * neighbours concatenated, layer norm, linear 4C → 2C) between stages; final layer norm and global
 * average pooling. No batch norm, so it is also the WGAN-GP critic (without dropout). Use an even depth
 * so every stage holds shifted blocks.
 */
export function swinBackbone({ cfg, params, critic }: BackboneOptions): Backbone {
  const { patchSize, depth, dropout: rateCfg } = cfg.discriminator;
  const rate = critic ? 0 : rateCfg;
  const stages = swinStages(cfg);
  const first = stages[0];
  const patchEmbed = conv2d(params, 'patchEmbed', 3, first.dim, { kernel: patchSize, stride: patchSize });
  const patchNorm = layerNorm(params, 'patchNorm', first.dim);
  const built = stages.map((st, s) => ({
    blocks: Array.from({ length: depth }, (_, i) => swinBlock(params, `stage${s + 1}/block${i + 1}`, st, i % 2 === 1 ? st.shift : 0)),
    merge: s + 1 < stages.length ? patchMerging(params, `stage${s + 1}/merge`, st.dim) : undefined,
  }));
  const last = stages[stages.length - 1];
  const norm = layerNorm(params, 'norm', last.dim);
  return {
    featureDim: last.dim,
    perSample: true,
    features(x, training, dropoutSeed) {
      let h = patchNorm.apply(patchEmbed.apply(x), training) as tf.Tensor4D;
      for (const { blocks, merge } of built) {
        for (const block of blocks) h = block.apply(h);
        if (merge) h = merge.apply(h);
      }
      const pooled = tf.mean(norm.apply(h, training), [1, 2]) as tf.Tensor2D;
      return dropout(pooled, rate, training, dropoutSeed);
    },
  };
}

interface SwinBlock {
  apply(x: tf.Tensor4D): tf.Tensor4D;
}

/** x ← x + unshift(W-MSA(shift(LN(x))));  x ← x + MLP(LN(x)). Weights `<name>/{norm1,attention,relativePositionBias,norm2,mlp}`. */
function swinBlock(p: ParamStore, name: string, st: SwinStage, shift: number): SwinBlock {
  const { dim, heads, window: m, grid } = st;
  const norm1 = layerNorm(p, `${name}/norm1`, dim);
  const attention = multiHeadSelfAttention(p, `${name}/attention`, dim, heads);
  const table = p.create(`${name}/relativePositionBias`, [(2 * m - 1) ** 2, heads], { normal: 0.02 });
  const norm2 = layerNorm(p, `${name}/norm2`, dim);
  const ffn = mlp(p, `${name}/mlp`, dim, 4 * dim);
  const index = relativePositionIndex(m);
  const mask = shift > 0 ? shiftedWindowMask(grid, grid, m, shift) : undefined;
  const windows = (grid / m) ** 2;
  const mm = m * m;
  return {
    apply(x) {
      // Constants are made per call (tiny uploads) so nothing outlives the caller's tidy.
      const idx = tf.tensor1d(index, 'int32');
      // Inside a per-example pass (DP training) each example gets its copy of the table: bias [B, heads, M², M²].
      const own = perExampleWeight(table);
      const bias = own
        ? (tf.transpose(tf.reshape(tf.gather(own, idx, 1), [own.shape[0], mm, mm, heads]), [0, 3, 1, 2]) as tf.Tensor4D)
        : (tf.transpose(tf.reshape(tf.gather(table, idx), [mm, mm, heads]), [2, 0, 1]) as tf.Tensor3D);
      let y = norm1.apply(x, true) as tf.Tensor4D;
      if (shift) y = roll(y, -shift);
      const attended = attention.apply(windowPartition(y, m), { bias, mask: mask && tf.tensor3d(mask, [windows, mm, mm]) });
      y = windowReverse(attended, grid, grid, m);
      if (shift) y = roll(y, shift);
      const h = tf.add(x, y) as tf.Tensor4D;
      return tf.add(h, ffn.apply(norm2.apply(h, true))) as tf.Tensor4D;
    },
  };
}

interface PatchMerging {
  apply(x: tf.Tensor4D): tf.Tensor4D;
}

/** [B, H, W, C] → [B, H/2, W/2, 2C]: each 2×2 neighbourhood concatenated (4C), layer norm, linear 4C → 2C without bias. */
function patchMerging(p: ParamStore, name: string, dim: number): PatchMerging {
  const norm = layerNorm(p, `${name}/norm`, 4 * dim);
  const reduction = dense(p, `${name}/reduction`, 4 * dim, 2 * dim, false);
  return {
    apply(x) {
      const [b, h, w, c] = x.shape;
      // [B·H/2, 2, W/2, 2C] → [B·H/2, W/2, 2, 2C] → [B, H/2, W/2, 4C] (rank ≤ 4 for every backend)
      const merged = tf.reshape(tf.transpose(tf.reshape(x, [b * (h / 2), 2, w / 2, 2 * c]), [0, 2, 1, 3]), [b * (h / 2) * (w / 2), 4 * c]);
      return tf.reshape(reduction.apply(norm.apply(merged, true) as tf.Tensor2D), [b, h / 2, w / 2, 2 * c]);
    },
  };
}
