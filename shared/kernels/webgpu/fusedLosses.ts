import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { FusedLosses } from '../../gan/losses.ts';
import { installWebGPUKernels, type Restore } from './overrides.ts';

/**
 * The GAN losses as one dispatch forward and one backward each (first order: ACGAN and CGAN losses are
 * never differentiated twice; doing so fails with tfjs's "gradient function not found"):
 *
 *   FedganBceLogits(x; s)      = mean softplus(s·x)   (s = −1: target 1, s = +1: target 0)
 *     gradient                 dx = s·σ(s·x)·dy/n
 *   FedganSoftmaxCE(x, y)      = −mean_b log softmax(x_b)[y_b]   (max-shifted)
 *     gradient                 dx = (softmax(x_b) − onehot(y_b))·dy/B
 *
 * tfjs builds them from ~20 small ops (softplus, neg, mean; oneHot, logSoftmax = max, sub, exp, sum, log,
 * sub; mul, sum, mean, neg) and as many again for their gradients: in an ACGAN step, with three of each,
 * about a fifth of all dispatches, each on a tensor of B or B×K values. The forward kernels are one
 * thread looping over the batch (B ≤ a few hundred values); the gradients one thread per row.
 */
export const BCE = 'FedganBceLogits';
export const BCE_GRAD = 'FedganBceLogitsGrad';
export const SOFTMAX_CE = 'FedganSoftmaxCE';
export const SOFTMAX_CE_GRAD = 'FedganSoftmaxCEGrad';

const SOFTPLUS = `
      fn softplusOf(v : f32) -> f32 {
        return max(v, 0.0) + log(1.0 + exp(-abs(v)));
      }`;

class LossProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  uniforms = 'n : i32, k : i32, s : f32,';
  constructor(
    readonly variableNames: string[],
    outputShape: number[],
    threads: number,
    readonly shaderKey: string,
    private readonly code: string,
  ) {
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.ceil(threads / 64), 1, 1];
  }
  getUserCode(): string {
    return this.code;
  }
}

const BCE_CODE = `${SOFTPLUS}
      fn main(t : i32) {
        if (t != 0) { return; }
        var acc = 0.0;
        for (var i = 0; i < uniforms.n; i = i + 1) { acc = acc + softplusOf(uniforms.s * logits[i]); }
        setOutputAtIndex(0, acc / f32(uniforms.n));
      }`;

const BCE_GRAD_CODE = `
      fn main(i : i32) {
        if (i >= uniforms.n) { return; }
        let v = uniforms.s * logits[i];
        setOutputAtIndex(i, uniforms.s / (1.0 + exp(-v)) * dy[0] / f32(uniforms.n));
      }`;

const CE_CODE = `
      fn main(t : i32) {
        if (t != 0) { return; }
        var acc = 0.0;
        for (var b = 0; b < uniforms.n; b = b + 1) {
          let row = b * uniforms.k;
          var m = logits[row];
          for (var c = 1; c < uniforms.k; c = c + 1) { m = max(m, logits[row + c]); }
          var se = 0.0;
          for (var c = 0; c < uniforms.k; c = c + 1) { se = se + exp(logits[row + c] - m); }
          acc = acc + (logits[row + labels[b]] - m - log(se));
        }
        setOutputAtIndex(0, -acc / f32(uniforms.n));
      }`;

const CE_GRAD_CODE = `
      fn main(b : i32) {
        if (b >= uniforms.n) { return; }
        let row = b * uniforms.k;
        var m = logits[row];
        for (var c = 1; c < uniforms.k; c = c + 1) { m = max(m, logits[row + c]); }
        var se = 0.0;
        for (var c = 0; c < uniforms.k; c = c + 1) { se = se + exp(logits[row + c] - m); }
        let scale = dy[0] / f32(uniforms.n);
        let y = labels[b];
        for (var c = 0; c < uniforms.k; c = c + 1) {
          let p = exp(logits[row + c] - m) / se;
          setOutputAtIndex(row + c, (p - select(0.0, 1.0, c == y)) * scale);
        }
      }`;

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
const u = (n: number, k: number, s: number) => [
  { type: 'int32', data: [n] },
  { type: 'int32', data: [k] },
  { type: 'float32', data: [s] },
];
const be = (b: unknown) => b as WebGPUBackend;
const sign = (attrs?: tf.NamedAttrMap) => (attrs as unknown as { sign: number }).sign;

const kernels: Record<string, (a: Args) => TensorInfo> = {
  [BCE]: ({ inputs, backend, attrs }) => {
    const x = inputs.logits as TensorInfo;
    return be(backend).runWebGPUProgram(new LossProgram(['logits'], [], 1, 'fedganBce', BCE_CODE), [x], 'float32', u(tf.util.sizeFromShape(x.shape), 1, sign(attrs)));
  },
  [BCE_GRAD]: ({ inputs, backend, attrs }) => {
    const x = inputs.logits as TensorInfo;
    const n = tf.util.sizeFromShape(x.shape);
    return be(backend).runWebGPUProgram(new LossProgram(['logits', 'dy'], x.shape, n, 'fedganBceGrad', BCE_GRAD_CODE), [x, inputs.dy as TensorInfo], 'float32', u(n, 1, sign(attrs)));
  },
  [SOFTMAX_CE]: ({ inputs, backend }) => {
    const x = inputs.logits as TensorInfo;
    return be(backend).runWebGPUProgram(new LossProgram(['logits', 'labels'], [], 1, 'fedganSoftmaxCE', CE_CODE), [x, inputs.labels as TensorInfo], 'float32', u(x.shape[0], x.shape[1], 0));
  },
  [SOFTMAX_CE_GRAD]: ({ inputs, backend }) => {
    const x = inputs.logits as TensorInfo;
    return be(backend).runWebGPUProgram(new LossProgram(['logits', 'labels', 'dy'], x.shape, x.shape[0], 'fedganSoftmaxCEGrad', CE_GRAD_CODE), [x, inputs.labels as TensorInfo, inputs.dy as TensorInfo], 'float32', u(x.shape[0], x.shape[1], 0));
  },
};

export const webgpuFusedLosses: FusedLosses = {
  bceWithLogits(logits, target) {
    if (tf.getBackend() !== 'webgpu' || logits.dtype !== 'float32' || logits.size === 0) return null;
    return tf.engine().runKernel(BCE, { logits }, { sign: target === 1 ? -1 : 1 } as unknown as tf.NamedAttrMap) as tf.Scalar;
  },
  softmaxCrossEntropy(logits, labels) {
    if (tf.getBackend() !== 'webgpu' || logits.dtype !== 'float32' || labels.dtype !== 'int32' || logits.shape[0] === 0 || labels.shape[0] !== logits.shape[0]) return null;
    return tf.engine().runKernel(SOFTMAX_CE, { logits, labels }, {}) as tf.Scalar;
  },
};

export function installFusedLosses(): Restore {
  return installWebGPUKernels(kernels, [
    {
      kernelName: BCE,
      inputsToSave: ['logits'],
      gradFunc: (dy, [logits], attrs) => ({ logits: () => tf.engine().runKernel(BCE_GRAD, { logits, dy: dy as tf.Tensor }, attrs as tf.NamedAttrMap) as tf.Tensor }),
    },
    {
      kernelName: SOFTMAX_CE,
      inputsToSave: ['logits', 'labels'],
      gradFunc: (dy, [logits, labels]) => ({
        logits: () => tf.engine().runKernel(SOFTMAX_CE_GRAD, { logits, labels, dy: dy as tf.Tensor }, {}) as tf.Tensor,
        labels: () => tf.zerosLike(labels),
      }),
    },
  ]);
}
