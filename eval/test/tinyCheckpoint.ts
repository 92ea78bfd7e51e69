import { writeFileSync } from 'node:fs';
import { encodeWeights } from '../../shared/codec/weightsCodec.ts';
import { parseGanConfig, type GanConfigInput } from '../../shared/config/ganConfig.ts';
import { createGan } from '../../shared/gan/gan.ts';

/** Write a checkpoint like the simulation's (untrained, tiny) and return its config. */
export function writeTinyCheckpoint(path: string, overrides: GanConfigInput = {}): void {
  const cfg = parseGanConfig({ imageSize: 16, latentDim: 8, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 }, seed: 3, ...overrides });
  const gan = createGan(cfg);
  writeFileSync(path, encodeWeights(gan.getWeights(), { kind: 'fedgan-checkpoint', config: cfg, round: 0, source: 'test' }));
  gan.dispose();
}
