import * as tf from '@tensorflow/tfjs-core';

export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';

/** Why each backend in the preference order was or was not chosen, for the UI and the logs. */
export interface BackendChoice {
  backend: BackendName;
  attempts: { backend: BackendName; ok: boolean; reason?: string }[];
}

/**
 * Where tfjs-backend-wasm finds its three `.wasm` binaries: a folder URL ending in "/", or a URL per file
 * name (`tfjs-backend-wasm.wasm`, `-simd.wasm`, `-threaded-simd.wasm`), e.g. what a bundler emitted. Node
 * finds them next to the package without it.
 */
export type WasmPaths = string | Record<string, string>;

export interface BackendOptions {
  /** webgpu: this project's fast path (default on). */
  fastWebGPU?: boolean;
  /** wasm: where its binaries are (see WasmPaths). */
  wasmPaths?: WasmPaths;
  /**
   * wasm: false keeps it on one thread (SIMD still). tfjs's threaded build starts its threads from a copy of
   * its own script, which breaks once a bundler has renamed that script's variables ("e is not defined").
   */
  wasmThreads?: boolean;
}

async function load(name: BackendName, opts: BackendOptions): Promise<void> {
  // Each backend registers itself with tfjs-core on import; this project's kernels then replace or add
  // some of its kernels, in every host alike (the web app's worker, Node, the server).
  if (name === 'webgpu') await import('@tensorflow/tfjs-backend-webgpu');
  else if (name === 'webgl') await import('@tensorflow/tfjs-backend-webgl');
  else if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (opts.wasmThreads === false) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    if (opts.wasmPaths !== undefined) wasm.setWasmPaths(opts.wasmPaths as Parameters<typeof wasm.setWasmPaths>[0]);
    (await import('./kernels/wasm/index.ts')).registerWasmTrainingKernels();
  } else {
    await import('@tensorflow/tfjs-backend-cpu');
    (await import('./kernels/cpu/index.ts')).registerFastCpuKernels();
  }
}

/**
 * Pick the first backend of `order` that loads and initialises. On cpu and wasm this project's kernels
 * are registered first (shared/kernels/cpu: faster convolutions and a correct ResizeNearestNeighborGrad,
 * which tfjs's gets wrong for batch > 1; shared/kernels/wasm: the convolution gradients wasm lacks), so
 * both can train. On webgpu the project's fast path is enabled unless `opts.fastWebGPU` is false.
 */
export async function initBackend(order: BackendName[] = ['webgpu', 'webgl', 'cpu'], opts: BackendOptions = {}): Promise<BackendChoice> {
  const attempts: BackendChoice['attempts'] = [];
  for (const name of order) {
    try {
      if (name === 'webgpu' && !(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
        throw new Error('navigator.gpu is not available (no WebGPU in this environment)');
      }
      await load(name, opts);
      // tfjs's webgpu factory again, asking for `subgroups` too where the adapter offers it (webgpuDevice.ts).
      if (name === 'webgpu') (await import('./kernels/webgpu/webgpuDevice.ts')).registerWebGPUBackend();
      if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') failed to initialise`);
      await tf.ready();
      // This project's WebGPU fast path (GPU-side random numbers, fused Adam, faster kernels): shared/kernels/webgpu.
      if (name === 'webgpu' && opts.fastWebGPU !== false) (await import('./kernels/webgpu/index.ts')).enableFastWebGPU();
      attempts.push({ backend: name, ok: true });
      return { backend: name, attempts };
    } catch (e) {
      attempts.push({ backend: name, ok: false, reason: e instanceof Error ? e.message : String(e) });
    }
  }
  throw new Error('no tfjs backend could be initialised: ' + attempts.map((a) => `${a.backend}: ${a.reason}`).join('; '));
}
