import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { generateSampleGrid } from '../shared/gan/sampleGrid.ts';
import type { GlobalModel } from './globalModel.ts';
import type { StoredModel } from './tileStore.ts';
import type { SamplesMessage } from './ui/sampleGrid.ts';

/** The sample grid of the Training panel: one row of generated tiles per class, from the global model. */

/** Fixed latent seed of the sample grid, so rounds can be compared image by image. */
export const SAMPLE_SEED = 1234;
export const SAMPLES_PER_CLASS = 8;

/** What the worker sends the page (rendered by ui/sampleGrid.ts). */
export type SampleGrid = SamplesMessage;

/** Draw the sample grid from a stored global model (after a round, and after a reload). */
export function drawSamples(model: GlobalModel, stored: StoredModel, batchNorm: BatchNormPolicy): Promise<SampleGrid> {
  return model.withModel(stored, batchNorm, async (gan, cfg) => {
    const grid = await generateSampleGrid(gan, SAMPLES_PER_CLASS, SAMPLE_SEED, 1);
    return { round: stored.round, classes: [...cfg.classes], perClass: SAMPLES_PER_CLASS, size: cfg.imageSize, ...grid };
  });
}
