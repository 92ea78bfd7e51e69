import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { tfjsLayerNormalize } from '../../nn/layerNormalize.ts';
import { installWebGPUKernels, type Restore } from './overrides.ts';

/**
 * Layer normalisation's core x̂ = (x − μ)·r, r = 1/√(σ² + ε), μ and σ² over the last axis of n values,
 * as three webgpu kernels, one thread per row, each one dispatch:
 *
 *   N(x)           = x̂
 *   NG(g, x)       = ∂⟨g, N(x)⟩/∂x = r·(g − ā − x̂·b),                a = Σg/n, b = Σg·x̂/n
 *   NGX(h, g, x)   = ∂⟨h, NG(g, x)⟩/∂x = −r²·((K/n)·x̂ + (hx/n)·g + b·h − q̄),
 *                    H = Σh, hx = Σh·x̂, hg = Σh·g, K = hg − a·H − 3b·hx, q̄ = (hx·a + b·H)/n
 *
 * and ∂⟨h, NG(g, x)⟩/∂g = NG(h, x), because N's Jacobian is symmetric. So N's gradient is NG, and NG's
 * gradients are NG and NGX: exactly what WGAN-GP needs, since its gradient penalty differentiates the
 * critic's input gradient once more. tfjs composes N from moments, a subtraction, a square root and a
 * division, and its first and second derivatives from dozens of elementwise ops and reductions: in a
 * WGAN-GP step with the CNN critic (3 layer norms), about half of the ~1,000 dispatches.
 *
 * Statistics are two-pass (mean, then the mean of squared deviations), as tfjs's moments. NGX has no
 * gradient (third order): differentiating it fails with tfjs's "gradient function not found".
 */
export const LN = 'FedganLayerNormalize';
export const LN_GRAD = 'FedganLayerNormalizeGrad';
export const LN_GRAD_X = 'FedganLayerNormalizeGradX';

const STATS = `
        let n = uniforms.n;
        let base = row * n;
        var s = 0.0;
        for (var i = 0; i < n; i = i + 1) { s = s + x[base + i]; }
        let mu = s / f32(n);
        var ss = 0.0;
        for (var i = 0; i < n; i = i + 1) { let d = x[base + i] - mu; ss = ss + d * d; }
        let r = inverseSqrt(ss / f32(n) + uniforms.epsilon);`;

class RowProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  uniforms = 'rows : i32, n : i32, epsilon : f32,';
  constructor(
    readonly variableNames: string[],
    shape: number[],
    key: string,
    private readonly body: string,
  ) {
    this.outputShape = shape;
    this.shaderKey = key;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    const rows = tf.util.sizeFromShape(shape) / shape[shape.length - 1];
    this.dispatch = [Math.ceil(rows / 64), 1, 1];
  }
  getUserCode(): string {
    return `
      fn main(row : i32) {
        if (row >= uniforms.rows) { return; }
        ${STATS}
        ${this.body}
      }`;
  }
}

const NORMALIZE = `
        for (var i = 0; i < n; i = i + 1) { setOutputAtIndex(base + i, (x[base + i] - mu) * r); }`;

const NORMALIZE_GRAD = `
        var sg = 0.0;
        var sgx = 0.0;
        for (var i = 0; i < n; i = i + 1) {
          let gi = g[base + i];
          sg = sg + gi;
          sgx = sgx + gi * (x[base + i] - mu) * r;
        }
        let a = sg / f32(n);
        let b = sgx / f32(n);
        for (var i = 0; i < n; i = i + 1) {
          let xh = (x[base + i] - mu) * r;
          setOutputAtIndex(base + i, r * (g[base + i] - a - xh * b));
        }`;

const NORMALIZE_GRAD_X = `
        var sh = 0.0;
        var sg = 0.0;
        var shg = 0.0;
        var sgx = 0.0;
        var shx = 0.0;
        for (var i = 0; i < n; i = i + 1) {
          let hi = h[base + i];
          let gi = g[base + i];
          let xh = (x[base + i] - mu) * r;
          sh = sh + hi;
          sg = sg + gi;
          shg = shg + hi * gi;
          sgx = sgx + gi * xh;
          shx = shx + hi * xh;
        }
        let nf = f32(n);
        let a = sg / nf;
        let b = sgx / nf;
        let k = shg - a * sh - 3.0 * b * shx;
        let qbar = (shx * a + b * sh) / nf;
        for (var i = 0; i < n; i = i + 1) {
          let xh = (x[base + i] - mu) * r;
          setOutputAtIndex(base + i, -r * r * ((k / nf) * xh + (shx / nf) * g[base + i] + b * h[base + i] - qbar));
        }`;

type Attrs = { epsilon: number };

function run(backend: unknown, names: string[], inputs: TensorInfo[], key: string, body: string, epsilon: number): TensorInfo {
  const x = inputs[inputs.length - 1];
  for (const t of inputs) {
    if (!tf.util.arraysEqual(t.shape, x.shape)) throw new Error(`${key}: input shapes differ: [${inputs.map((i) => i.shape).join('] vs [')}]`);
  }
  const n = x.shape[x.shape.length - 1];
  const rows = tf.util.sizeFromShape(x.shape) / n;
  return (backend as WebGPUBackend).runWebGPUProgram(new RowProgram(names, x.shape, key, body), inputs, 'float32', [
    { type: 'int32', data: [rows] },
    { type: 'int32', data: [n] },
    { type: 'float32', data: [epsilon] },
  ]);
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
const eps = (attrs?: tf.NamedAttrMap) => (attrs as unknown as Attrs).epsilon;
const kernels: Record<string, (a: KernelArgs) => TensorInfo> = {
  [LN]: ({ inputs, backend, attrs }) => run(backend, ['x'], [inputs.x as TensorInfo], 'fedganLayerNormalize', NORMALIZE, eps(attrs)),
  [LN_GRAD]: ({ inputs, backend, attrs }) => run(backend, ['g', 'x'], [inputs.g as TensorInfo, inputs.x as TensorInfo], 'fedganLayerNormalizeGrad', NORMALIZE_GRAD, eps(attrs)),
  [LN_GRAD_X]: ({ inputs, backend, attrs }) =>
    run(backend, ['h', 'g', 'x'], [inputs.h as TensorInfo, inputs.g as TensorInfo, inputs.x as TensorInfo], 'fedganLayerNormalizeGradX', NORMALIZE_GRAD_X, eps(attrs)),
};

const call = (name: string, inputs: Record<string, tf.Tensor>, epsilon: number) => tf.engine().runKernel(name, inputs, { epsilon } as unknown as tf.NamedAttrMap) as tf.Tensor;

/** x̂ over the last axis: the fused kernel on webgpu for float32 tensors with a non-empty last axis, tfjs ops otherwise. */
export function layerNormalizeWebGPU(x: tf.Tensor, epsilon: number): tf.Tensor {
  if (tf.getBackend() !== 'webgpu' || x.dtype !== 'float32' || x.rank < 1 || x.size === 0 || x.shape[x.rank - 1] < 1) return tfjsLayerNormalize(x, epsilon);
  return call(LN, { x }, epsilon);
}

export function installLayerNorm(): Restore {
  return installWebGPUKernels(kernels, [
    {
      kernelName: LN,
      inputsToSave: ['x'],
      gradFunc: (g, [x], attrs) => ({ x: () => call(LN_GRAD, { g: g as tf.Tensor, x }, eps(attrs)) }),
    },
    {
      kernelName: LN_GRAD,
      inputsToSave: ['g', 'x'],
      gradFunc: (h, [g, x], attrs) => ({
        g: () => call(LN_GRAD, { g: h as tf.Tensor, x }, eps(attrs)),
        x: () => call(LN_GRAD_X, { h: h as tf.Tensor, g, x }, eps(attrs)),
      }),
    },
  ]);
}
