import type * as tf from '@tensorflow/tfjs-core';
import type { GanConfig } from '../../config/ganConfig.ts';
import type { ParamStore } from '../../nn/params.ts';
import type { SeedSource } from '../../nn/random.ts';

/**
 * A discriminator backbone maps images to a feature vector; the GAN type decides the head
 * (see heads.ts). Critics (WGAN-GP) must avoid batch norm: `critic` tells the backbone so.
 */
export interface Backbone {
  readonly featureDim: number;
  /**
   * True when a sample's features do not depend on the other samples in the batch (no batch norm;
   * dropout is drawn per element). Such a discriminator may score reals and fakes in one pass.
   */
  readonly perSample: boolean;
  /** `dropoutSeed` seeds the training-mode dropout masks, one seed per mask (shared/nn/layers.ts dropout). */
  features(x: tf.Tensor4D, training: boolean, dropoutSeed?: SeedSource): tf.Tensor2D;
}

export interface BackboneOptions {
  cfg: GanConfig;
  params: ParamStore;
  /** True for WGAN-GP: no batch norm, no dropout (the gradient penalty is per-sample). */
  critic: boolean;
}

export type BackboneFactory = (opts: BackboneOptions) => Backbone;
