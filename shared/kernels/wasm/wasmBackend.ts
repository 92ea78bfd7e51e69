import * as tf from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-wasm's BackendWasm that this project's wasm kernels use. */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /**
   * A view of a tensor's bytes on the wasm heap. Any allocation (makeOutput, another kernel) may grow
   * the heap and detach earlier views: take views again after allocating.
   */
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
  disposeData(dataId: tf.DataId): boolean;
}

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: WasmBackend; attrs: Record<string, unknown> };

/** Register (or replace) a kernel for the wasm backend. */
export function registerWasmKernel(kernelName: string, kernelFunc: (inputs: Record<string, tf.TensorInfo>, backend: WasmBackend, attrs: Record<string, unknown>) => tf.TensorInfo): void {
  if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({
    kernelName,
    backendName: 'wasm',
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as KernelArgs;
      return kernelFunc(inputs, backend, attrs);
    },
  });
}

/**
 * Run one of wasm's own (stock, SIMD/XNNPACK) kernels from inside a kernel of ours. The stock kernel is
 * looked up at call time, so this must not be used for a kernel name this project replaces.
 */
export function runStockWasmKernel(kernelName: string, inputs: Record<string, tf.TensorInfo>, backend: WasmBackend, attrs: Record<string, unknown>): tf.TensorInfo {
  const kernel = tf.getKernel(kernelName, 'wasm');
  if (!kernel) throw new Error(`the wasm backend has no ${kernelName} kernel`);
  const out = kernel.kernelFunc({ inputs, backend, attrs } as unknown as Parameters<tf.KernelFunc>[0]);
  if (Array.isArray(out)) throw new Error(`${kernelName} returned ${out.length} outputs, expected one`);
  return out;
}

/** Same bytes, another shape (what Reshape does on wasm: no copy). */
export function viewAs(t: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  const n = shape.reduce((a, b) => a * b, 1);
  const m = t.shape.reduce((a, b) => a * b, 1);
  if (n !== m) throw new Error(`cannot view shape [${t.shape}] as [${shape}]`);
  return { dataId: t.dataId, shape, dtype: t.dtype };
}
