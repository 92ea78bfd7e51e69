import * as tf from '@tensorflow/tfjs-core';
import { resizeNearestNeighborGradNHWC } from '../cpu/resizeNearestNeighborGrad.ts';
import { conv2dBackpropFilterWasm } from './conv2dBackpropFilter.ts';
import { conv2dBackpropInputWasm } from './conv2dBackpropInput.ts';
import { registerWasmKernel as register } from './wasmBackend.ts';

/**
 * Kernels for training on the tfjs wasm backend (4.22):
 * - Conv2DBackpropFilter, which wasm lacks (the documented blocker): im2col + wasm's SIMD matmul;
 * - Conv2DBackpropInput, which wasm has only as a scalar loop: a forward XNNPACK convolution of the
 *   dilated, padded output gradient with the flipped filter (~10× faster);
 * - UnsortedSegmentSum (the gradient of gather, used by class embeddings), and a
 *   ResizeNearestNeighborGrad that is the exact adjoint of the forward resize, as JS loops over views of
 *   the wasm heap.
 * Everything else keeps wasm's SIMD kernels.
 */
let registered = false;

function convInfo(xShape: readonly number[], filterShape: readonly number[], attrs: Record<string, unknown>, kernel: string): tf.backend_util.Conv2DInfo {
  if (attrs.dataFormat === 'NCHW') throw new Error(`${kernel} on wasm supports NHWC only`);
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as 'same' | 'valid',
    attrs.dimRoundingMode as 'floor' | undefined,
  );
}

export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  register('Conv2DBackpropFilter', ({ x, dy }, backend, attrs) =>
    conv2dBackpropFilterWasm(x, dy, backend, convInfo(x.shape, attrs.filterShape as number[], attrs, 'Conv2DBackpropFilter')),
  );
  register('Conv2DBackpropInput', ({ dy, filter }, backend, attrs) =>
    conv2dBackpropInputWasm(dy, filter, backend, convInfo(attrs.inputShape as number[], filter.shape, attrs, 'Conv2DBackpropInput')),
  );
  register('UnsortedSegmentSum', ({ x, segmentIds }, backend, attrs) => {
    const numSegments = attrs.numSegments as number;
    const inner = x.shape.slice(1).reduce((a, b) => a * b, 1);
    const xs = backend.typedArrayFromHeap(x) as Float32Array;
    const ids = backend.typedArrayFromHeap(segmentIds);
    const out = backend.makeOutput([numSegments, ...x.shape.slice(1)], x.dtype);
    const o = backend.typedArrayFromHeap(out) as Float32Array;
    o.fill(0);
    for (let i = 0; i < ids.length; i++) {
      const s = ids[i];
      if (s < 0 || s >= numSegments) continue;
      for (let j = 0; j < inner; j++) o[s * inner + j] += xs[i * inner + j];
    }
    return out;
  });
  register('ResizeNearestNeighborGrad', ({ images, dy }, backend, attrs) => {
    const dx = resizeNearestNeighborGradNHWC(backend.typedArrayFromHeap(dy) as Float32Array, images.shape, dy.shape, attrs.alignCorners as boolean, attrs.halfPixelCenters as boolean);
    const out = backend.makeOutput(images.shape, 'float32');
    (backend.typedArrayFromHeap(out) as Float32Array).set(dx);
    return out;
  });
}
