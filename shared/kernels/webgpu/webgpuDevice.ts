import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { Restore } from './overrides.ts';

/**
 * The webgpu backend's device, with the optional GPU features this project's kernels can use.
 *
 * tfjs-backend-webgpu 4.22 registers 'webgpu' with a factory that creates its device with
 * `timestamp-query` and `bgra8unorm-storage` only, so no shader can `enable subgroups;`.
 * `registerWebGPUBackend()` registers the same factory again (same adapter request, tfjs's required limits
 * plus the adapter's `maxStorageBuffersPerShaderStage`, which the fused batch norm + LeakyReLU's input
 * gradient needs), adding `subgroups` to the required features when the adapter offers it. It must run after
 * tfjs-backend-webgpu is imported and before the backend is first initialised (tf.setBackend('webgpu'));
 * once a webgpu backend exists it changes nothing and says so.
 *
 * WGSL wants every `enable …;` (and `requires`, and global `diagnostic(…);`) before any declaration, but
 * tfjs's makeShader puts its own prelude first and a program's code after it.
 * `installDirectiveHoisting(device)` wraps `device.createShaderModule` to move such directives to the top of
 * the module (the fast path installs it on enable and removes it on disable).
 *
 * Isomorphic: uses only `navigator.gpu` (browser, or Dawn's globals in Node).
 */

interface AdapterSubgroupInfo {
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

/** The adapter info of each device this factory created (tfjs keeps only vendor and architecture). */
const adapterInfos = new WeakMap<GPUDevice, AdapterSubgroupInfo>();

/** Features requested beyond tfjs's own when the adapter offers them. */
export const EXTRA_FEATURES = ['subgroups'] as const;

async function createBackend(): Promise<WebGPUBackend> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw new Error('navigator.gpu is not available');
  const adapter = await gpu.requestAdapter({ powerPreference: tf.env().get('WEBGPU_USE_LOW_POWER_GPU') ? 'low-power' : 'high-performance' });
  if (!adapter) throw new Error('navigator.gpu.requestAdapter() returned no adapter');
  const requiredFeatures: string[] = [];
  for (const f of ['timestamp-query', 'bgra8unorm-storage', ...EXTRA_FEATURES]) if (adapter.features.has(f)) requiredFeatures.push(f);
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: requiredFeatures as GPUFeatureName[],
    requiredLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      // Beyond tfjs's list: the fused batch norm + LeakyReLU's input gradient binds 9 (batchNormTrain.ts).
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  });
  const info = 'info' in adapter ? adapter.info : undefined;
  if (info) adapterInfos.set(device, info as unknown as AdapterSubgroupInfo);
  // Loaded here, not at the top: importing this file (the fast path does) must not load the backend.
  const { WebGPUBackend: Backend } = await import('@tensorflow/tfjs-backend-webgpu');
  return new Backend(device, info);
}

/**
 * Register this project's webgpu factory in place of tfjs's (priority 3, as tfjs's). Returns false, and
 * changes nothing, when there is no WebGPU, when a webgpu backend was already initialised (its device
 * cannot gain features afterwards) or while a backend is being initialised (tfjs would keep the result
 * of the factory it started with).
 */
export function registerWebGPUBackend(): boolean {
  if (!(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) return false;
  // Not tf.findBackend: it would start initialising the backend with the factory being replaced.
  const engine = tf.engine() as unknown as { registry: Record<string, unknown>; pendingBackendInit: unknown };
  if ('webgpu' in engine.registry || engine.pendingBackendInit != null) return false;
  if (tf.findBackendFactory('webgpu') != null) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', createBackend, 3);
  return true;
}

/**
 * The subgroup size kernels may rely on, or 0: the device has `subgroups` and the adapter's subgroup
 * size is fixed (subgroupMinSize == subgroupMaxSize), so a workgroup of that many invocations is one
 * subgroup's worth of lanes.
 */
export function fixedSubgroupSize(device: GPUDevice): number {
  if (!device.features.has('subgroups')) return 0;
  const info = adapterInfos.get(device) ?? ((device as unknown as { adapterInfo?: AdapterSubgroupInfo }).adapterInfo ?? {});
  const min = info.subgroupMinSize ?? 0;
  const max = info.subgroupMaxSize ?? 0;
  return min > 0 && min === max ? min : 0;
}

/**
 * Move WGSL's global directives (`enable …;`, `requires …;`, `diagnostic(…);`) to the top of a module,
 * each once, in the order first met. Only lines that hold nothing but a directive are moved (so an
 * attribute `@diagnostic(…)` or a comment stays where it is); code without directives is returned as is.
 */
export function hoistDirectives(code: string): string {
  const directive = /^[ \t]*(?:(?:enable|requires)[ \t]+[A-Za-z_][A-Za-z0-9_]*(?:[ \t]*,[ \t]*[A-Za-z_][A-Za-z0-9_]*)*[ \t]*,?|diagnostic[ \t]*\([ \t]*[A-Za-z_][A-Za-z0-9_]*[ \t]*,[ \t]*[A-Za-z_][A-Za-z0-9_.]*[ \t]*\))[ \t]*;[ \t]*$/;
  const lines = code.split('\n');
  const found: string[] = [];
  const rest: string[] = [];
  for (const line of lines) {
    if (directive.test(line)) {
      const d = line.trim().replace(/\s+/g, ' ').replace(/ ?([,;()]) ?/g, '$1').replace(/,/g, ', ');
      if (!found.includes(d)) found.push(d);
    } else rest.push(line);
  }
  if (found.length === 0) return code;
  return [...found, ...rest].join('\n');
}

/** Wrap `device.createShaderModule` so that every module's directives come first; the undo unwraps it. */
export function installDirectiveHoisting(device: GPUDevice): Restore {
  const hadOwn = Object.prototype.hasOwnProperty.call(device, 'createShaderModule');
  const original = device.createShaderModule;
  device.createShaderModule = function (this: GPUDevice, desc: GPUShaderModuleDescriptor): GPUShaderModule {
    return original.call(this, { ...desc, code: hoistDirectives(desc.code) });
  };
  return () => {
    if (hadOwn) device.createShaderModule = original;
    else delete (device as Partial<GPUDevice>).createShaderModule;
  };
}
