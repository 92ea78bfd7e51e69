import * as tf from '@tensorflow/tfjs-core';
import { conv2d, dropout, layerNorm, leakyRelu, type Conv2D, type Norm } from '../../nn/layers.ts';
import type { Backbone, BackboneOptions } from './types.ts';

/**
 * The paper's CNN discriminator: 4 × [conv 3×3 stride 2, LeakyReLU(0.2), dropout], channels doubling
 * from `baseChannels`, then flatten. As a WGAN-GP critic it drops dropout and uses layer norm.
 */
export function cnnBackbone({ cfg, params, critic }: BackboneOptions): Backbone {
  const base = cfg.discriminator.baseChannels;
  const rate = critic ? 0 : cfg.discriminator.dropout;
  const convs: Conv2D[] = [];
  const norms: (Norm | undefined)[] = [];
  let inC = 3;
  let size = cfg.imageSize;
  for (let i = 0; i < 4; i++) {
    const ch = base << i;
    convs.push(conv2d(params, `conv${i + 1}`, inC, ch, { stride: 2 }));
    if (critic && i > 0) norms[i] = layerNorm(params, `ln${i + 1}`, ch);
    inC = ch;
    size = Math.ceil(size / 2);
  }
  const featureDim = size * size * inC;
  return {
    featureDim,
    perSample: true,
    features(x, training, dropoutSeed) {
      let y = x;
      convs.forEach((conv, i) => {
        const norm = norms[i];
        y = norm ? ((norm.applyLeaky?.(conv.apply(y), training) ?? leakyRelu(norm.apply(conv.apply(y), training))) as tf.Tensor4D) : conv.applyLeaky(y);
        y = dropout(y, rate, training, dropoutSeed);
      });
      return tf.reshape(y, [x.shape[0], featureDim]);
    },
  };
}
