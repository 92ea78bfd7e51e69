import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { decodeWeights, encodeWeights } from '../codec/weightsCodec.ts';
import { GAN_TYPES } from '../config/ganConfig.ts';
import { createGan, generate } from './gan.ts';
import { createTrainer } from './trainer.ts';
import { tinyConfig } from './testConfig.ts';

function batch(size: number, n: number, seed = 1) {
  const images = tf.randomUniform([n, size, size, 3], -1, 1, 'float32', seed) as tf.Tensor4D;
  const labels = tf.tensor1d(Array.from({ length: n }, (_, i) => i % 2), 'int32');
  return { images, labels };
}

describe.each(GAN_TYPES)('%s', (ganType) => {
  it('trains: finite losses that change, weights move, no tensor leaks', () => {
    const gan = createGan(tinyConfig(ganType));
    const trainer = createTrainer(gan);
    const b = batch(16, 8);
    const before = gan.getWeights();
    const losses: [number, number][] = [];
    let afterFirst = 0;
    for (let i = 0; i < 20; i++) {
      const { dLoss, gLoss } = trainer.step(b);
      losses.push([dLoss.dataSync()[0], gLoss.dataSync()[0]]);
      tf.dispose([dLoss, gLoss]);
      if (i === 0) afterFirst = tf.memory().numTensors;
    }
    expect(tf.memory().numTensors).toBe(afterFirst);
    for (const [d, g] of losses) {
      expect(Number.isFinite(d)).toBe(true);
      expect(Number.isFinite(g)).toBe(true);
    }
    expect(new Set(losses.map(([d]) => d.toFixed(6))).size).toBeGreaterThan(10);
    expect(new Set(losses.map(([, g]) => g.toFixed(6))).size).toBeGreaterThan(10);
    const after = gan.getWeights();
    const moved = after.tensors.filter((t, i) => t.data.some((v, j) => v !== before.tensors[i].data[j])).map((t) => t.name);
    expect(moved).toContain('g/conv1/kernel');
    expect(moved).toContain('d/score/kernel');
    tf.dispose([b.images, b.labels]);
    trainer.dispose();
    gan.dispose();
  });

  it('generates images of the configured shape in [-1, 1]', () => {
    const gan = createGan(tinyConfig(ganType, { imageSize: 24 }));
    const imgs = generate(gan, [0, 1, 1], 5);
    expect(imgs.shape).toEqual([3, 24, 24, 3]);
    const v = imgs.dataSync();
    expect(Math.max(...v)).toBeLessThanOrEqual(1);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(-1);
    imgs.dispose();
    gan.dispose();
  });
});

describe('conditioning', () => {
  it('the same noise gives different images for different classes', () => {
    const gan = createGan(tinyConfig('acgan'));
    const z = tf.randomNormal([1, 8], 0, 1, 'float32', 3) as tf.Tensor2D;
    const [a, b, a2] = [0, 1, 0].map((c) => gan.G.apply(z, tf.tensor1d([c], 'int32'), false).dataSync() as Float32Array);
    const diff = a.reduce((s: number, v: number, i: number) => s + Math.abs(v - b[i]), 0) / a.length;
    expect(diff).toBeGreaterThan(1e-4);
    expect(Array.from(a2)).toEqual(Array.from(a));
    z.dispose();
    gan.dispose();
  });

  it('the class embedding is shaped like the first feature map and multiplies it', () => {
    const gan = createGan(tinyConfig('cgan', { imageSize: 32, generator: { baseChannels: 8 } }));
    const table = gan.spec.find((s) => s.name === 'g/embed/table');
    // 2 classes × (32/8)² positions × 8 channels
    expect(table?.shape).toEqual([2, 4 * 4 * 8]);
    // Zeroing class 1's map zeroes its whole input to the conv stack: the output no longer depends on z.
    const ws = gan.getWeights();
    const t = ws.tensors.find((x) => x.name === 'g/embed/table')!;
    const data = t.data.slice();
    data.fill(0, 4 * 4 * 8);
    gan.setWeights({ ...ws, tensors: ws.tensors.map((x) => (x === t ? { ...x, data } : x)) });
    const out = (seed: number) => generate(gan, [1], seed).dataSync();
    expect(Array.from(out(1))).toEqual(Array.from(out(2)));
    expect(Array.from(generate(gan, [0], 1).dataSync())).not.toEqual(Array.from(generate(gan, [0], 2).dataSync()));
    gan.dispose();
  });
});

describe('weights', () => {
  it('round-trip through the codec bit-exact and load into a fresh model', () => {
    const cfg = tinyConfig('wgan-gp');
    const a = createGan(cfg);
    const bytes = encodeWeights(a.getWeights(), { config: cfg });
    const { weights, meta } = decodeWeights(bytes, { expectedFingerprint: a.fingerprint });
    expect(meta.config).toEqual(cfg);
    const b = createGan({ ...cfg, seed: 7 });
    expect(b.fingerprint).toBe(a.fingerprint);
    b.setWeights(weights);
    const x = b.getWeights();
    x.tensors.forEach((t, i) => expect(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(a.getWeights().tensors[i].data.buffer))).toBe(true));
    a.dispose();
    b.dispose();
  });

  it('refuses weights of another architecture, naming both fingerprints', () => {
    const a = createGan(tinyConfig('acgan'));
    const b = createGan(tinyConfig('acgan', { generator: { baseChannels: 16 } }));
    expect(a.fingerprint).not.toBe(b.fingerprint);
    expect(() => a.setWeights(b.getWeights())).toThrow(new RegExp(`${b.fingerprint}.*${a.fingerprint}`));
    a.dispose();
    b.dispose();
  });

  it('differs in fingerprint between GAN types (their heads differ)', () => {
    const fps = new Set(['acgan', 'cgan', 'wgan-gp'].map((t) => {
      const g = createGan(tinyConfig(t as 'acgan'));
      const f = g.fingerprint;
      g.dispose();
      return f;
    }));
    expect(fps.size).toBe(3);
  });

  it('is deterministic for a seed: same config, same initial weights', () => {
    const a = createGan(tinyConfig('acgan'));
    const b = createGan(tinyConfig('acgan'));
    expect(Array.from(a.getWeights().tensors[0].data)).toEqual(Array.from(b.getWeights().tensors[0].data));
    a.dispose();
    b.dispose();
  });
});
