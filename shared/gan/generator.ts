import * as tf from '@tensorflow/tfjs-core';
import type { GanConfig } from '../config/ganConfig.ts';
import { ParamStore } from '../nn/params.ts';
import type { SeedSource } from '../nn/random.ts';
import { batchNorm, conv2d, dense, dropout, embedding, LEAKY_ALPHA, upsample2x } from '../nn/layers.ts';

/**
 * The paper's custom CNN generator.
 *
 * z ─dense→ (s/8 × s/8 × c) ⊙ E[y] → 3 × [upsample 2× (nearest, or bilinear: `generator.upsample`), conv 3×3, batch norm, LeakyReLU(0.2), dropout?] → conv 3×3 → tanh
 *
 * Class conditioning: a learned class embedding E[y] shaped like the feature map (s/8 × s/8 × c) is
 * multiplied into every input channel of the convolution stack (the paper found this better than
 * concatenating a one-hot label).
 */
export interface Generator {
  readonly params: ParamStore;
  /**
   * z: [B, latentDim], labels: int32 [B] → images in [-1, 1], [B, S, S, 3].
   * Training mode normalises with the batch's statistics; it folds them into the batch norms' moving
   * statistics only with `updateStats: true`. Inference mode uses the moving statistics.
   *
   * A GAN step runs the generator in training mode several times: for the discriminator's fakes (once in
   * ACGAN and CGAN, once per critic update in WGAN-GP) and for its own update. If every pass updated the
   * moving statistics, their momentum would be m^passes (m² to m⁶), not m. So exactly one pass per step
   * sets `updateStats`: the generator's update pass. It is the one pass every GAN type runs exactly once
   * per step, and its labels are drawn uniformly over the classes, as for the images `generate` makes with
   * these statistics (WGAN-GP's critic fakes take the real batch's labels, with the hospital's class mix).
   * In ACGAN and CGAN both passes see the same latents and weights, so without generator dropout (the
   * default) their batch statistics are the same.
   *
   * `dropoutSeed` seeds the training-mode dropout masks (generator dropout, off by default), one seed per
   * mask; the GAN steps pass their trainer's dropout stream (step.ts), so training is reproducible.
   */
  apply(z: tf.Tensor2D, labels: tf.Tensor1D, training: boolean, opts?: { updateStats?: boolean; dropoutSeed?: SeedSource }): tf.Tensor4D;
}

export function generatorStageChannels(cfg: GanConfig): number[] {
  const c = cfg.generator.baseChannels;
  return [c, Math.max(1, c >> 1), Math.max(1, c >> 2)];
}

export function createGenerator(cfg: GanConfig): Generator {
  const p = new ParamStore('g', cfg.seed);
  const s0 = cfg.imageSize / 8;
  const c0 = cfg.generator.baseChannels;
  const project = dense(p, 'dense', cfg.latentDim, s0 * s0 * c0);
  const classMap = embedding(p, 'embed', cfg.classes.length, s0 * s0 * c0, { normal: 0.02, mean: 1 });
  const stages: { conv: ReturnType<typeof conv2d>; bn: ReturnType<typeof batchNorm> }[] = [];
  let inC = c0;
  generatorStageChannels(cfg).forEach((ch, i) => {
    stages.push({ conv: conv2d(p, `conv${i + 1}`, inC, ch), bn: batchNorm(p, `bn${i + 1}`, ch, cfg.generator.momentum) });
    inC = ch;
  });
  const toRgb = conv2d(p, 'toRgb', inC, 3);
  const rate = cfg.generator.dropout;

  return {
    params: p,
    apply(z, labels, training, { updateStats = false, dropoutSeed } = {}) {
      const b = z.shape[0];
      let x = tf.reshape(project.apply(z), [b, s0, s0, c0]) as tf.Tensor4D;
      x = tf.mul(x, tf.reshape(classMap.apply(labels), [b, s0, s0, c0]));
      for (const { conv, bn } of stages) {
        x = conv.apply(upsample2x(x, cfg.generator.upsample));
        x = bn.applyLeaky(x, training, LEAKY_ALPHA, updateStats) as tf.Tensor4D;
        x = dropout(x, rate, training, dropoutSeed);
      }
      return tf.tanh(toRgb.apply(x));
    },
  };
}
