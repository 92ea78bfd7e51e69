import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendChoice } from '../shared/backend.ts';
import { registerMissingGradients } from '../shared/gan/gradients.ts';
import { registerFastCpuKernels } from '../shared/kernels/cpu/index.ts';

/**
 * tfjs in Node: WebGPU through Dawn when DAWN_NODE points at `dawn.node` (npm package `webgpu`),
 * otherwise the pure-JS cpu backend with this project's faster kernels.
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
    return initBackend(['webgpu', 'cpu']);
  }
  registerFastCpuKernels();
  const choice = await initBackend(['cpu']);
  registerFastCpuKernels();
  return choice;
}
