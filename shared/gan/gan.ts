import * as tf from '@tensorflow/tfjs-core';
import { architectureFingerprint } from '../codec/fingerprint.ts';
import type { GanConfig } from '../config/ganConfig.ts';
import type { NamedTensor, WeightSet } from '../weights.ts';
import { createDiscriminator, type Discriminator } from './discriminators/index.ts';
import { EMA_PREFIX, createGeneratorEma, type GeneratorEma } from './ema.ts';
import { createGenerator, type Generator } from './generator.ts';
import { registerMissingGradients } from './gradients.ts';

/**
 * A conditional GAN: generator + discriminator built from one config. Its weight set is the generator's
 * variables followed by the discriminator's, in creation order, then, when the config asks for an EMA of
 * the generator (`cfg.ema`), the average's variables named `ema/g/…` (ema.ts); all are federated.
 */
export interface Gan {
  readonly cfg: GanConfig;
  readonly G: Generator;
  readonly D: Discriminator;
  /** The moving average of G's weights (cfg.ema), or null. The trainer updates it after each step. */
  readonly ema: GeneratorEma | null;
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
    // Only when on, so configs without them keep their fingerprints.
    ...(cfg.ema ? { ema: true } : {}),
    ...(cfg.generator.upsample !== 'nearest' ? { upsample: cfg.generator.upsample } : {}),
    ...(d.minibatchStd ? { minibatchStd: true } : {}),
  });
}

export function createGan(cfg: GanConfig): Gan {
  registerMissingGradients();
  const G = createGenerator(cfg);
  const D = createDiscriminator(cfg);
  const ema = cfg.ema ? createGeneratorEma(cfg, G, cfg.ema.decay) : null;
  const emaEntries = ema ? ema.generator.params.all().map((e) => ({ name: EMA_PREFIX + e.name, variable: e.variable })) : [];
  const entries = () => [...G.params.all(), ...D.params.all(), ...emaEntries];
  const spec = entries().map((e) => ({ name: e.name, shape: e.variable.shape.slice() }));
  const renamed = (ts: NamedTensor[]) => ts.map((t) => ({ ...t, name: EMA_PREFIX + t.name }));
  const emaRead = () => (ema ? renamed(ema.generator.params.read()) : []);
  const emaReadAsync = async () => (ema ? renamed(await ema.generator.params.readAsync()) : []);
  const fingerprint = architectureFingerprint(spec, architectureKey(cfg));
  return {
    cfg,
    G,
    D,
    ema,
    fingerprint,
    spec,
    getWeights: () => ({ fingerprint, tensors: [...G.params.read(), ...D.params.read(), ...emaRead()] }),
    getWeightsAsync: async () => ({ fingerprint, tensors: [...(await G.params.readAsync()), ...(await D.params.readAsync()), ...(await emaReadAsync())] }),
    setWeights(ws) {
      if (ws.fingerprint !== fingerprint) {
        throw new Error(`weights fingerprint ${ws.fingerprint} does not match this model's ${fingerprint} (they come from another architecture)`);
      }
      G.params.write(ws.tensors.filter((t) => t.name.startsWith('g/')));
      D.params.write(ws.tensors.filter((t) => t.name.startsWith('d/')));
      ema?.generator.params.write(ws.tensors.filter((t) => t.name.startsWith(EMA_PREFIX)).map((t) => ({ ...t, name: t.name.slice(EMA_PREFIX.length) })));
    },
    dispose() {
      G.params.dispose();
      D.params.dispose();
      ema?.generator.params.dispose();
    },
  };
}

/** The generator that samples: the moving average of G when the config keeps one, else G. */
export function samplingGenerator(gan: Gan): Generator {
  return gan.ema?.generator ?? gan.G;
}

/**
 * Generate images for the given labels (inference mode), in [-1, 1], from `samplingGenerator(gan)`: the
 * EMA of the generator's weights when the config keeps one. Exports, previews and the quality report all
 * sample through here.
 */
export function generate(gan: Gan, labels: number[], seed?: number): tf.Tensor4D {
  return tf.tidy(() => {
    const z = tf.randomNormal([labels.length, gan.cfg.latentDim], 0, 1, 'float32', seed) as tf.Tensor2D;
    return samplingGenerator(gan).apply(z, tf.tensor1d(labels, 'int32'), false);
  });
}
