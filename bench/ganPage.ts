/**
 * Browser side of the GAN benchmark (bundled by bench/ganBrowser.ts): sets up tfjs on WebGPU and
 * exposes `__bench.run(args)`, which reports progress through the page's console.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import { runBench, type BenchCase, type BenchRow, type Variant } from './ganBench.ts';
import { registerWebGPUBackend } from '../shared/kernels/webgpu/webgpuDevice.ts';

// The same device as tfjs's, plus `subgroups` where the adapter offers it.
registerWebGPUBackend();

interface HostHooks {
  __cpuProfile?: (action: 'start' | 'stop', label: string) => Promise<void>;
}

async function run(args: { cases: BenchCase[]; variants: Variant[]; steps: number; warmup: number; profile: boolean }): Promise<{ device: string; rows: BenchRow[] }> {
  tf.env().set('PROD', true);
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not initialise in Chromium');
  await tf.ready();
  const adapter = await navigator.gpu.requestAdapter();
  const device = adapter ? `${adapter.info.vendor} ${adapter.info.architecture} ${adapter.info.description}`.trim() : 'unknown adapter';
  const hooks = globalThis as unknown as HostHooks;
  const rows = await runBench(args.cases, args.variants, {
    steps: args.steps,
    warmup: args.warmup,
    profile: args.profile,
    log: (l) => console.log(l),
    cpuProfile: hooks.__cpuProfile
      ? { start: () => hooks.__cpuProfile!('start', ''), stop: (label) => hooks.__cpuProfile!('stop', label) }
      : undefined,
  });
  return { device, rows };
}

Object.assign(globalThis, { __bench: { run }, __pageReady: true });
