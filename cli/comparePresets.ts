import { parseGanConfig, type DiscriminatorType, type GanConfig, type GanConfigInput, type GanType } from '../shared/config/ganConfig.ts';

/**
 * Sizes for `npm run compare`: `small` fits this project's 2-core CPU (all 12 GAN × discriminator
 * pairs in ~20 minutes, see docs/results.md); `full` is the 64 px model with the paper's generator
 * and browser-sized discriminators (docs/discriminators.md), meant for a GPU (WebGPU through Dawn).
 */
export interface ComparePreset {
  /** Model settings shared by every pair (gan and discriminator.type are set per pair). */
  model: GanConfigInput;
  /** Settings per discriminator type, merged over `model.discriminator`. */
  discriminators: Partial<Record<DiscriminatorType, NonNullable<GanConfigInput['discriminator']>>>;
  /** Federated rounds; each hospital trains `localEpochs` passes per round. */
  rounds: number;
  localEpochs: number;
  clients: number;
  /** Train on at most this many tiles (seeded, class-balanced); undefined = all. */
  maxTiles?: number;
  /** Synthetic tiles per class for FID/KID. */
  perClass: number;
  /** Real reference tiles per class (training and test sets); undefined = all. */
  realPerClass?: number;
}

export const PRESET_NAMES = ['small', 'full'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export const PRESETS: Record<PresetName, ComparePreset> = {
  small: {
    // Sized by measured CPU time per step on the 2-core machine (docs/results.md): transformers run on
    // 4×4 token grids here because tfjs-cpu's softmax and broadcasting ops dominate their cost.
    model: {
      imageSize: 32,
      latentDim: 32,
      batchSize: 16,
      nCritic: 2,
      generator: { baseChannels: 16 },
      discriminator: { baseChannels: 8 },
    },
    discriminators: {
      vit: { patchSize: 8, embedDim: 32, depth: 2, heads: 2 },
      swin: { patchSize: 8, embedDim: 32, depth: 2, heads: 2, windowSize: 2 },
    },
    rounds: 3,
    localEpochs: 1,
    clients: 2,
    maxTiles: 256,
    perClass: 32,
    realPerClass: 32,
  },
  full: {
    model: {
      imageSize: 64,
      latentDim: 100,
      batchSize: 32,
      nCritic: 5,
      generator: { baseChannels: 128 },
      discriminator: { baseChannels: 32 },
    },
    discriminators: {
      vit: { patchSize: 8, embedDim: 96, depth: 4, heads: 4 },
      swin: { patchSize: 4, embedDim: 48, depth: 2, heads: 3, windowSize: 4 },
    },
    rounds: 20,
    localEpochs: 1,
    clients: 4,
    perClass: 500,
  },
};

/** The validated model config of one pair. */
export function pairConfig(preset: ComparePreset, gan: GanType, type: DiscriminatorType, seed: number): GanConfig {
  return parseGanConfig(
    {
      ...preset.model,
      gan,
      seed,
      discriminator: { ...preset.model.discriminator, ...preset.discriminators[type], type },
    },
    `compare preset (${gan} × ${type})`,
  );
}
