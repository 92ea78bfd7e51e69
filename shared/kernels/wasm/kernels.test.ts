import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGan } from '../../gan/gan.ts';
import { createTrainer } from '../../gan/trainer.ts';
import { tinyConfig } from '../../gan/testConfig.ts';
import { registerWasmTrainingKernels } from './index.ts';

/** Run `f` on a backend and return plain arrays. */
async function on(backend: string, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const ts = f();
  const out = ts.map((t) => t.dataSync().slice() as Float32Array);
  tf.dispose(ts);
  return out;
}

describe('wasm training kernels', () => {
  beforeAll(() => registerWasmTrainingKernels());
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it.each([
    // [x shape, kernel, out channels, stride, padding]
    [[2, 7, 6, 3], 3, 4, 2, 'same'],
    [[3, 8, 8, 2], 3, 5, 1, 'same'],
    [[1, 9, 9, 3], 3, 4, 2, 'valid'],
    [[1, 5, 7, 2], 4, 3, 2, 'same'],
    [[2, 16, 16, 3], 8, 6, 8, 'valid'], // ViT patch embedding
    [[2, 11, 10, 4], 5, 2, 3, 'same'],
    [[1, 6, 6, 1], 1, 3, 1, 'valid'],
    [[2, 6, 9, 3], 3, 4, 2, 'valid'],
  ] as const)('conv2d gradients on wasm equal the cpu backend for x=%j k=%i co=%i stride=%i pad=%s', async (xShape, k, co, stride, pad) => {
    const x = Float32Array.from({ length: (xShape as readonly number[]).reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 1.7));
    const w = Float32Array.from({ length: k * k * xShape[3] * co }, (_, i) => Math.cos(i * 0.9));
    const f = () => {
      const xt = tf.tensor4d(x, xShape as unknown as [number, number, number, number]);
      const wt = tf.tensor4d(w, [k, k, xShape[3], co]);
      // A weighted sum, so every output position has its own upstream gradient.
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => {
        const y = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad);
        return tf.sum(tf.mul(y, tf.sin(tf.range(0, y.size).reshape(y.shape))));
      })([xt, wt]);
      return g;
    };
    const [cpu, wasm] = [await on('cpu', f), await on('wasm', f)];
    expect(wasm.map((t) => t.length)).toEqual(cpu.map((t) => t.length));
    cpu.forEach((c, j) => {
      const scale = Math.max(...Array.from(c, Math.abs));
      c.forEach((v, i) => expect(Math.abs(wasm[j][i] - v)).toBeLessThan(1e-4 * scale));
    });
  });

  it('the filter gradient is summed correctly over batch chunks (im2col larger than one chunk)', async () => {
    // 40 × (32·32 positions × 3·3·16 taps) = 5.9 M im2col floats: two chunks of at most 2^22.
    const f = () => {
      const x = tf.tensor4d(Float32Array.from({ length: 40 * 32 * 32 * 16 }, (_, i) => Math.sin(i * 0.37)), [40, 32, 32, 16]);
      const dy = tf.tensor4d(Float32Array.from({ length: 40 * 32 * 32 * 4 }, (_, i) => Math.cos(i * 0.11)), [40, 32, 32, 4]);
      return [tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 16, 4] }) as tf.Tensor];
    };
    const [cpu, wasm] = [await on('cpu', f), await on('wasm', f)];
    const scale = Math.max(...Array.from(cpu[0], Math.abs));
    cpu[0].forEach((v, i) => expect(Math.abs(wasm[0][i] - v)).toBeLessThan(1e-4 * scale));
  });

  it('embedding gradients (UnsortedSegmentSum) and upsampling gradients equal the cpu backend', async () => {
    const f = () => {
      const table = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
      const img = tf.tensor4d(Float32Array.from({ length: 2 * 3 * 3 * 2 }, (_, i) => i / 7), [2, 3, 3, 2]);
      const [gt] = tf.grads((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, tf.tensor1d([2, 0, 2, 1], 'int32')))))([table]);
      const [gi] = tf.grads((v: tf.Tensor) => tf.sum(tf.mul(tf.image.resizeNearestNeighbor(v as tf.Tensor4D, [6, 6]), tf.range(0, 144).reshape([2, 6, 6, 2]))))([img]);
      return [gt, gi];
    };
    const [cpu, wasm] = [await on('cpu', f), await on('wasm', f)];
    expect(Array.from(wasm[0])).toEqual(Array.from(cpu[0]));
    expect(Array.from(wasm[1])).toEqual(Array.from(cpu[1]));
  });

  it.each(['acgan', 'wgan-gp'] as const)('a %s step trains on wasm with finite losses and no leaks', async (gan) => {
    await tf.setBackend('wasm');
    const model = createGan(tinyConfig(gan));
    const trainer = createTrainer(model);
    const images = tf.randomUniform([8, 16, 16, 3], -1, 1, 'float32', 3) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 1, 0, 1, 0, 1, 0, 1], 'int32');
    let after1 = 0;
    for (let i = 0; i < 3; i++) {
      const { dLoss, gLoss } = trainer.step({ images, labels });
      expect(Number.isFinite(dLoss.dataSync()[0]) && Number.isFinite(gLoss.dataSync()[0])).toBe(true);
      tf.dispose([dLoss, gLoss]);
      if (i === 0) after1 = tf.memory().numTensors;
    }
    expect(tf.memory().numTensors).toBe(after1);
    tf.dispose([images, labels]);
    trainer.dispose();
    model.dispose();
  });
});
