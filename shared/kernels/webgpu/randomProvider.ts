import * as tf from '@tensorflow/tfjs-core';
import { tfjsRandomOps, type RandomOps } from '../../nn/random.ts';
import { gpuDropoutMask, gpuRandomNormal, gpuRandomUniform, gpuRandomUniformInt, type DrawId } from './gpuRandom.ts';
import { fusedDropoutInstalled, gpuDropout } from './fusedDropout.ts';

/**
 * The training step's random tensors drawn on the GPU (see shared/nn/random.ts for the hook). A seeded
 * draw uses its seed (same seed, same tensor, as tfjs); an unseeded one takes the next stream of this
 * provider's base seed, one sequence for the whole page. The GAN trainer seeds every draw of its steps,
 * dropout masks included (shared/gan/trainer.ts), so its runs depend on its seed, not on this stream.
 * Off the webgpu backend it hands over to tfjs's own ops.
 */
export function createGpuRandomOps(baseSeed: number): RandomOps {
  let stream = 0;
  const id = (seed?: number): DrawId => (seed == null ? { seed: baseSeed, stream: ++stream } : { seed, stream: 0 });
  const onGpu = () => tf.getBackend() === 'webgpu';
  return {
    normal: (shape, mean, std, seed) => (onGpu() ? gpuRandomNormal(shape, mean, std, id(seed)) : tfjsRandomOps.normal(shape, mean, std, seed)),
    uniform: (shape, min, max, seed) => (onGpu() ? gpuRandomUniform(shape, min, max, id(seed)) : tfjsRandomOps.uniform(shape, min, max, seed)),
    uniformInt: (shape, min, max, seed) => (onGpu() ? gpuRandomUniformInt(shape, min, max, id(seed)) : tfjsRandomOps.uniformInt(shape, min, max, seed)),
    dropout: (x, rate, seed) => {
      if (!onGpu()) return tfjsRandomOps.dropout(x, rate, seed);
      // One dispatch with the mask drawn in the kernel, where installed; the same numbers either way.
      if (x.dtype === 'float32' && fusedDropoutInstalled()) return gpuDropout(x, rate, id(seed));
      return tf.tidy(() => tf.mul(x, gpuDropoutMask(x.shape, rate, id(seed))));
    },
  };
}
