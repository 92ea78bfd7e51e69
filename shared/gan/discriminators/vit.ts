import * as tf from '@tensorflow/tfjs-core';
import { conv2d, dropout, layerNorm } from '../../nn/layers.ts';
import { perExampleParam } from '../../nn/perExample.ts';
import { transformerBlock } from '../../nn/transformer.ts';
import type { Backbone, BackboneOptions } from './types.ts';

/**
 * A Vision Transformer discriminator (Dosovitskiy et al. 2021), small enough for a browser GPU:
 * non-overlapping `patchSize` patches linearly embedded to `embedDim` (a conv with kernel = stride =
 * patchSize), a learned class token, learned position embeddings, `depth` pre-norm encoder blocks
 * (multi-head self-attention with `heads` heads, then an MLP with GELU, ratio 4), a final layer norm;
 * the class token's output is the feature vector.
 *
 * There is no batch norm anywhere, so the same network serves as the WGAN-GP critic (which only drops
 * the dropout on the features).
 */
export function vitBackbone({ cfg, params, critic }: BackboneOptions): Backbone {
  const { patchSize, embedDim: dim, depth, heads, dropout: rateCfg } = cfg.discriminator;
  if (cfg.imageSize % patchSize !== 0) throw new Error(`discriminator.patchSize ${patchSize} must divide imageSize ${cfg.imageSize}`);
  const rate = critic ? 0 : rateCfg;
  const grid = cfg.imageSize / patchSize;
  const tokens = grid * grid;
  const patchEmbed = conv2d(params, 'patchEmbed', 3, dim, { kernel: patchSize, stride: patchSize });
  const clsToken = params.create('clsToken', [1, 1, dim], { normal: 0.02 });
  const posEmbed = params.create('posEmbed', [1, tokens + 1, dim], { normal: 0.02 });
  const blocks = Array.from({ length: depth }, (_, i) => transformerBlock(params, `block${i + 1}`, dim, heads));
  const norm = layerNorm(params, 'norm', dim);
  return {
    featureDim: dim,
    perSample: true,
    features(x, training, dropoutSeed) {
      const b = x.shape[0];
      // 'same' padding with kernel = stride = patchSize and patchSize | imageSize pads nothing.
      const patches = tf.reshape(patchEmbed.apply(x), [b, tokens, dim]);
      // Inside a per-example pass (DP training) the token and position embeddings are example b's copies.
      const cls = (perExampleParam(clsToken) as tf.Tensor3D | null) ?? tf.tile(clsToken, [b, 1, 1]);
      let h = tf.add(tf.concat([cls, patches], 1), perExampleParam(posEmbed) ?? posEmbed) as tf.Tensor3D;
      for (const block of blocks) h = block.apply(h);
      const out = tf.reshape(tf.slice(norm.apply(h, training), [0, 0, 0], [b, 1, dim]), [b, dim]) as tf.Tensor2D;
      return dropout(out, rate, training, dropoutSeed);
    },
  };
}
