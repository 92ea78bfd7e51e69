import { parseGanConfig, type DiscriminatorType, type GanConfig, type GanConfigInput, type GanType } from '../shared/config/ganConfig.ts';

/**
 * Sizes for `npm run compare`: `small` checks the whole pipeline on this project's 2-core CPU (48 steps
 * per pair leave the generators at noise); `medium` trains the generators for real within ~35 minutes
 * on that CPU; `full` is the 64 px model with the paper's generator and browser-sized discriminators
 * (docs/discriminators.md), meant for a GPU (WebGPU through Dawn). See docs/results.md.
 */
export interface ComparePreset {
  /** Model settings shared by every pair (gan and discriminator.type are set per pair). */
  model: GanConfigInput;
  /** Settings per discriminator type, merged over `model.discriminator`. */
  discriminators: Partial<Record<DiscriminatorType, NonNullable<GanConfigInput['discriminator']>>>;
  /** Federated rounds; each hospital trains `localSteps` generator steps per round (FedConfig localSteps). */
  rounds: number;
  localSteps: number;
  clients: number;
  /** Train on at most this many tiles (seeded, class-balanced); undefined = all. */
  maxTiles?: number;
  /** Synthetic tiles per class for FID/KID and the downstream classifier. */
  perClass: number;
  /** Real reference tiles per class (training and test sets); undefined = all. */
  realPerClass?: number;
}

export const PRESET_NAMES = ['small', 'medium', 'full'] as const;
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
    // One pass over a hospital's 128 tiles at batch 16.
    localSteps: 8,
    clients: 2,
    maxTiles: 256,
    perClass: 32,
    realPerClass: 32,
  },
  medium: {
    // Sized from CPU time per training step with the wasm backend after 00e4c21 (faster convolution
    // gradients), measured on the shared 2-core AMD EPYC (load ~2), this model, batch 16, 5 steps after a
    // warm-up (scratch probe; CPU-ms per step):
    //   ACGAN   CNN 158, ResNet 440, ViT 301, Swin 526
    //   CGAN    CNN 192, ResNet 520, ViT 294, Swin 466
    //   WGAN-GP CNN 281, ResNet 1131, ViT 563, Swin 999   (n_critic 2)
    // = 5.9 CPU-s for one step of all 12 pairs; inside the simulation (gather, FedAvg, samples, checkpoint)
    // the same within 7 % after the first round, plus ~2 s per pair. Training runs in the main thread (wasm
    // is single-threaded in Node), so CPU time is its wall time on an idle machine. 5 rounds × 2 hospitals
    // × 14 steps (224 tiles each, batch 16) = 140 steps per pair (small: 48): ~14 min for the 12 pairs.
    // Scoring runs on 2 worker threads per network: InceptionV3 0.42–0.62 CPU-s per tile, MobileNetV2
    // 0.09, so 200 synthetic tiles per pair take ~1–1.3 min, ~11–15 min for 12 pairs; the real tiles once
    // (reading 1,635 JPEGs, 400 InceptionV3 and 851 MobileNetV2 features, loading both networks) ~3–4
    // min. In all ~28–33 min on an idle machine. The generator is twice small's width; D is small's.
    model: {
      imageSize: 32,
      latentDim: 64,
      batchSize: 16,
      nCritic: 2,
      generator: { baseChannels: 32 },
      discriminator: { baseChannels: 8 },
    },
    discriminators: {
      vit: { patchSize: 8, embedDim: 32, depth: 2, heads: 2 },
      swin: { patchSize: 8, embedDim: 32, depth: 2, heads: 2, windowSize: 2 },
    },
    rounds: 5,
    // One pass over a hospital's 224 tiles at batch 16.
    localSteps: 14,
    clients: 2,
    maxTiles: 448,
    perClass: 100,
    realPerClass: 100,
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
    // About one pass over a hospital's ~308 tiles (crc-msi train/, 1,232 tiles in 4) at batch 32.
    localSteps: 9,
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
