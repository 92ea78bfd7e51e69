import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { ElementwiseProgram } from './elementwiseProgram.ts';
import { overrideGradient, type Restore } from './overrides.ts';

/**
 * Gradients of Mean and Sum that never build an array on the CPU. tfjs-core's own multiply the
 * reshaped dy by `ones(x.shape)`, and `ones` fills a typed array of x's size on the CPU and uploads it:
 * for the batch-norm moments of a 64 px batch-64 generator that is megabytes per step. Here the ones
 * come from `tf.fill`, a fill kernel on the GPU, and Mean divides the small dy by n before the
 * broadcast: (dy/n)·1 is the same float as (dy·1)/n, so results are bit-identical to tfjs's.
 *
 * Not a Tile (broadcastTo): its gradient slices dy once per repetition, which second-order
 * differentiation (WGAN-GP's penalty through layer norm) would hit. Multiply's gradient is one sum.
 * Gradients are global in tfjs, so these apply on every backend while the fast path is enabled.
 *
 * On webgpu (issue 19) the broadcast is one dispatch, FedganBroadcastDiv(dy, n) = dy/n spread over x's
 * shape, instead of a fill and a multiply (and, for Mean, a division before them): n is 1 for Sum, and
 * dy/n is the same float as tfjs's division. Its own gradient (second order) is Σ g over the broadcast
 * axes, divided by n: one reduction, as Multiply's gradient would take, without its elementwise product.
 */
function expandedShape(x: tf.Tensor, axis: unknown): { axes: number[]; expanded: number[] } {
  const axes = tf.util.parseAxisParam(axis as number | number[], x.shape);
  const expanded = x.shape.slice();
  for (const a of axes) expanded[a] = 1;
  return { axes, expanded };
}

export const BROADCAST_DIV = 'FedganBroadcastDiv';

interface BroadcastAttrs {
  shape: number[];
  n: number;
}

function broadcastKernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const { dy } = inputs as { dy: TensorInfo };
  const { shape, n } = attrs as unknown as BroadcastAttrs;
  const program = new ElementwiseProgram(['dy'], shape, n === 1 ? 'fedganBroadcast' : 'fedganBroadcastDiv', 'n : f32,', n === 1 ? 'getDyByOutputIndex(i)' : 'getDyByOutputIndex(i) / uniforms.n');
  return (backend as WebGPUBackend).runWebGPUProgram(program, [dy], 'float32', [{ type: 'float32', data: [n] }]);
}

/**
 * (dy reshaped to `expanded`) / n, broadcast to `shape`: one dispatch where the kernel is registered for
 * the current backend, tfjs's division and multiply by a GPU fill of ones otherwise (the fallback is what
 * this module did before, bit for bit).
 */
function broadcastDiv(dy: tf.Tensor, expanded: number[], shape: number[], n: number): tf.Tensor {
  const r = tf.reshape(dy, expanded);
  if (dy.dtype === 'float32' && tf.util.sizeFromShape(shape) > 0 && tf.getKernel(BROADCAST_DIV, tf.getBackend())) return tf.engine().runKernel(BROADCAST_DIV, { dy: r }, { shape, n } as unknown as tf.NamedAttrMap) as tf.Tensor;
  return tf.mul(n === 1 ? r : tf.div(r, n), tf.fill(shape, 1, 'float32'));
}

export function installReductionGradients(): Restore {
  if (tf.getKernel(BROADCAST_DIV, 'webgpu')) tf.unregisterKernel(BROADCAST_DIV, 'webgpu');
  tf.registerKernel({ kernelName: BROADCAST_DIV, backendName: 'webgpu', kernelFunc: broadcastKernel as unknown as tf.KernelFunc });
  const restoreGrad = overrideGradient({
    kernelName: BROADCAST_DIV,
    inputsToSave: ['dy'],
    gradFunc: (g, saved, attrs) => {
      const [dy] = saved;
      const { shape, n } = attrs as unknown as BroadcastAttrs;
      const axes = shape.map((_, i) => i).filter((i) => dy.shape[i] === 1 && shape[i] !== 1);
      return {
        dy: () => {
          const s = axes.length ? tf.reshape(tf.sum(g as tf.Tensor, axes), dy.shape) : (g as tf.Tensor);
          return n === 1 ? s : tf.div(s, n);
        },
      };
    },
  });
  const restoreMean = overrideGradient({
    kernelName: 'Mean',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { axes, expanded } = expandedShape(x, (attrs as { axis: unknown }).axis);
      const reduceSize = axes.reduce((n, a) => n * x.shape[a], 1);
      return { x: () => broadcastDiv(dy as tf.Tensor, expanded, x.shape, reduceSize) };
    },
  });
  const restoreSum = overrideGradient({
    kernelName: 'Sum',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { expanded } = expandedShape(x, (attrs as { axis: unknown }).axis);
      return { x: () => broadcastDiv(dy as tf.Tensor, expanded, x.shape, 1) };
    },
  });
  return () => {
    restoreMean();
    restoreSum();
    restoreGrad();
    tf.unregisterKernel(BROADCAST_DIV, 'webgpu');
  };
}
