import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { ElementwiseProgram } from './elementwiseProgram.ts';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { overrideGradient, type Restore } from './overrides.ts';

/**
 * LeakyReLU's gradient as one webgpu dispatch: dx = x > 0 ? dy : α·dy. tfjs composes it from Greater,
 * Multiply and Select (three dispatches and two temporaries, each a full pass over the activation).
 * Its own gradient (WGAN-GP differentiates the critic's gradient) is the same kernel applied to the
 * incoming gradient, and zero with respect to x, as for tfjs's composition. Off webgpu the gradient is
 * tfjs's formula.
 */
export const LEAKY_RELU_GRAD = 'FedganLeakyReluGrad';

function kernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  if (!tf.util.arraysEqual(dy.shape, x.shape)) throw new Error(`${LEAKY_RELU_GRAD}: dy [${dy.shape}] and x [${x.shape}] differ`);
  const alpha = (attrs as { alpha: number }).alpha;
  const program = new ElementwiseProgram(['dy', 'x'], x.shape, 'fedganLeakyReluGrad', 'alpha : f32,', 'select(dy[i] * uniforms.alpha, dy[i], x[i] > 0.0)');
  return (backend as WebGPUBackend).runWebGPUProgram(program, [dy, x], 'float32', [{ type: 'float32', data: [alpha] }]);
}

const fused = (dy: tf.Tensor, x: tf.Tensor, alpha: number) => tf.engine().runKernel(LEAKY_RELU_GRAD, { dy, x }, { alpha } as unknown as tf.NamedAttrMap) as tf.Tensor;

/**
 * LeakyReLU's gradient dy · (x > 0 ? 1 : α): one dispatch where this project's kernel is registered for the
 * current backend (webgpu, float32, same shapes), tfjs's Greater/Multiply/Select otherwise. `x` may also be
 * the activation's output, which has the same sign for α > 0.
 */
export function leakyReluBackward(dy: tf.Tensor, x: tf.Tensor, alpha: number): tf.Tensor {
  if (tf.getKernel(LEAKY_RELU_GRAD, tf.getBackend()) && x.dtype === 'float32' && tf.util.arraysEqual(dy.shape, x.shape)) return fused(dy, x, alpha);
  return tf.where(tf.greater(x, 0), dy, tf.mul(dy, alpha));
}

export function installLeakyReluGrad(): Restore {
  if (tf.getKernel(LEAKY_RELU_GRAD, 'webgpu')) tf.unregisterKernel(LEAKY_RELU_GRAD, 'webgpu');
  tf.registerKernel({ kernelName: LEAKY_RELU_GRAD, backendName: 'webgpu', kernelFunc: kernel as unknown as tf.KernelFunc });
  const restoreSecond = overrideGradient({
    kernelName: LEAKY_RELU_GRAD,
    inputsToSave: ['x'],
    gradFunc: (g, saved, attrs) => {
      const [x] = saved;
      const alpha = (attrs as unknown as { alpha: number }).alpha;
      return { dy: () => fused(g as tf.Tensor, x, alpha), x: () => tf.zerosLike(x) };
    },
  });
  const restoreFirst = overrideGradient({
    kernelName: 'LeakyRelu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const alpha = (attrs as unknown as { alpha: number }).alpha;
      return { x: () => leakyReluBackward(dy as tf.Tensor, x, alpha) };
    },
  });
  return () => {
    restoreFirst();
    restoreSecond();
    tf.unregisterKernel(LEAKY_RELU_GRAD, 'webgpu');
  };
}
