import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNsfwjsExtractor } from '../../shared/features/nsfwjsModels.ts';
import { blockFetch } from '../../shared/testing/noFetch.ts';
import { createNodeNsfwjsExtractor } from './nodeExtractor.ts';

function tiles(n: number, size: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => Uint8Array.from({ length: size * size * 3 }, (_, j) => (i * 53 + j * 7 + ((j * j) % 89)) & 255));
}

describe('nsfwjs features on ONNX Runtime', () => {
  const network = blockFetch();
  const fetched = network.fetched;
  beforeAll(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
  });
  afterAll(async () => {
    network.restore();
    await tf.setBackend('cpu');
  });

  for (const [network, dim] of [['inception-v3', 2048], ['mobilenet-v2', 1280]] as const) {
    it(`${network}: the same features as tfjs on wasm, in tile order across batches`, async () => {
      const onnx = await createNodeNsfwjsExtractor(network, { engine: 'auto', threads: 1, onFallback: (r) => fetched.push(`fallback: ${r}`) });
      const wasm = await loadNsfwjsExtractor(network);
      try {
        expect(onnx.engine).toMatch(/^ONNX Runtime 1\.30\.0 \(CPU, 1 thread\)$/);
        const t = tiles(3, 24);
        const progress: number[] = [];
        const a = await onnx.extract(t, 24, { batchSize: 2, onProgress: (d) => progress.push(d) });
        const b = await wasm.extract(t, 24, { batchSize: 3 });
        expect(progress).toEqual([2, 3]);
        expect([a.rows, a.dim]).toEqual([3, dim]);
        let maxDiff = 0;
        let maxValue = 0;
        for (let i = 0; i < b.data.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(a.data[i] - b.data[i]));
          maxValue = Math.max(maxValue, Math.abs(b.data[i]));
        }
        expect(maxValue).toBeGreaterThan(0.01);
        expect(maxDiff).toBeLessThan(1e-4 * Math.max(1, maxValue));
        // Different tiles, different features (the rows are not one tile repeated).
        let rowDiff = 0;
        for (let i = 0; i < dim; i++) rowDiff += Math.abs(a.data[i] - a.data[dim + i]);
        expect(rowDiff).toBeGreaterThan(0);
        expect(fetched).toEqual([]);
        await expect(onnx.extract([new Uint8Array(5)], 24)).rejects.toThrow(/tile 0 has 5 bytes, expected 1728/);
      } finally {
        onnx.dispose();
        wasm.dispose();
      }
    });
  }

  it('names the engine it falls back to, and refuses an unknown one', async () => {
    const wasm = await createNodeNsfwjsExtractor('mobilenet-v2', { engine: 'wasm', threads: 1 });
    expect(wasm.engine).toBe('tfjs wasm (1 thread)');
    wasm.dispose();
    await expect(createNodeNsfwjsExtractor('mobilenet-v2', { engine: 'gpu' as never })).rejects.toThrow("unknown feature engine 'gpu' (choose auto, onnx, wasm)");
    await expect(createNodeNsfwjsExtractor('mobilenet-v2', { threads: 0 })).rejects.toThrow('feature threads must be a positive integer, got 0');
  });
});
