import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { originalKernel, overrideGradient, overrideKernel, type Restore } from './overrides.ts';

/**
 * Sums over the leading axes without a transpose (issue 19). tfjs's webgpu Sum reduces only the innermost
 * axes, so a sum over [0, 1, 2] of an NHWC tensor (every bias gradient, every broadcast operand's gradient
 * of Add and Multiply, e.g. a layer norm's γ and β) first transposes the whole tensor: two dispatches and a
 * full copy. WGAN-GP's critic update runs dozens of them (its second-order pass differentiates through γ).
 *
 *   Sum(x, leading axes) = Σ_r x[r, c] over the rows r of x viewed as [rows, cols]
 *   FedganColumnSum(x, y) = Σ_r x[r, c]·y[r, c]                   (x, y: [rows, cols])
 *
 * read x (and y) in place, one thread per column; the second is Multiply's gradient for an operand broadcast over
 * the leading axes (dγ = Σ dy·x̂), one dispatch instead of a multiply, a transpose and a reduction. Where
 * many rows would leave a large GPU with few, long threads, the rows are split into slices (one thread per
 * slice and column) and a second dispatch sums the slices (`setColumnSumParallelism`: threads wanted; the
 * fast path asks for 1 on SwiftShader, whose few CPU threads want one pass, and 2^15 elsewhere).
 *
 * Installed as the webgpu Sum kernel for float32 sums over leading axes (others go to tfjs's kernel) and as
 * Multiply's gradient for such broadcasts (tfjs's formula otherwise, and on every other backend).
 * FedganColumnSum's own gradient is tfjs ops (never taken in a GAN step).
 */
export const COLUMN_SUM = 'FedganColumnSum';

let parallelism = 1 << 15;
const MIN_ROWS_PER_SLICE = 64;
const MAX_SLICES = 1024;

/** Threads a column sum should offer: slices = min(rows/64, parallelism/cols, 1024); one slice = one dispatch. */
export function setColumnSumParallelism(threads: number): void {
  parallelism = Math.max(1, Math.floor(threads));
}

/** The number of row slices for a [rows, cols] sum (1: one dispatch). */
export function columnSumSlices(rows: number, cols: number): number {
  return Math.max(1, Math.min(Math.floor(rows / MIN_ROWS_PER_SLICE), Math.ceil(parallelism / cols), MAX_SLICES));
}

class ColumnSumProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;
  variableNames: string[];
  shaderKey: string;
  uniforms = 'rows : i32, cols : i32, rowsPerSlice : i32, alpha : f32,';
  constructor(
    outputShape: number[],
    private readonly product: boolean,
    private readonly partial: boolean,
    private readonly masked = false,
  ) {
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.ceil(tf.util.sizeFromShape(outputShape) / 64), 1, 1];
    this.variableNames = ['x', ...(product ? ['y'] : []), ...(masked ? ['m'] : [])];
    this.shaderKey = `fedganColumnSum_${product ? 'xy' : 'x'}${masked ? 'm' : ''}_${partial ? 'slices' : 'rows'}`;
  }
  getUserCode(): string {
    let term = this.product ? 'x[k] * y[k]' : 'x[k]';
    if (this.masked) term = `select(uniforms.alpha, 1.0, m[k] > 0.0) * ${term}`;
    return `
      fn main(i : i32) {
        if (i >= uniforms.size) { return; }
        let c = i % uniforms.cols;
        let r0 = (i / uniforms.cols) * uniforms.rowsPerSlice;
        let r1 = min(r0 + uniforms.rowsPerSlice, uniforms.rows);
        var s = 0.0;
        for (var r = r0; r < r1; r = r + 1) {
          let k = r * uniforms.cols + c;
          s = s + ${term};
        }
        setOutputAtIndex(i, s);
      }`;
  }
}

/**
 * Σ over the rows of x (· y) (· LeakyReLU'(m): 1 where m > 0, α elsewhere), all viewed as [rows, cols],
 * written with `outShape` (size cols): one dispatch, or row slices and a second dispatch.
 */
export function columnSum(backend: WebGPUBackend, x: TensorInfo, y: TensorInfo | null, rows: number, cols: number, outShape: number[], mask: { m: TensorInfo; alpha: number } | null = null): TensorInfo {
  const inputs = [x, ...(y ? [y] : []), ...(mask ? [mask.m] : [])];
  // One uniform entry per field: tfjs aligns a multi-value entry as a vector (16 bytes for three values),
  // while the struct declares scalars.
  const u = (r: number, c: number, per: number) => [...[r, c, per].map((v) => ({ type: 'int32', data: [v] })), { type: 'float32', data: [mask?.alpha ?? 1] }];
  const slices = columnSumSlices(rows, cols);
  if (slices === 1) {
    return backend.runWebGPUProgram(new ColumnSumProgram(outShape, y != null, false, mask != null), inputs, 'float32', u(rows, cols, rows));
  }
  const per = Math.ceil(rows / slices);
  const partial = backend.runWebGPUProgram(new ColumnSumProgram([slices, cols], y != null, true, mask != null), inputs, 'float32', u(rows, cols, per));
  const out = backend.runWebGPUProgram(new ColumnSumProgram(outShape, false, false), [partial], 'float32', u(slices, cols, slices));
  backend.disposeData(partial.dataId);
  return out;
}

/** The number of leading axes `axes` covers ([0, 1, …, k − 1] in any order), or 0 if it is not that. */
function leadingAxes(axes: number[], rank: number): number {
  const sorted = [...axes].sort((a, b) => a - b);
  if (sorted.length === 0 || sorted.length >= rank) return 0;
  return sorted.every((a, i) => a === i) ? sorted.length : 0;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function columnSumKernel({ inputs, backend }: KernelArgs): TensorInfo {
  const { x, y } = inputs as { x: TensorInfo; y: TensorInfo };
  if (!tf.util.arraysEqual(x.shape, y.shape) || x.shape.length !== 2) throw new Error(`${COLUMN_SUM}: x [${x.shape}] and y [${y.shape}] must be the same [rows, cols]`);
  return columnSum(backend as WebGPUBackend, x, y, x.shape[0], x.shape[1], [x.shape[1]]);
}

function makeSumKernel(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs;
    const x = inputs.x as TensorInfo;
    const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const axes = tf.util.parseAxisParam(axis, x.shape);
    const k = leadingAxes(axes, x.shape.length);
    const size = tf.util.sizeFromShape(x.shape);
    if (x.dtype !== 'float32' || k === 0 || size === 0) return original(args);
    const rest = x.shape.slice(k);
    const cols = tf.util.sizeFromShape(rest);
    const outShape = keepDims ? [...x.shape.slice(0, k).map(() => 1), ...rest] : rest;
    return columnSum(backend as WebGPUBackend, x, null, size / cols, cols, outShape);
  };
}

/**
 * Multiply's gradient with respect to operand `mine` (broadcast to `outShape`) of `dy · other`: one
 * column sum of dy·other where `mine` broadcasts over the leading axes only and `other` is the full
 * shape, tfjs's formula otherwise.
 */
function multiplyOperandGrad(dy: tf.Tensor, mine: tf.Tensor, other: tf.Tensor, outShape: number[]): tf.Tensor {
  const res = () => tf.mul(dy, tf.cast(other, 'float32'));
  const axes = tf.backend_util.getReductionAxes(mine.shape, outShape);
  if (axes.length === 0) return res();
  const k = leadingAxes(axes, outShape.length);
  const cols = tf.util.sizeFromShape(outShape.slice(k));
  const fused =
    k > 0 && mine.size === cols && other.dtype === 'float32' && dy.dtype === 'float32' && tf.util.arraysEqual(other.shape, outShape) && tf.util.arraysEqual(dy.shape, outShape) && tf.getKernel(COLUMN_SUM, tf.getBackend()) != null;
  if (!fused) return tf.reshape(tf.sum(res(), axes), mine.shape);
  const flat = (t: tf.Tensor) => tf.reshape(t, [dy.size / cols, cols]);
  return tf.reshape(tf.engine().runKernel(COLUMN_SUM, { x: flat(dy), y: flat(other) }) as tf.Tensor, mine.shape);
}

export function installColumnSum(): Restore {
  const restoreSum = overrideKernel('Sum', 'webgpu', makeSumKernel(originalKernel('Sum', 'webgpu')));
  if (tf.getKernel(COLUMN_SUM, 'webgpu')) tf.unregisterKernel(COLUMN_SUM, 'webgpu');
  tf.registerKernel({ kernelName: COLUMN_SUM, backendName: 'webgpu', kernelFunc: columnSumKernel as unknown as tf.KernelFunc });
  const restoreColumnGrad = overrideGradient({
    kernelName: COLUMN_SUM,
    inputsToSave: ['x', 'y'],
    gradFunc: (g, saved) => {
      const [x, y] = saved as tf.Tensor[];
      const spread = tf.reshape(g as tf.Tensor, [1, x.shape[1] as number]);
      return { x: () => tf.mul(spread, y), y: () => tf.mul(spread, x) };
    },
  });
  const restoreMultiply = overrideGradient({
    kernelName: 'Multiply',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b] = saved as tf.Tensor[];
      const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
      return { a: () => multiplyOperandGrad(dy as tf.Tensor, a, b, outShape), b: () => multiplyOperandGrad(dy as tf.Tensor, b, a, outShape) };
    },
  });
  return () => {
    restoreMultiply();
    restoreColumnGrad();
    tf.unregisterKernel(COLUMN_SUM, 'webgpu');
    restoreSum();
  };
}
