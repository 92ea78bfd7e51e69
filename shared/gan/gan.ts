import * as tf from '@tensorflow/tfjs-core';
import { architectureFingerprint } from '../codec/fingerprint.ts';
import type { GanConfig } from '../config/ganConfig.ts';
import type { WeightSet } from '../weights.ts';
import { createDiscriminator, type Discriminator } from './discriminators/index.ts';
import { createGenerator, type Generator } from './generator.ts';
import { registerMissingGradients } from './gradients.ts';

/**
 * A conditional GAN: generator + discriminator built from one config. Its weight set is the generator's
 * variables followed by the discriminator's, in creation order; both are federated.
 */
export interface Gan {
  readonly cfg: GanConfig;
  readonly G: Generator;
  readonly D: Discriminator;
  readonly fingerprint: string;
  /** Names and shapes in weight order. */
  readonly spec: { name: string; shape: number[] }[];
  getWeights(): WeightSet;
  getWeightsAsync(): Promise<WeightSet>;
  setWeights(ws: WeightSet): void;
  dispose(): void;
}

/** The architecture-relevant part of the config: two models with equal keys can exchange weights. */
export function architectureKey(cfg: GanConfig): string {
  const d = cfg.discriminator;
  return JSON.stringify({
    gan: cfg.gan,
    classes: cfg.classes.length,
    imageSize: cfg.imageSize,
    latentDim: cfg.latentDim,
    g: cfg.generator.baseChannels,
    d: { type: d.type, base: d.baseChannels, patch: d.patchSize, dim: d.embedDim, depth: d.depth, heads: d.heads, window: d.windowSize },
  });
}

export function createGan(cfg: GanConfig): Gan {
  registerMissingGradients();
  const G = createGenerator(cfg);
  const D = createDiscriminator(cfg);
  const entries = () => [...G.params.all(), ...D.params.all()];
  const spec = entries().map((e) => ({ name: e.name, shape: e.variable.shape.slice() }));
  const fingerprint = architectureFingerprint(spec, architectureKey(cfg));
  return {
    cfg,
    G,
    D,
    fingerprint,
    spec,
    getWeights: () => ({ fingerprint, tensors: [...G.params.read(), ...D.params.read()] }),
    getWeightsAsync: async () => ({ fingerprint, tensors: [...(await G.params.readAsync()), ...(await D.params.readAsync())] }),
    setWeights(ws) {
      if (ws.fingerprint !== fingerprint) {
        throw new Error(`weights fingerprint ${ws.fingerprint} does not match this model's ${fingerprint} (they come from another architecture)`);
      }
      G.params.write(ws.tensors.filter((t) => t.name.startsWith('g/')));
      D.params.write(ws.tensors.filter((t) => t.name.startsWith('d/')));
    },
    dispose() {
      G.params.dispose();
      D.params.dispose();
    },
  };
}

/** Generate images for the given labels (inference mode), in [-1, 1]. */
export function generate(gan: Gan, labels: number[], seed?: number): tf.Tensor4D {
  return tf.tidy(() => {
    const z = tf.randomNormal([labels.length, gan.cfg.latentDim], 0, 1, 'float32', seed) as tf.Tensor2D;
    return gan.G.apply(z, tf.tensor1d(labels, 'int32'), false);
  });
}
