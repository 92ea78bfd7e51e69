import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { ElementwiseProgram } from './elementwiseProgram.ts';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { tfjsMovingAverage } from '../../nn/movingAverage.ts';
import { installWebGPUKernels, type Restore } from './overrides.ts';

/**
 * moving·momentum + batch·(1 − momentum) in one webgpu dispatch (tfjs: two multiplications and an
 * addition). The generator's three batch norms update two statistics each, once per GAN step (only the
 * generator's update pass folds its batch statistics in: shared/gan/generator.ts): 18 dispatches a step
 * become 6. Training-mode passes that leave the statistics alone dispatch nothing here.
 */
export const MOVING_AVERAGE = 'FedganMovingAverage';

function kernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const { moving, batch } = inputs as { moving: TensorInfo; batch: TensorInfo };
  if (!tf.util.arraysEqual(moving.shape, batch.shape)) throw new Error(`${MOVING_AVERAGE}: moving [${moving.shape}] and batch [${batch.shape}] differ`);
  const m = (attrs as unknown as { momentum: number }).momentum;
  const program = new ElementwiseProgram(['moving', 'batch'], moving.shape, 'fedganMovingAverage', 'momentum : f32, rest : f32,', 'moving[i] * uniforms.momentum + batch[i] * uniforms.rest');
  return (backend as WebGPUBackend).runWebGPUProgram(program, [moving, batch], 'float32', [
    { type: 'float32', data: [m] },
    { type: 'float32', data: [1 - m] },
  ]);
}

export function movingAverageWebGPU(moving: tf.Tensor, batch: tf.Tensor, momentum: number): tf.Tensor {
  if (tf.getBackend() !== 'webgpu' || moving.dtype !== 'float32' || batch.dtype !== 'float32' || !tf.util.arraysEqual(moving.shape, batch.shape)) return tfjsMovingAverage(moving, batch, momentum);
  return tf.engine().runKernel(MOVING_AVERAGE, { moving, batch }, { momentum } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

export function installMovingAverage(): Restore {
  return installWebGPUKernels({ [MOVING_AVERAGE]: kernel });
}
