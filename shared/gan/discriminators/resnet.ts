import * as tf from '@tensorflow/tfjs-core';
import { batchNorm, conv2d, dropout, layerNorm, leakyRelu, type Conv2D, type Norm } from '../../nn/layers.ts';
import type { ParamStore } from '../../nn/params.ts';
import type { Backbone, BackboneOptions } from './types.ts';

/** Batch-norm moving-average momentum (Keras convention; PyTorch's 0.1). */
const BN_MOMENTUM = 0.9;

/** Basic blocks per stage, as in ResNet-18 (He et al. 2016). */
export const RESNET_BLOCKS = [2, 2, 2, 2] as const;

/**
 * A small ResNet-18-style discriminator: a 3×3 stride-2 stem, then four stages of two basic blocks
 * (conv 3×3 → norm → LeakyReLU(0.2) → conv 3×3 → norm, plus the identity or a 1×1 projection, then
 * LeakyReLU), channels `baseChannels·{1,2,4,8}`, stages 2–4 downsampling by a stride-2 first conv,
 * then global average pooling. The stem replaces ResNet's 7×7 conv + max-pool, which would shrink
 * a 64 px tile to 16 px at once. LeakyReLU instead of ReLU, as GAN discriminators use.
 *
 * Norms: batch norm (`…/bn<k>`, kept local under FedBN) for ACGAN/CGAN; layer norm over channels
 * (`…/ln<k>`) for the WGAN-GP critic, whose gradient penalty is per sample. Critics skip dropout.
 */
export function resnetBackbone({ cfg, params, critic }: BackboneOptions): Backbone {
  const base = cfg.discriminator.baseChannels;
  const rate = critic ? 0 : cfg.discriminator.dropout;
  const norm = (name: string, k: number, channels: number): Norm =>
    critic ? layerNorm(params, `${name}/ln${k}`, channels) : batchNorm(params, `${name}/bn${k}`, channels, BN_MOMENTUM);

  const stemConv = conv2d(params, 'stem/conv', 3, base, { stride: 2, bias: false });
  const stemNorm = norm('stem', 1, base);
  const blocks: BasicBlock[] = [];
  let inC = base;
  RESNET_BLOCKS.forEach((count, s) => {
    const outC = base << s;
    for (let i = 0; i < count; i++) {
      const stride = s > 0 && i === 0 ? 2 : 1;
      blocks.push(basicBlock(params, `stage${s + 1}/block${i + 1}`, inC, outC, stride, norm));
      inC = outC;
    }
  });
  return {
    featureDim: inC,
    perSample: critic, // batch norm outside the critic
    features(x, training, dropoutSeed) {
      let y = leakyRelu(stemNorm.apply(stemConv.apply(x), training) as tf.Tensor4D);
      for (const block of blocks) y = block.apply(y, training);
      return dropout(tf.mean(y, [1, 2]) as tf.Tensor2D, rate, training, dropoutSeed);
    },
  };
}

interface BasicBlock {
  apply(x: tf.Tensor4D, training: boolean): tf.Tensor4D;
}

function basicBlock(
  p: ParamStore,
  name: string,
  inC: number,
  outC: number,
  stride: number,
  norm: (name: string, k: number, channels: number) => Norm,
): BasicBlock {
  const conv1 = conv2d(p, `${name}/conv1`, inC, outC, { stride, bias: false });
  const norm1 = norm(name, 1, outC);
  const conv2 = conv2d(p, `${name}/conv2`, outC, outC, { bias: false });
  const norm2 = norm(name, 2, outC);
  let shortcut: { conv: Conv2D; norm: Norm } | undefined;
  if (stride !== 1 || inC !== outC) {
    shortcut = { conv: conv2d(p, `${name}/shortcut`, inC, outC, { kernel: 1, stride, bias: false }), norm: norm(name, 3, outC) };
  }
  return {
    apply(x, training) {
      const h = leakyRelu(norm1.apply(conv1.apply(x), training) as tf.Tensor4D);
      const r = norm2.apply(conv2.apply(h), training) as tf.Tensor4D;
      const s = shortcut ? (shortcut.norm.apply(shortcut.conv.apply(x), training) as tf.Tensor4D) : x;
      return leakyRelu(tf.add(r, s) as tf.Tensor4D);
    },
  };
}
