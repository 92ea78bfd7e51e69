import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { overrideGradient, type Restore } from './overrides.ts';

/**
 * Training-mode batch normalisation over all axes but the last, optionally followed by a LeakyReLU, as
 * two webgpu kernels of this project:
 *
 *   forward  FedganBatchNormTrain(x, γ, β) → y, mean, variance      (4 dispatches)
 *   backward FedganBatchNormTrainGrad(dy, x, mean, variance, γ[, y]) → dx, dγ, dβ   (4 dispatches)
 *
 * tfjs builds the same thing from moments (two means, each a transpose and a reduction, and a squared
 * difference) and a batchNorm kernel, and differentiates it op by op: about 10 dispatches forward and
 * 30 backward per layer, most of them full passes over the activation. Here per-channel statistics are
 * a split column reduction (each thread sums one channel over a slice of rows; slices are merged with
 * Chan's parallel variance formula, so the variance does not suffer from E[x²] − E[x]² cancellation),
 * and the normalisation and the input gradient are one elementwise pass each:
 *
 *   y = (x − μ)·γ/√(σ² + ε) + β,   dβ = Σdy,  dγ = Σdy·x̂,  dx = γ/√(σ² + ε)·(dy − dβ/N − x̂·dγ/N).
 *
 * With the attribute `alpha` (the generator's batch norm + LeakyReLU, shared/nn/layers.ts `applyLeaky`)
 * the normalising pass stores LeakyReLU(y, α) and the backward passes read the incoming gradient as
 * d = dy where the output is positive, α·dy elsewhere (the output's sign is the pre-activation's for
 * α ≥ 0, so the saved output is the mask), exactly as tfjs's LeakyReLU gradient: the activation costs
 * no dispatch and no pass over the tensor of its own (tfjs: one forward and one backward dispatch).
 * The input gradient's pass then binds nine storage buffers; WebGPU's default is eight per shader stage,
 * so on a device created with the default limit (tfjs's own factory) the masked gradient is one
 * elementwise dispatch of its own, as tfjs's LeakyReLU gradient would be, and the forward saving stays.
 *
 * First-order only (the generator's batch norm is never differentiated twice); no barriers.
 */
export const BN_TRAIN = 'FedganBatchNormTrain';
export const BN_TRAIN_GRAD = 'FedganBatchNormTrainGrad';

let targetThreads = 1 << 15;
export function setBatchNormParallelism(threads: number): void {
  targetThreads = Math.max(1, Math.floor(threads));
}

function splitsFor(rows: number, channels: number): { splits: number; rowsPerSplit: number } {
  // Capped: the finalising dispatches merge the slices serially per channel.
  const want = Math.max(1, Math.min(rows, 512, Math.ceil(targetThreads / channels), Math.ceil(rows / 16)));
  const rowsPerSplit = Math.ceil(rows / want);
  return { splits: Math.ceil(rows / rowsPerSplit), rowsPerSplit };
}

abstract class ColumnProgram implements WebGPUProgram {
  abstract variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  uniforms = 'rows : i32, channels : i32, rowsPerSplit : i32, splits : i32, threads : i32, epsilon : f32, alpha : f32,';
  constructor(outputShape: number[], threads: number, key: string) {
    this.outputShape = outputShape;
    this.shaderKey = key;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.ceil(threads / this.workgroupSize[0]), 1, 1];
  }
  abstract getUserCode(): string;
}

/** Per (split, channel): mean and M2 (sum of squared deviations) of x over the split's rows. */
class StatsPartialProgram extends ColumnProgram {
  variableNames = ['x'];
  getUserCode(): string {
    return `
      fn main(t : i32) {
        if (t >= uniforms.threads) { return; }
        let c = t % uniforms.channels;
        let s = t / uniforms.channels;
        let r0 = s * uniforms.rowsPerSplit;
        let r1 = min(r0 + uniforms.rowsPerSplit, uniforms.rows);
        let shift = x[r0 * uniforms.channels + c];
        var s1 = 0.0;
        var s2 = 0.0;
        for (var r = r0; r < r1; r = r + 1) {
          let d = x[r * uniforms.channels + c] - shift;
          s1 = s1 + d;
          s2 = s2 + d * d;
        }
        let n = f32(r1 - r0);
        let base = s * 2 * uniforms.channels + c;
        setOutputAtIndex(base, shift + s1 / n);
        setOutputAtIndex(base + uniforms.channels, max(s2 - s1 * s1 / n, 0.0));
      }`;
  }
}

/** Per channel: merge the splits' (count, mean, M2) with Chan's formula; output the mean or the (biased) variance. */
class StatsFinalizeProgram extends ColumnProgram {
  variableNames = ['partial'];
  constructor(outputShape: number[], threads: number, private readonly which: 'mean' | 'variance') {
    super(outputShape, threads, `fedganBnStatsFinalize_${which}`);
  }
  getUserCode(): string {
    return `
      fn main(c : i32) {
        if (c >= uniforms.channels) { return; }
        var n = 0.0;
        var mean = 0.0;
        var m2 = 0.0;
        for (var s = 0; s < uniforms.splits; s = s + 1) {
          let nb = f32(min(uniforms.rowsPerSplit, uniforms.rows - s * uniforms.rowsPerSplit));
          let base = s * 2 * uniforms.channels + c;
          let meanB = partial[base];
          let m2B = partial[base + uniforms.channels];
          let total = n + nb;
          let delta = meanB - mean;
          mean = mean + delta * (nb / total);
          m2 = m2 + m2B + delta * delta * (n * nb / total);
          n = total;
        }
        setOutputAtIndex(c, ${this.which === 'mean' ? 'mean' : 'm2 / n'});
      }`;
  }
}

/** y = (x − μ)·γ/√(σ² + ε) + β, in the same operation order as tfjs's batchNorm kernel; then LeakyReLU if `leaky`. */
class NormalizeProgram extends ColumnProgram {
  variableNames = ['x', 'mean', 'variance', 'gamma', 'beta'];
  size = true;
  constructor(outputShape: number[], threads: number, private readonly leaky: boolean) {
    super(outputShape, threads, `fedganBnNormalize_${leaky}`);
  }
  getUserCode(): string {
    return `
      fn main(i : i32) {
        if (i >= uniforms.size) { return; }
        let c = i % uniforms.channels;
        let inv = gamma[c] * inverseSqrt(variance[c] + uniforms.epsilon);
        let v = dot(vec3<f32>(x[i], -mean[c], beta[c]), vec3<f32>(inv, inv, 1.0));
        setOutputAtIndex(i, ${this.leaky ? 'select(v * uniforms.alpha, v, v > 0.0)' : 'v'});
      }`;
  }
}

/** The incoming gradient as the batch norm's own: through the LeakyReLU (its output y is the mask) when leaky. */
function incoming(leaky: boolean): string {
  return leaky ? 'select(dy[i] * uniforms.alpha, dy[i], y[i] > 0.0)' : 'dy[i]';
}

/** d = dy where y > 0, α·dy elsewhere: LeakyReLU's gradient from its output (the narrow-device path). */
class LeakyMaskProgram extends ColumnProgram {
  variableNames = ['dy', 'y'];
  size = true;
  getUserCode(): string {
    return `
      fn main(i : i32) {
        if (i >= uniforms.size) { return; }
        setOutputAtIndex(i, ${incoming(true)});
      }`;
  }
}

/** Per (split, channel): Σdy and Σdy·x̂ over the split's rows. */
class GradPartialProgram extends ColumnProgram {
  variableNames: string[];
  constructor(outputShape: number[], threads: number, private readonly leaky: boolean) {
    super(outputShape, threads, `fedganBnGradPartial_${leaky}`);
    this.variableNames = leaky ? ['dy', 'x', 'mean', 'variance', 'y'] : ['dy', 'x', 'mean', 'variance'];
  }
  getUserCode(): string {
    return `
      fn main(t : i32) {
        if (t >= uniforms.threads) { return; }
        let c = t % uniforms.channels;
        let s = t / uniforms.channels;
        let r0 = s * uniforms.rowsPerSplit;
        let r1 = min(r0 + uniforms.rowsPerSplit, uniforms.rows);
        let mu = mean[c];
        let inv = inverseSqrt(variance[c] + uniforms.epsilon);
        var sumDy = 0.0;
        var sumDyXhat = 0.0;
        for (var r = r0; r < r1; r = r + 1) {
          let i = r * uniforms.channels + c;
          let g = ${incoming(this.leaky)};
          sumDy = sumDy + g;
          sumDyXhat = sumDyXhat + g * ((x[i] - mu) * inv);
        }
        let base = s * 2 * uniforms.channels + c;
        setOutputAtIndex(base, sumDy);
        setOutputAtIndex(base + uniforms.channels, sumDyXhat);
      }`;
  }
}

/** Per channel: Σ over splits of one of the two partial sums. */
class SumPartialsProgram extends ColumnProgram {
  variableNames = ['partial'];
  constructor(outputShape: number[], threads: number, private readonly row: 0 | 1) {
    super(outputShape, threads, `fedganBnSumPartials_${row}`);
  }
  getUserCode(): string {
    return `
      fn main(c : i32) {
        if (c >= uniforms.channels) { return; }
        var acc = 0.0;
        for (var s = 0; s < uniforms.splits; s = s + 1) {
          acc = acc + partial[(s * 2 + ${this.row}) * uniforms.channels + c];
        }
        setOutputAtIndex(c, acc);
      }`;
  }
}

/** dx = γ/√(σ² + ε)·(dy − dβ/N − x̂·dγ/N). */
class GradInputProgram extends ColumnProgram {
  variableNames: string[];
  size = true;
  constructor(outputShape: number[], threads: number, private readonly leaky: boolean) {
    super(outputShape, threads, `fedganBnGradInput_${leaky}`);
    this.variableNames = ['dy', 'x', 'mean', 'variance', 'gamma', 'dgamma', 'dbeta', ...(leaky ? ['y'] : [])];
  }
  getUserCode(): string {
    return `
      fn main(i : i32) {
        if (i >= uniforms.size) { return; }
        let c = i % uniforms.channels;
        let inv = inverseSqrt(variance[c] + uniforms.epsilon);
        let n = f32(uniforms.rows);
        let xhat = (x[i] - mean[c]) * inv;
        setOutputAtIndex(i, gamma[c] * inv * (${incoming(this.leaky)} - dbeta[c] / n - xhat * (dgamma[c] / n)));
      }`;
  }
}

let storageBufferLimit: number | null = null;
/** Tests: pretend the device binds at most `n` storage buffers per stage (null: ask the device). */
export function setBatchNormStorageBufferLimit(n: number | null): void {
  storageBufferLimit = n;
}
function storageBuffersPerStage(b: WebGPUBackend): number {
  return storageBufferLimit ?? b.device.limits.maxStorageBuffersPerShaderStage;
}

function geometry(x: TensorInfo): { rows: number; channels: number } {
  const channels = x.shape[x.shape.length - 1];
  return { rows: tf.util.sizeFromShape(x.shape) / channels, channels };
}

/** The kernels' attributes: ε, and the LeakyReLU's α when the activation is fused (absent: none). */
interface BatchNormAttrs {
  epsilon: number;
  alpha?: number;
}

function uniformsFor(rows: number, channels: number, rowsPerSplit: number, splits: number, threads: number, { epsilon, alpha }: BatchNormAttrs) {
  return [
    { type: 'int32', data: [rows] },
    { type: 'int32', data: [channels] },
    { type: 'int32', data: [rowsPerSplit] },
    { type: 'int32', data: [splits] },
    { type: 'int32', data: [threads] },
    { type: 'float32', data: [epsilon] },
    { type: 'float32', data: [alpha ?? 1] },
  ];
}

function forwardKernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo[] {
  const b = backend as WebGPUBackend;
  const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  const a = attrs as unknown as BatchNormAttrs;
  const { rows, channels } = geometry(x);
  const { splits, rowsPerSplit } = splitsFor(rows, channels);
  const threads = splits * channels;
  const u = uniformsFor(rows, channels, rowsPerSplit, splits, threads, a);
  const partial = b.runWebGPUProgram(new StatsPartialProgram([splits, 2, channels], threads, 'fedganBnStatsPartial'), [x], 'float32', u);
  const mean = b.runWebGPUProgram(new StatsFinalizeProgram([channels], channels, 'mean'), [partial], 'float32', u);
  const variance = b.runWebGPUProgram(new StatsFinalizeProgram([channels], channels, 'variance'), [partial], 'float32', u);
  b.disposeData(partial.dataId);
  const y = b.runWebGPUProgram(new NormalizeProgram(x.shape, rows * channels, a.alpha !== undefined), [x, mean, variance, gamma, beta], 'float32', u);
  return [y, mean, variance];
}

function backwardKernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo[] {
  const b = backend as WebGPUBackend;
  const { dy, x, mean, variance, gamma, y } = inputs as Record<'dy' | 'x' | 'mean' | 'variance' | 'gamma' | 'y', TensorInfo>;
  const a = attrs as unknown as BatchNormAttrs;
  const { rows, channels } = geometry(x);
  const { splits, rowsPerSplit } = splitsFor(rows, channels);
  const threads = splits * channels;
  const u = uniformsFor(rows, channels, rowsPerSplit, splits, threads, a);
  // The fused input gradient binds 9 storage buffers: where the device allows fewer, mask dy first.
  const leaky = a.alpha !== undefined && storageBuffersPerStage(b) >= 9;
  const g = a.alpha !== undefined && !leaky ? b.runWebGPUProgram(new LeakyMaskProgram(x.shape, rows * channels, 'fedganBnLeakyMask'), [dy, y], 'float32', u) : dy;
  const mask = leaky ? [y] : [];
  const partial = b.runWebGPUProgram(new GradPartialProgram([splits, 2, channels], threads, leaky), [g, x, mean, variance, ...mask], 'float32', u);
  const dbeta = b.runWebGPUProgram(new SumPartialsProgram([channels], channels, 0), [partial], 'float32', u);
  const dgamma = b.runWebGPUProgram(new SumPartialsProgram([channels], channels, 1), [partial], 'float32', u);
  b.disposeData(partial.dataId);
  const dx = b.runWebGPUProgram(new GradInputProgram(x.shape, rows * channels, leaky), [g, x, mean, variance, gamma, dgamma, dbeta, ...mask], 'float32', u);
  if (g !== dy) b.disposeData(g.dataId);
  return [dx, dgamma, dbeta];
}

/**
 * y, mean, variance of training-mode batch norm (webgpu only: the kernel is registered for it alone);
 * with `leakyAlpha`, y is LeakyReLU(normalised, leakyAlpha).
 */
export function batchNormTrainWebGPU(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number, leakyAlpha?: number): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  if (x.dtype !== 'float32' || gamma.shape[0] !== x.shape[x.rank - 1] || beta.shape[0] !== x.shape[x.rank - 1]) {
    throw new Error(`batchNormTrain: x must be float32 with ${gamma.shape[0]} channels last, got ${x.dtype} [${x.shape}]`);
  }
  if (leakyAlpha !== undefined && !(leakyAlpha >= 0 && Number.isFinite(leakyAlpha))) {
    // The backward pass takes the mask from the output's sign, which is the pre-activation's only for α ≥ 0.
    throw new Error(`batchNormTrain: the fused LeakyReLU needs a finite α ≥ 0, got ${leakyAlpha}`);
  }
  const attrs: BatchNormAttrs = leakyAlpha === undefined ? { epsilon } : { epsilon, alpha: leakyAlpha };
  const [y, mean, variance] = tf.engine().runKernel(BN_TRAIN, { x, gamma, beta }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return { y, mean, variance };
}

export function installBatchNormTrain(): Restore {
  for (const [kernelName, kernelFunc] of [
    [BN_TRAIN, forwardKernel],
    [BN_TRAIN_GRAD, backwardKernel],
  ] as const) {
    if (tf.getKernel(kernelName, 'webgpu')) tf.unregisterKernel(kernelName, 'webgpu');
    tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
  const restoreGrad = overrideGradient({
    kernelName: BN_TRAIN,
    inputsToSave: ['x', 'gamma'],
    outputsToSave: [true, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [x, gamma, y, mean, variance] = saved;
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [dx, dgamma, dbeta] = tf.engine().runKernel(BN_TRAIN_GRAD, { dy, x, mean, variance, gamma, y }, attrs as tf.NamedAttrMap) as tf.Tensor[];
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
    },
  });
  return () => {
    restoreGrad();
    tf.unregisterKernel(BN_TRAIN, 'webgpu');
    tf.unregisterKernel(BN_TRAIN_GRAD, 'webgpu');
  };
}
