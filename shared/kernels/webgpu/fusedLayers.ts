import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { FusedLayerOps } from '../../nn/fusedLayerOps.ts';
import { tfjsFusedLayerOps } from '../../nn/fusedLayerOps.ts';
import { leakyReluBackward } from './leakyReluGrad.ts';
import { installWebGPUKernels, type Restore } from './overrides.ts';

/**
 * Conv + bias (+ LeakyReLU) and dense + bias as single webgpu dispatches, forward: tfjs's own fused
 * kernels (FusedConv2D, _FusedMatMul: the bias and activation run in the matmul's epilogue). tfjs's
 * `tf.fused.*` ops cannot be used as they are: their gradient cannot differentiate LeakyReLU, and being
 * custom gradients they compute every input's gradient eagerly (the gradient penalty needs only the
 * input's). So this project registers two kernels of its own that call tfjs's fused kernels, with
 * ordinary gradient configs whose input gradients are lazy and built from differentiable ops:
 *
 *   FedganConvBiasAct(x, filter, bias?) → y:  d_pre = LeakyReLU'(y)·dy (y > 0 exactly where the
 *     pre-activation is, for α > 0), dx = conv2dTranspose(d_pre), dfilter = Conv2DBackpropFilter(x, d_pre),
 *     dbias = Σ d_pre
 *   FedganDenseBias(x, kernel, bias?) → y:     dx = dy·kernelᵀ, dkernel = xᵀ·dy, dbias = Σ dy
 *
 * The forward pass saves a dispatch per layer (two with LeakyReLU); backward is what tfjs ran before.
 */
export const CONV_BIAS_ACT = 'FedganConvBiasAct';
export const DENSE_BIAS = 'FedganDenseBias';

interface ConvAttrs {
  stride: number;
  /** LeakyReLU slope, or -1 for no activation (attrs must be numbers). */
  alpha: number;
}

function convKernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const { stride, alpha } = attrs as unknown as ConvAttrs;
  const fused = tf.getKernel('FusedConv2D', 'webgpu')!.kernelFunc;
  return fused({
    inputs: { x: inputs.x, filter: inputs.filter, bias: inputs.bias },
    backend: backend as tf.KernelBackend,
    attrs: { strides: [stride, stride], pad: 'same', dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined, activation: alpha >= 0 ? 'leakyrelu' : 'linear', leakyreluAlpha: alpha >= 0 ? alpha : 0 } as unknown as tf.NamedAttrMap,
  }) as TensorInfo;
}

function denseKernel({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): TensorInfo {
  const fused = tf.getKernel('_FusedMatMul', 'webgpu')!.kernelFunc;
  return fused({
    inputs: { a: inputs.x, b: inputs.kernel, bias: inputs.bias },
    backend: backend as tf.KernelBackend,
    attrs: { transposeA: false, transposeB: false, activation: 'linear' } as unknown as tf.NamedAttrMap,
  }) as TensorInfo;
}

const usable = (...ts: (tf.Tensor | null)[]) => tf.getBackend() === 'webgpu' && ts.every((t) => t == null || t.dtype === 'float32');

export const webgpuFusedLayerOps: FusedLayerOps = {
  conv(x, filter, bias, stride, alpha) {
    if (!usable(x, filter, bias) || (alpha != null && !(alpha > 0))) return tfjsFusedLayerOps.conv(x, filter, bias, stride, alpha);
    const inputs: Record<string, tf.Tensor> = bias ? { x, filter, bias } : { x, filter };
    return tf.engine().runKernel(CONV_BIAS_ACT, inputs, { stride, alpha: alpha ?? -1 } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  },
  dense(x, kernel, bias) {
    if (!usable(x, kernel, bias)) return tfjsFusedLayerOps.dense(x, kernel, bias);
    const inputs: Record<string, tf.Tensor> = bias ? { x, kernel, bias } : { x, kernel };
    return tf.engine().runKernel(DENSE_BIAS, inputs, {}) as tf.Tensor2D;
  },
};

export function installFusedLayers(): Restore {
  return installWebGPUKernels({ [CONV_BIAS_ACT]: convKernel, [DENSE_BIAS]: denseKernel }, [
    {
      kernelName: CONV_BIAS_ACT,
      inputsToSave: ['x', 'filter'],
      outputsToSave: [true],
      gradFunc: (dy, saved, attrs) => {
        const [x, filter, y] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
        const { stride, alpha } = attrs as unknown as ConvAttrs;
        // Computed once here, outside the per-input scopes, and shared by the three gradients.
        const pre = (alpha >= 0 ? leakyReluBackward(dy as tf.Tensor, y, alpha) : dy) as tf.Tensor4D;
        return {
          x: () => tf.conv2dTranspose(pre, filter, x.shape, stride, 'same'),
          filter: () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: pre }, { strides: [stride, stride], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
          bias: () => tf.sum(pre, [0, 1, 2]),
        };
      },
    },
    {
      kernelName: DENSE_BIAS,
      inputsToSave: ['x', 'kernel'],
      gradFunc: (dy, saved) => {
        const [x, kernel] = saved as [tf.Tensor2D, tf.Tensor2D];
        const g = dy as tf.Tensor2D;
        return {
          x: () => tf.matMul(g, kernel, false, true),
          kernel: () => tf.matMul(x, g, true, false),
          bias: () => tf.sum(g, 0),
        };
      },
    },
  ]);
}
