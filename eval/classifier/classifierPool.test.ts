import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initNodeBackend } from '../../node/nodeBackend.ts';
import { Rng } from '../../shared/rng.ts';
import { createClassifierPool } from './classifierPool.ts';
import { runCnnJob, type CnnJobData, type CnnJobSettings } from './cnnJob.ts';

const size = 16;
function tiles(n: number, seed: number) {
  const rng = new Rng(seed);
  const pixels: Uint8Array[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    pixels.push(Uint8Array.from({ length: size * size * 3 }, (_, j) => (j % 3 === i % 2 ? 190 : 70) + Math.floor(rng.next() * 50)));
    labels.push(i % 2);
  }
  return { pixels, labels };
}
const data: CnnJobData = { real: tiles(24, 1), synthetic: tiles(16, 2), testPixels: tiles(10, 3).pixels };
const settings: CnnJobSettings = { classes: 2, positive: 0, size, epochs: 2, batchSize: 8, learningRate: 5e-3, channels: 4, batchNorm: true };

let previous: string;
beforeAll(async () => {
  previous = tf.getBackend();
  await initNodeBackend({ TFJS_BACKEND: 'wasm' });
});
afterAll(async () => {
  await tf.setBackend(previous);
});

describe('classifier worker pool', () => {
  it('gives the same test scores as training in process, for every job it runs in parallel', async () => {
    const pool = await createClassifierPool(2, data, settings);
    try {
      const epochs: number[] = [];
      const [a, b, c] = await Promise.all([
        pool.run('realOnly', 1, (e) => epochs.push(e)),
        pool.run('syntheticOnly', 2),
        pool.run('realPlusSynthetic', 3),
      ]);
      expect(epochs).toEqual([1, 2]);
      expect(a.test.length).toBe(10);
      const inProcess = await runCnnJob(data, settings, 'realOnly', 1);
      expect(Array.from(a.test)).toEqual(Array.from(inProcess.test));
      // A real-only model also scores the synthetic tiles (class fidelity), the other regimes do not.
      expect(a.synthetic).toHaveLength(16);
      expect(Array.from(a.synthetic!)).toEqual(Array.from(inProcess.synthetic!));
      expect(b.synthetic).toBeUndefined();
      expect(c.synthetic).toBeUndefined();
      expect(Array.from(b.test)).toEqual(Array.from((await runCnnJob(data, settings, 'syntheticOnly', 2)).test));
      expect(Array.from(c.test)).toEqual(Array.from((await runCnnJob(data, settings, 'realPlusSynthetic', 3)).test));
      // Different seeds or regimes train different models.
      expect(Array.from(a.test)).not.toEqual(Array.from(c.test));
    } finally {
      pool.close();
    }
  });

  it('trains on one hospital\'s tiles when given their indices, as in process; no class-fidelity scores then', async () => {
    const pool = await createClassifierPool(2, data, settings);
    try {
      const hospital = [0, 3, 4, 7, 9, 10, 15];
      const [own, plus] = await Promise.all([pool.run('realOnly', 4, undefined, hospital), pool.run('realPlusSynthetic', 4, undefined, hospital)]);
      expect(own.synthetic).toBeUndefined();
      expect(Array.from(own.test)).toEqual(Array.from((await runCnnJob(data, settings, 'realOnly', 4, undefined, hospital)).test));
      expect(Array.from(plus.test)).toEqual(Array.from((await runCnnJob(data, settings, 'realPlusSynthetic', 4, undefined, hospital)).test));
      // Not the model on every real tile.
      expect(Array.from(own.test)).not.toEqual(Array.from((await runCnnJob(data, settings, 'realOnly', 4)).test));
    } finally {
      pool.close();
    }
  });

  it('reports a failing job as an error naming the cause, and keeps serving', async () => {
    const pool = await createClassifierPool(1, { ...data, real: { pixels: [new Uint8Array(5)], labels: [0] } }, settings);
    try {
      await expect(pool.run('realOnly', 1)).rejects.toThrow(/classifier tile 0 has 5 bytes, expected 768/);
      expect((await pool.run('syntheticOnly', 1)).test.length).toBe(10);
    } finally {
      pool.close();
    }
  });
});
