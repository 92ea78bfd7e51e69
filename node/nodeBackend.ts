import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendChoice } from '../shared/backend.ts';
import { registerMissingGradients } from '../shared/gan/gradients.ts';

/**
 * tfjs in Node: WebGPU through Dawn when DAWN_NODE points at `dawn.node` (npm package `webgpu`; an error,
 * not a CPU fallback, when WebGPU does not start through it), otherwise wasm (SIMD kernels, plus this project's training kernels that wasm lacks; about 4× the
 * pure-JS cpu backend on a 32 px GAN step), falling back to cpu. `TFJS_BACKEND=cpu|wasm` forces one.
 */
export async function initNodeBackend(env: NodeJS.ProcessEnv = process.env): Promise<BackendChoice> {
  tf.env().set('PROD', true); // no "install tfjs-node" banner: it cannot be installed offline
  registerMissingGradients();
  const dawnPath = env.DAWN_NODE;
  if (dawnPath) {
    const require = createRequire(import.meta.url);
    const dawn = require(dawnPath) as { globals: Record<string, unknown>; create(flags: string[]): unknown };
    const g = globalThis as Record<string, unknown>;
    Object.assign(g, dawn.globals);
    g.window ??= globalThis; // tfjs-backend-webgpu registers only in a window or worker scope
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: dawn.create([]), userAgent: 'node' }, configurable: true, writable: true });
    // Asked for the GPU, a run must not quietly train on the CPU instead (hours instead of minutes, with
    // figures labelled as a GPU's): no fallback.
    try {
      return await initBackend(['webgpu']);
    } catch (e) {
      throw new Error(`DAWN_NODE is set (${dawnPath}) but WebGPU did not start through it: ${e instanceof Error ? e.message : String(e)}. Check the GPU driver and the Vulkan loader (libvulkan.so.1), or unset DAWN_NODE to train on the CPU`);
    }
  }
  const forced = env.TFJS_BACKEND;
  if (forced && forced !== 'cpu' && forced !== 'wasm') throw new Error(`TFJS_BACKEND must be cpu or wasm, got "${forced}"`);
  return initBackend(forced === 'cpu' || forced === 'wasm' ? [forced] : ['wasm', 'cpu']);
}
