import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { generate } from '../shared/gan/gan.ts';
import { tileGrid, toRgbBytes } from '../shared/image/grid.ts';
import type { GlobalModel } from './globalModel.ts';
import type { StoredModel } from './tileStore.ts';

/** The sample grid of the Training panel: one row of generated tiles per class, from the global model. */

/** Fixed latent seed of the sample grid, so rounds can be compared image by image. */
export const SAMPLE_SEED = 1234;
export const SAMPLES_PER_CLASS = 8;

export interface SampleGrid {
  round: number;
  classes: string[];
  perClass: number;
  size: number;
  rgba: Uint8ClampedArray;
  width: number;
  height: number;
}

/** Draw the sample grid from a stored global model (after a round, and after a reload). */
export function drawSamples(model: GlobalModel, stored: StoredModel, batchNorm: BatchNormPolicy): Promise<SampleGrid> {
  return model.withModel(stored, batchNorm, async (gan, cfg) => {
    const n = SAMPLES_PER_CLASS;
    const labels = cfg.classes.flatMap((_, c) => new Array<number>(n).fill(c));
    const t = generate(gan, labels, SAMPLE_SEED);
    const data = (await t.data()) as Float32Array;
    t.dispose();
    const grid = tileGrid(toRgbBytes(data, labels.length, cfg.imageSize), cfg.imageSize, cfg.classes.length, n, 1);
    return { round: stored.round, classes: [...cfg.classes], perClass: n, size: cfg.imageSize, ...grid };
  });
}
