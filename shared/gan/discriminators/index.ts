import type * as tf from '@tensorflow/tfjs-core';
import type { DiscriminatorType, GanConfig } from '../../config/ganConfig.ts';
import { ParamStore } from '../../nn/params.ts';
import { SpectralNorm } from '../../nn/spectralNorm.ts';
import type { SeedSource } from '../../nn/random.ts';
import { cnnBackbone } from './cnn.ts';
import { createHead, type DiscriminatorOutput } from './heads.ts';
import { withMinibatchStd } from './minibatchStd.ts';
import { resnetBackbone } from './resnet.ts';
import { swinBackbone } from './swin.ts';
import type { BackboneFactory } from './types.ts';
import { vitBackbone } from './vit.ts';

export type { DiscriminatorOutput } from './heads.ts';

/** Backbones by config name. The discriminator zoo registers more here. */
export const BACKBONES: Partial<Record<DiscriminatorType, BackboneFactory>> = { cnn: cnnBackbone, resnet: resnetBackbone, vit: vitBackbone, swin: swinBackbone };

export interface Discriminator {
  readonly params: ParamStore;
  /** See Backbone.perSample: reals and fakes may then be scored in one pass (realFakePass.ts). */
  readonly perSample: boolean;
  /**
   * Spectral normalisation of the conv, dense and embedding weights (cfg.discriminator.spectralNorm), or
   * null. The trainer advances its power iteration once per training step (shared/gan/trainer.ts).
   */
  readonly spectralNorm: SpectralNorm | null;
  /**
   * Training mode draws the backbone's dropout masks (critics have none), each with a seed from
   * `dropoutSeed` (the GAN steps pass their trainer's dropout stream, step.ts); unseeded without it.
   */
  apply(x: tf.Tensor4D, labels: tf.Tensor1D, training: boolean, dropoutSeed?: SeedSource): DiscriminatorOutput;
}

export function createDiscriminator(cfg: GanConfig): Discriminator {
  const factory = BACKBONES[cfg.discriminator.type];
  if (!factory) throw new Error(`discriminator "${cfg.discriminator.type}" is not available (known: ${Object.keys(BACKBONES).join(', ')})`);
  const spectralNorm = cfg.discriminator.spectralNorm ? new SpectralNorm() : null;
  const params = new ParamStore('d', cfg.seed + 1, spectralNorm);
  const own = factory({ cfg, params, critic: cfg.gan === 'wgan-gp' });
  const backbone = cfg.discriminator.minibatchStd ? withMinibatchStd(own) : own;
  const head = createHead(cfg.gan, params, backbone.featureDim, cfg.classes.length);
  return {
    params,
    perSample: backbone.perSample,
    spectralNorm,
    apply: (x, labels, training, dropoutSeed) => head.apply(backbone.features(x, training, dropoutSeed), labels),
  };
}
