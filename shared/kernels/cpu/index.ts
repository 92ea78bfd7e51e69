import * as tf from '@tensorflow/tfjs-core';
import { conv2dBackpropFilterNHWC, conv2dBackpropInputNHWC, conv2dNHWC } from './conv2d.ts';
import { resizeNearestNeighborGradNHWC } from './resizeNearestNeighborGrad.ts';

/** The slice of tfjs-backend-cpu's MathBackendCPU that the kernels use. */
interface CpuBackend {
  data: { get(id: tf.DataId): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

let registered = false;

type ConvAttrs = {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number;
  dataFormat: 'NHWC' | 'NCHW';
  dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape?: [number, number, number, number];
  inputShape?: [number, number, number, number];
};

function isUnitDilation(d: ConvAttrs['dilations']): boolean {
  return d === undefined || d === 1 || (Array.isArray(d) && d[0] === 1 && d[1] === 1);
}

function replaceKernel(
  kernelName: string,
  fast: (inputs: Record<string, tf.TensorInfo>, backend: CpuBackend, attrs: ConvAttrs) => tf.TensorInfo | null,
  applies: (attrs: ConvAttrs) => boolean = (attrs) => attrs.dataFormat !== 'NCHW' && isUnitDilation(attrs.dilations),
): void {
  const stock = tf.getKernel(kernelName, 'cpu');
  if (!stock) return; // the cpu backend is not loaded in this host
  tf.unregisterKernel(kernelName, 'cpu');
  tf.registerKernel({
    kernelName,
    backendName: 'cpu',
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as { inputs: Record<string, tf.TensorInfo>; backend: CpuBackend; attrs: ConvAttrs };
      const ok = applies(attrs) && Object.values(inputs).every((t) => t.dtype === 'float32');
      return (ok && fast(inputs, backend, attrs)) || (stock.kernelFunc(args as never) as tf.TensorInfo);
    },
  });
}

function info(xShape: readonly number[], filterShape: readonly number[], attrs: ConvAttrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/**
 * Replace the cpu backend's Conv2D, Conv2DBackpropInput and Conv2DBackpropFilter (NHWC, float32, no
 * dilation) with the typed-array loops above (other cases fall back to the stock kernels), and its
 * ResizeNearestNeighborGrad with a correct one (see resizeNearestNeighborGrad.ts). Idempotent.
 */
export function registerFastCpuKernels(): void {
  if (registered) return;
  registered = true;
  replaceKernel('Conv2D', ({ x, filter }, backend, attrs) => {
    const ci = info(x.shape, filter.shape, attrs);
    const out = conv2dNHWC(backend.data.get(x.dataId).values, x.shape, backend.data.get(filter.dataId).values, ci);
    return backend.makeTensorInfo(ci.outShape, 'float32', out);
  });
  replaceKernel('Conv2DBackpropInput', ({ dy, filter }, backend, attrs) => {
    const ci = info(attrs.inputShape!, filter.shape, attrs);
    const out = conv2dBackpropInputNHWC(backend.data.get(dy.dataId).values, backend.data.get(filter.dataId).values, ci);
    return backend.makeTensorInfo(ci.inShape, 'float32', out);
  });
  replaceKernel('Conv2DBackpropFilter', ({ x, dy }, backend, attrs) => {
    const ci = info(x.shape, attrs.filterShape!, attrs);
    const out = conv2dBackpropFilterNHWC(backend.data.get(x.dataId).values, x.shape, backend.data.get(dy.dataId).values, ci);
    return backend.makeTensorInfo(ci.filterShape, 'float32', out);
  });
  replaceKernel(
    'ResizeNearestNeighborGrad',
    ({ images, dy }, backend, attrs) => {
      const { alignCorners, halfPixelCenters } = attrs as unknown as { alignCorners: boolean; halfPixelCenters: boolean };
      const out = resizeNearestNeighborGradNHWC(backend.data.get(dy.dataId).values, images.shape, dy.shape, alignCorners, halfPixelCenters);
      return backend.makeTensorInfo(images.shape, 'float32', out);
    },
    () => true,
  );
}
