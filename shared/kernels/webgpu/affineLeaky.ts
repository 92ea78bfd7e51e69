import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { AffineLeaky } from '../../nn/normLeaky.ts';
import { columnSum } from './columnSum.ts';
import { ElementwiseProgram } from './elementwiseProgram.ts';
import { installWebGPUKernels, type Restore } from './overrides.ts';

/**
 * A layer norm's affine part and the LeakyReLU after it (the WGAN-GP CNN critic's layers 2–4) as webgpu
 * kernels of one dispatch each (issue 19), with m(y) = 1 where y > 0 and α elsewhere (y > 0 exactly where
 * x̂·γ + β > 0, for α > 0):
 *
 *   FedganAffineLeaky(x̂, γ, β)          y  = LeakyReLU(x̂·γ_c + β_c)                 tfjs: multiply, add, LeakyReLU
 *   FedganAffineLeakyGrad(dy, y, γ)      dx̂ = m(y)·dy·γ_c                            tfjs: LeakyReLU's gradient, multiply
 *   FedganMaskedColumnSum(a[, b], y)     Σ_rows m(y)·a(·b)  (dγ with b = x̂, dβ without)  tfjs: multiplies, sums
 *
 * FedganAffineLeakyGrad's own gradients (the penalty's second order) are itself applied to the incoming
 * gradient (with respect to dy), a masked column sum of g·dy (with respect to γ) and zero with respect to y
 * (the mask is piecewise constant), as for tfjs's composition. The column sums have no gradient (third
 * order). Column sums follow columnSum.ts (one dispatch on SwiftShader; row slices and a second dispatch
 * where a large GPU wants more threads).
 */
export const AFFINE_LEAKY = 'FedganAffineLeaky';
export const AFFINE_LEAKY_GRAD = 'FedganAffineLeakyGrad';
export const MASKED_COLUMN_SUM = 'FedganMaskedColumnSum';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

const alphaOf = (attrs?: tf.NamedAttrMap) => (attrs as unknown as { alpha: number }).alpha;

function forwardKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  const c = x.shape[x.shape.length - 1];
  const v = 'fma(x[i], gamma[i % uniforms.c], beta[i % uniforms.c])';
  const program = new ElementwiseProgram(['x', 'gamma', 'beta'], x.shape, 'fedganAffineLeaky', 'c : i32, alpha : f32,', `select(uniforms.alpha * ${v}, ${v}, ${v} > 0.0)`);
  return (backend as WebGPUBackend).runWebGPUProgram(program, [x, gamma, beta], 'float32', [
    { type: 'int32', data: [c] },
    { type: 'float32', data: [alphaOf(attrs)] },
  ]);
}

function gradKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, y, gamma } = inputs as { dy: TensorInfo; y: TensorInfo; gamma: TensorInfo };
  const c = y.shape[y.shape.length - 1];
  const program = new ElementwiseProgram(['dy', 'y', 'gamma'], y.shape, 'fedganAffineLeakyGrad', 'c : i32, alpha : f32,', 'select(uniforms.alpha, 1.0, y[i] > 0.0) * dy[i] * gamma[i % uniforms.c]');
  return (backend as WebGPUBackend).runWebGPUProgram(program, [dy, y, gamma], 'float32', [
    { type: 'int32', data: [c] },
    { type: 'float32', data: [alphaOf(attrs)] },
  ]);
}

function maskedColumnSumKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { a, b, y } = inputs as { a: TensorInfo; b?: TensorInfo; y: TensorInfo };
  const cols = y.shape[y.shape.length - 1];
  const rows = tf.util.sizeFromShape(y.shape) / cols;
  return columnSum(backend as WebGPUBackend, a, b ?? null, rows, cols, [cols], { m: y, alpha: alphaOf(attrs) });
}

const run = (name: string, inputs: Record<string, tf.Tensor>, alpha: number) => tf.engine().runKernel(name, inputs, { alpha } as unknown as tf.NamedAttrMap) as tf.Tensor;

/** The hook for shared/nn/normLeaky.ts: null (tfjs ops) off webgpu, for other dtypes or shapes, or α ≤ 0. */
export const webgpuAffineLeaky: AffineLeaky = (xHat, gamma, beta, alpha) => {
  const c = xHat.shape[xHat.rank - 1];
  const ok =
    tf.getBackend() === 'webgpu' &&
    tf.getKernel(AFFINE_LEAKY, 'webgpu') != null &&
    alpha > 0 &&
    xHat.rank >= 1 &&
    xHat.size > 0 &&
    [xHat, gamma, beta].every((t) => t.dtype === 'float32') &&
    gamma.rank === 1 &&
    beta.rank === 1 &&
    gamma.shape[0] === c &&
    beta.shape[0] === c;
  return ok ? run(AFFINE_LEAKY, { x: xHat, gamma, beta }, alpha) : null;
};

export function installAffineLeaky(): Restore {
  return installWebGPUKernels({ [AFFINE_LEAKY]: forwardKernel, [AFFINE_LEAKY_GRAD]: gradKernel, [MASKED_COLUMN_SUM]: maskedColumnSumKernel }, [
    {
      kernelName: AFFINE_LEAKY,
      inputsToSave: ['x', 'gamma'],
      outputsToSave: [true],
      gradFunc: (dy, saved, attrs) => {
        const [x, gamma, y] = saved as tf.Tensor[];
        const alpha = alphaOf(attrs);
        const d = dy as tf.Tensor;
        return {
          x: () => run(AFFINE_LEAKY_GRAD, { dy: d, y, gamma }, alpha),
          gamma: () => run(MASKED_COLUMN_SUM, { a: d, b: x, y }, alpha),
          beta: () => run(MASKED_COLUMN_SUM, { a: d, y }, alpha),
        };
      },
    },
    {
      kernelName: AFFINE_LEAKY_GRAD,
      inputsToSave: ['dy', 'y', 'gamma'],
      gradFunc: (g, saved, attrs) => {
        const [dy, y, gamma] = saved as tf.Tensor[];
        const alpha = alphaOf(attrs);
        const h = g as tf.Tensor;
        return {
          dy: () => run(AFFINE_LEAKY_GRAD, { dy: h, y, gamma }, alpha),
          gamma: () => run(MASKED_COLUMN_SUM, { a: h, b: dy, y }, alpha),
          y: () => tf.zerosLike(y),
        };
      },
    },
  ]);
}
