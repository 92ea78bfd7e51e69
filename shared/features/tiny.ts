/**
 * A tiny, fixed feature extractor for tests and quick checks: the tile shrunk to 8×8 by area
 * averaging, scaled to [-1, 1], then a fixed seeded Gaussian random projection to `dim` values.
 * No network, no weights to load, no tfjs; distances between its features still track how different
 * two tiles look, which is all the metrics need. Not comparable with InceptionV3 scores.
 */
import { features } from '../metrics/features.ts';
import { resizeToRGB } from '../image/resize.ts';
import { Rng } from '../rng.ts';
import { checkTiles, type FeatureExtractor } from './types.ts';

const THUMB = 8;

export function createTinyExtractor(dim = 64, seed = 1234): FeatureExtractor {
  const inputs = THUMB * THUMB * 3;
  const rng = new Rng(seed);
  const projection = new Float64Array(dim * inputs);
  for (let i = 0; i < projection.length; i++) projection[i] = rng.normal() / Math.sqrt(inputs);
  const extractor: FeatureExtractor = {
    name: 'tiny',
    description: `tiny random projection (${dim}-d, for tests: compare within one run only)`,
    dim,
    async extract(tiles, size, opts = {}) {
      checkTiles(tiles, size, 'tiny extractor');
      const out = new Float32Array(tiles.length * dim);
      const x = new Float64Array(inputs);
      tiles.forEach((t, n) => {
        const thumb = size === THUMB ? t : resizeToRGB(t, size, size, 3, THUMB);
        for (let i = 0; i < inputs; i++) x[i] = thumb[i] / 127.5 - 1;
        for (let k = 0; k < dim; k++) {
          let s = 0;
          const o = k * inputs;
          for (let i = 0; i < inputs; i++) s += projection[o + i] * x[i];
          out[n * dim + k] = s;
        }
        opts.onProgress?.(n + 1, tiles.length);
      });
      return features(out, tiles.length, dim, 'tiny features');
    },
    dispose() {},
  };
  return extractor;
}
