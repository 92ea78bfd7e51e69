import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { parseGanConfig } from '../../shared/config/ganConfig.ts';
import { createGan } from '../../shared/gan/gan.ts';
import { createTrainer } from '../../shared/gan/trainer.ts';
import { FusedAdamOptimizer } from '../../shared/kernels/webgpu/fusedAdam.ts';
import { createGpuRandomOps } from '../../shared/kernels/webgpu/randomProvider.ts';
import { setAdamFactory } from '../../shared/nn/optimizer.ts';
import { setRandomOps } from '../../shared/nn/random.ts';

// The fast path's hooks left installed while training on the cpu backend (a host without WebGPU, or
// one that switched backends): random tensors and Adam fall back to tfjs's own, and training works.
describe('WebGPU fast-path hooks on the cpu backend', () => {
  it('train a tiny ACGAN with tfjs ops and tfjs Adam semantics', async () => {
    expect(tf.getBackend()).toBe('cpu');
    setRandomOps(createGpuRandomOps(3));
    setAdamFactory((lr, b1, b2) => new FusedAdamOptimizer(lr, b1, b2));
    try {
      const gan = createGan(parseGanConfig({ gan: 'acgan', imageSize: 16, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 }, seed: 1 }));
      const trainer = createTrainer(gan);
      const images = tf.randomUniform([2, 16, 16, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
      const labels = tf.tensor1d([0, 1], 'int32');
      const before = gan.getWeights();
      const n0 = tf.memory().numTensors;
      for (let i = 0; i < 2; i++) {
        const { dLoss, gLoss } = trainer.step({ images, labels });
        expect(Number.isFinite(dLoss.dataSync()[0]) && Number.isFinite(gLoss.dataSync()[0])).toBe(true);
        tf.dispose([dLoss, gLoss]);
      }
      // Adam's moments are created on the first step and kept: 2 per trainable variable.
      const moments = 2 * (gan.G.params.trainableVariables().length + gan.D.params.trainableVariables().length);
      expect(tf.memory().numTensors - n0).toBe(moments);
      const after = gan.getWeights();
      expect(after.tensors.some((t, i) => t.data.some((v, j) => v !== before.tensors[i].data[j]))).toBe(true);
      trainer.dispose();
      gan.dispose();
      tf.dispose([images, labels]);
    } finally {
      setRandomOps(null);
      setAdamFactory(null);
    }
  });
});
