import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { overrideGradient, type Restore } from './overrides.ts';

/**
 * The gradient of a row gather (an embedding lookup: GatherV2 on axis 0, e.g. the WGAN-GP critic's
 * projection table or the generator's label embedding) as one webgpu dispatch (issue 19):
 *
 *   FedganGatherRowsGrad(dy, indices) = dE[r, j] = Σ_{i : indices[i] = r} dy[i, j]
 *
 * one thread per table entry (r, j), looping over the n looked-up rows. tfjs's gradient runs two transposes
 * (identity permutations, still one dispatch each on webgpu), a fill and its segment-sum kernel with a
 * transpose of its own: five dispatches. Used where the table has at most 2^16 / n rows (class tables: a
 * thread's loop is n long, and the table's rows · n stay small), tfjs's gradient otherwise and on every
 * other backend. Its own gradient with respect to dy is the gather of the incoming gradient (tfjs ops;
 * never taken in a GAN step). Indices outside the table contribute nothing, as in tfjs's segment sum.
 */
export const GATHER_ROWS_GRAD = 'FedganGatherRowsGrad';

const MAX_WORK = 1 << 16;

class GatherRowsGradProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;
  variableNames = ['dy', 'indices'];
  uniforms = 'n : i32, cols : i32,';
  shaderKey = 'fedganGatherRowsGrad';
  constructor(rows: number, cols: number) {
    this.outputShape = [rows, cols];
    this.dispatchLayout = { x: [0, 1] };
    this.dispatch = [Math.ceil((rows * cols) / 64), 1, 1];
  }
  getUserCode(): string {
    return `
      fn main(i : i32) {
        if (i >= uniforms.size) { return; }
        let r = i / uniforms.cols;
        let j = i - r * uniforms.cols;
        var s = 0.0;
        for (var k = 0; k < uniforms.n; k = k + 1) {
          if (i32(indices[k]) == r) { s = s + dy[k * uniforms.cols + j]; }
        }
        setOutputAtIndex(i, s);
      }`;
  }
}

function kernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const { dy, indices } = inputs as { dy: TensorInfo; indices: TensorInfo };
  const { rows } = attrs as unknown as { rows: number };
  const [n, cols] = dy.shape as [number, number];
  if (dy.shape.length !== 2 || indices.shape.length !== 1 || indices.shape[0] !== n) throw new Error(`${GATHER_ROWS_GRAD}: dy [${dy.shape}] must be [n, cols] and indices [${indices.shape}] [n]`);
  // One uniform entry per scalar field (a multi-value entry is aligned as a vector).
  return (backend as WebGPUBackend).runWebGPUProgram(new GatherRowsGradProgram(rows, cols), [dy, indices], 'float32', [
    { type: 'int32', data: [n] },
    { type: 'int32', data: [cols] },
  ]);
}

export function installGatherGrad(): Restore {
  if (tf.getKernel(GATHER_ROWS_GRAD, 'webgpu')) tf.unregisterKernel(GATHER_ROWS_GRAD, 'webgpu');
  tf.registerKernel({ kernelName: GATHER_ROWS_GRAD, backendName: 'webgpu', kernelFunc: kernel as unknown as tf.KernelFunc });
  const original = tf.getGradient('GatherV2');
  if (!original) throw new Error('tfjs has no GatherV2 gradient registered (import its gradients first)');
  const restoreOwn = overrideGradient({
    kernelName: GATHER_ROWS_GRAD,
    inputsToSave: ['indices'],
    gradFunc: (g, saved) => {
      const [indices] = saved;
      return { dy: () => tf.gather(g as tf.Tensor, indices), indices: () => indices };
    },
  });
  const restoreGather = overrideGradient({
    kernelName: 'GatherV2',
    inputsToSave: ['x', 'indices'],
    gradFunc: (dy, saved, attrs) => {
      const [x, indices] = saved;
      const { axis, batchDims } = attrs as unknown as { axis: number; batchDims: number };
      const d = dy as tf.Tensor;
      const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
      const n = indices.size;
      const rows = x.shape[0];
      const fused =
        parsedAxis === 0 && (batchDims ?? 0) === 0 && x.rank >= 1 && d.dtype === 'float32' && indices.dtype === 'int32' && n > 0 && x.size > 0 && rows * n <= MAX_WORK && tf.getKernel(GATHER_ROWS_GRAD, tf.getBackend()) != null;
      if (!fused) return original.gradFunc(dy, saved, attrs);
      const cols = x.size / rows;
      return {
        x: () => tf.reshape(tf.engine().runKernel(GATHER_ROWS_GRAD, { dy: tf.reshape(d, [n, cols]), indices: tf.reshape(indices, [n]) }, { rows } as unknown as tf.NamedAttrMap) as tf.Tensor, x.shape),
        indices: () => indices,
      };
    },
  });
  return () => {
    restoreGather();
    restoreOwn();
    tf.unregisterKernel(GATHER_ROWS_GRAD, 'webgpu');
  };
}
