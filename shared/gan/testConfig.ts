import { parseGanConfig, type GanConfigInput, type GanType } from '../config/ganConfig.ts';

/** A tiny GAN config for fast tests: 16 px, a few channels. */
export function tinyConfig(gan: GanType, overrides: GanConfigInput = {}) {
  return parseGanConfig({
    gan,
    imageSize: 16,
    latentDim: 8,
    generator: { baseChannels: 8 },
    discriminator: { baseChannels: 4 },
    batchSize: 8,
    nCritic: 2,
    ...overrides,
  });
}
