import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { createGan, generate } from '../shared/gan/gan.ts';
import { recalibrateGeneratorBatchNorm } from '../shared/gan/recalibrateBatchNorm.ts';
import { tinyConfig } from '../shared/gan/testConfig.ts';
import { toRgbBytes } from '../shared/image/grid.ts';
import type { WeightSet } from '../shared/weights.ts';
import { samplesPng } from './simulation.ts';

/** The first tile of the grid (class 0, sample 0, after the 2-px border) as RGB bytes. */
function firstTile(png: Buffer, size: number): number[] {
  const img = PNG.sync.read(png);
  const out: number[] = [];
  for (let y = 2; y < size + 2; y++) for (let x = 2; x < size + 2; x++) for (let c = 0; c < 3; c++) out.push(img.data[(y * img.width + x) * 4 + c]);
  return out;
}

describe('samplesPng (simulation and simulate --server samples.png)', () => {
  it("under FedBN ('local') generates after recalibrating the generator's batch-norm statistics; under 'average' from the stored ones", async () => {
    const cfg = tinyConfig('acgan');
    const gan = createGan(cfg);
    // A global whose running statistics are nonsense, as FedBN's untrained ones are for a trained generator.
    const global: WeightSet = {
      ...gan.getWeights(),
      tensors: gan.getWeights().tensors.map((t) => ({ ...t, data: /movingMean$/.test(t.name) ? t.data.map(() => 3) : /movingVariance$/.test(t.name) ? t.data.map(() => 25) : t.data.slice() })),
    };
    const expected = (recalibrate: boolean) => {
      gan.setWeights(global);
      if (recalibrate) recalibrateGeneratorBatchNorm(gan);
      const img = generate(gan, [0], 1234);
      const px = toRgbBytes(img.dataSync() as Float32Array, 1, cfg.imageSize)[0];
      img.dispose();
      return [...px];
    };
    const local = firstTile(await samplesPng(global, cfg, 2, { batchNorm: 'local' }), cfg.imageSize);
    const average = firstTile(await samplesPng(global, cfg, 2, { batchNorm: 'average' }), cfg.imageSize);
    expect(local).toEqual(expected(true));
    expect(average).toEqual(expected(false));
    expect(local).not.toEqual(average);
    gan.dispose();
  });
});
