import * as tf from '@tensorflow/tfjs-core';
import { conv2dBackpropFilterNHWC } from '../cpu/conv2d.ts';
import { resizeNearestNeighborGradNHWC } from '../cpu/resizeNearestNeighborGrad.ts';

/**
 * Kernels the tfjs wasm backend (4.22) lacks for training, so GANs can train on wasm too:
 * Conv2DBackpropFilter (the documented blocker), UnsortedSegmentSum (the gradient of gather, used by
 * class embeddings), and a ResizeNearestNeighborGrad that is the exact adjoint of the forward resize.
 * They run as JS loops over views of the wasm heap; everything else keeps wasm's SIMD kernels.
 */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
}

let registered = false;

function register(kernelName: string, kernelFunc: (inputs: Record<string, tf.TensorInfo>, backend: WasmBackend, attrs: Record<string, unknown>) => tf.TensorInfo): void {
  if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({
    kernelName,
    backendName: 'wasm',
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as { inputs: Record<string, tf.TensorInfo>; backend: WasmBackend; attrs: Record<string, unknown> };
      return kernelFunc(inputs, backend, attrs);
    },
  });
}

export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  register('Conv2DBackpropFilter', ({ x, dy }, backend, attrs) => {
    if (attrs.dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter on wasm supports NHWC only');
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterShape as [number, number, number, number],
      attrs.strides as number | [number, number],
      1,
      attrs.pad as 'same' | 'valid',
      attrs.dimRoundingMode as 'floor' | undefined,
    );
    const dw = conv2dBackpropFilterNHWC(backend.typedArrayFromHeap(x) as Float32Array, x.shape, backend.typedArrayFromHeap(dy) as Float32Array, info);
    const out = backend.makeOutput(info.filterShape, 'float32');
    (backend.typedArrayFromHeap(out) as Float32Array).set(dw);
    return out;
  });
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
