import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNsfwjsExtractor } from './nsfwjsModels.ts';
import type { FeatureExtractor } from './types.ts';
import { blockFetch } from '../testing/noFetch.ts';

function tile(size: number, f: (x: number, y: number, c: number) => number): Uint8Array {
  const t = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++) t[(y * size + x) * 3 + c] = f(x, y, c);
  return t;
}

describe('InceptionV3 from nsfwjs on the wasm backend', () => {
  let extractor: FeatureExtractor;
  // Nothing may be downloaded: any fetch during loading or inference is recorded and fails.
  const network = blockFetch();
  const fetched = network.fetched;

  beforeAll(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
    extractor = await loadNsfwjsExtractor('inception-v3');
  });
  afterAll(() => {
    extractor?.dispose();
    network.restore();
  });

  it('loads the bundled weights without any network access and gives 2048-d features for 2 tiles', async () => {
    expect(tf.getBackend()).toBe('wasm');
    const pink = tile(32, (x, y, c) => (c === 1 ? 90 : 200 - ((x + y) % 7) * 5));
    const purple = tile(32, (x, y, c) => (c === 0 ? 80 + ((x * y) % 50) : c === 1 ? 40 : 160));
    const f = await extractor.extract([pink, purple], 32);
    expect(fetched).toEqual([]);
    expect(extractor.dim).toBe(2048);
    expect(f.rows).toBe(2);
    expect(f.dim).toBe(2048);
    expect(f.data).toHaveLength(4096);
    expect(extractor.description).toBe('InceptionV3 from nsfwjs, fine-tuned weights: compare within this project only');
    // Pooled ReLU activations: finite, non-negative, not all zero, and different for different tiles.
    let sum0 = 0;
    let diff = 0;
    for (let i = 0; i < 2048; i++) {
      expect(f.data[i]).toBeGreaterThanOrEqual(0);
      sum0 += f.data[i];
      diff += Math.abs(f.data[i] - f.data[2048 + i]);
    }
    expect(sum0).toBeGreaterThan(0);
    expect(diff).toBeGreaterThan(0);
    // Deterministic, and batching does not change a tile's features.
    const again = await extractor.extract([purple], 32, { batchSize: 1 });
    for (let i = 0; i < 2048; i += 97) expect(again.data[i]).toBeCloseTo(f.data[2048 + i], 4);
  });

  it('rejects tiles of the wrong byte length', async () => {
    await expect(extractor.extract([new Uint8Array(10)], 32)).rejects.toThrow(/tile 0 has 10 bytes, expected 3072/);
  });
});
