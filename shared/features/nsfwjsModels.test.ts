import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadBundledModel, loadNsfwjsExtractor } from './nsfwjsModels.ts';
import type { FeatureExtractor } from './types.ts';
import type { LayersModel } from '@tensorflow/tfjs';
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

describe('the bundled networks, loaded without nsfwjs\'s load', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
  });

  it('MobileNetV2: prints nothing, ignores a global named model, and gives the features nsfwjs\'s own loader gives', async () => {
    const { MobileNetV2Model } = await import('nsfwjs/models/mobilenet_v2');
    const printed: unknown[][] = [];
    const spies = (['info', 'log', 'warn'] as const).map((k) => vi.spyOn(console, k).mockImplementation((...a: unknown[]) => void printed.push(a)));
    // nsfwjs's load reads globalThis.model as the model JSON when it exists (a page element with id="model").
    (globalThis as Record<string, unknown>).model = { not: 'a model' };
    let ours: FeatureExtractor;
    try {
      ours = await loadNsfwjsExtractor('mobilenet-v2');
    } finally {
      delete (globalThis as Record<string, unknown>).model;
      for (const s of spies) s.mockRestore();
    }
    expect(printed).toEqual([]);

    // Reference: nsfwjs's own loader, the network cut at the same layer by hand.
    const { load } = await import('nsfwjs/core');
    const nsfw = (await load('MobileNetV2', { modelDefinitions: [MobileNetV2Model] } as Parameters<typeof load>[1])) as unknown as { model: LayersModel; dispose(): void };
    const { model: tfModel } = await import('@tensorflow/tfjs');
    const cut = tfModel({ inputs: nsfw.model.inputs, outputs: nsfw.model.getLayer('flatten_1').output as never });
    const pink = tile(224, (x, y, c) => (c === 1 ? 90 : 200 - ((x + y) % 7) * 5));
    const purple = tile(224, (x, y, c) => (c === 0 ? 80 + ((x * y) % 50) : c === 1 ? 40 : 160));
    const x = tf.tensor4d(Float32Array.from([...pink, ...purple], (v) => v / 255), [2, 224, 224, 3]);
    const want = (cut.predict(x) as tf.Tensor).dataSync();
    const got = await ours.extract([pink, purple], 224);
    expect(got.data).toHaveLength(2 * 1280);
    expect(Array.from(got.data)).toEqual(Array.from(want));
    expect(Math.max(...got.data)).toBeGreaterThan(0);
    x.dispose();
    nsfw.dispose();
    ours.dispose();
  });

  it('refuses a package whose shard modules do not match its manifest, naming both counts', async () => {
    const { MobileNetV2Model } = await import('nsfwjs/models/mobilenet_v2');
    await expect(loadBundledModel({ ...MobileNetV2Model, weightBundles: [] })).rejects.toThrow('MobileNetV2: the manifest names 1 weight shards, the package has 0');
  });
});
