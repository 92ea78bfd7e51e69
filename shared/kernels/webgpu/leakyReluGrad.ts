import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
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

class LeakyReluGradProgram implements WebGPUProgram {
  variableNames = ['dy', 'x'];
  outputShape: number[];
  shaderKey = 'fedganLeakyReluGrad';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  uniforms = 'alpha : f32,';
  size = true;
  constructor(shape: number[]) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = [Math.ceil(tf.util.sizeFromShape(shape) / 64), 1, 1];
  }
  getUserCode(): string {
    return `
      fn main(i : i32) {
        if (i >= uniforms.size) { return; }
        let g = dy[i];
        setOutputAtIndex(i, select(g * uniforms.alpha, g, x[i] > 0.0));
      }`;
  }
}

function kernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  if (!tf.util.arraysEqual(dy.shape, x.shape)) throw new Error(`${LEAKY_RELU_GRAD}: dy [${dy.shape}] and x [${x.shape}] differ`);
  const alpha = (attrs as { alpha: number }).alpha;
  return (backend as WebGPUBackend).runWebGPUProgram(new LeakyReluGradProgram(x.shape), [dy, x], 'float32', [{ type: 'float32', data: [alpha] }]);
}

const fused = (dy: tf.Tensor, x: tf.Tensor, alpha: number) => tf.engine().runKernel(LEAKY_RELU_GRAD, { dy, x }, { alpha } as unknown as tf.NamedAttrMap) as tf.Tensor;

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
      if (tf.getBackend() === 'webgpu' && x.dtype === 'float32' && tf.util.arraysEqual((dy as tf.Tensor).shape, x.shape)) {
        return { x: () => fused(dy as tf.Tensor, x, alpha) };
      }
      return { x: () => tf.where(tf.greater(x, 0), dy as tf.Tensor, tf.mul(dy as tf.Tensor, alpha)) };
    },
  });
  return () => {
    restoreFirst();
    restoreSecond();
    tf.unregisterKernel(LEAKY_RELU_GRAD, 'webgpu');
  };
}
