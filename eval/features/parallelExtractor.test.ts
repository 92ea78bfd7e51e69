import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { loadNsfwjsExtractor } from '../../shared/features/nsfwjsModels.ts';
import { createParallelNsfwjsExtractor } from './parallelExtractor.ts';

describe('parallel nsfwjs extractor (worker threads)', () => {
  it('gives the same features, in tile order, as the in-process extractor', async () => {
    const tiles = Array.from({ length: 5 }, (_, k) => Uint8Array.from({ length: 24 * 24 * 3 }, (_, i) => (i * (k + 3) + 17 * k) % 256));
    const parallel = await createParallelNsfwjsExtractor('mobilenet-v2', 2);
    let got;
    try {
      expect(parallel.dim).toBe(1280);
      got = await parallel.extract(tiles, 24, { batchSize: 2 });
    } finally {
      parallel.dispose();
    }
    await tf.setBackend('wasm');
    const local = await loadNsfwjsExtractor('mobilenet-v2');
    const want = await local.extract(tiles, 24, { batchSize: 2 });
    local.dispose();
    expect(got.rows).toBe(5);
    expect(got.dim).toBe(1280);
    for (let i = 0; i < want.data.length; i += 61) expect(got.data[i]).toBeCloseTo(want.data[i], 4);
  });
});
