import * as tf from '@tensorflow/tfjs-core';

export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';

/** Why each backend in the preference order was or was not chosen, for the UI and the logs. */
export interface BackendChoice {
  backend: BackendName;
  attempts: { backend: BackendName; ok: boolean; reason?: string }[];
}

async function load(name: BackendName): Promise<void> {
  // Each backend registers itself with tfjs-core on import.
  if (name === 'webgpu') await import('@tensorflow/tfjs-backend-webgpu');
  else if (name === 'webgl') await import('@tensorflow/tfjs-backend-webgl');
  else if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  else await import('@tensorflow/tfjs-backend-cpu');
}

/**
 * Pick the first backend of `order` that loads and initialises. The wasm backend cannot train
 * convolutions (no Conv2DBackpropFilter), so it is for inference only. On webgpu the project's fast
 * path is enabled unless `opts.fastWebGPU` is false.
 */
export async function initBackend(order: BackendName[] = ['webgpu', 'webgl', 'cpu'], opts: { fastWebGPU?: boolean } = {}): Promise<BackendChoice> {
  const attempts: BackendChoice['attempts'] = [];
  for (const name of order) {
    try {
      if (name === 'webgpu' && !(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
        throw new Error('navigator.gpu is not available (no WebGPU in this environment)');
      }
      await load(name);
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
