import { writeFileSync } from 'node:fs';
import { encodeCheckpoint } from '../../shared/checkpoint.ts';
import { parseGanConfig, type GanConfigInput } from '../../shared/config/ganConfig.ts';
import type { BatchNormPolicy } from '../../shared/fed/batchNormPolicy.ts';
import { createGan } from '../../shared/gan/gan.ts';

/** Write a checkpoint like the simulation's (untrained, tiny) in the one checkpoint format. */
export function writeTinyCheckpoint(path: string, overrides: GanConfigInput = {}, batchNorm: BatchNormPolicy = 'average'): void {
  const cfg = parseGanConfig({ imageSize: 16, latentDim: 8, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 }, seed: 3, ...overrides });
  const gan = createGan(cfg);
  writeFileSync(path, encodeCheckpoint(gan.getWeights(), { config: cfg, round: 0, batchNorm, source: 'test' }));
  gan.dispose();
}
