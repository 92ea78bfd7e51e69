import { initBackend, type BackendName } from '../shared/backend.ts';
import type { BackendInfo } from './api.ts';

/**
 * Choose the tfjs backend in the worker (WebGPU → WebGL → CPU by default) and describe the GPU adapter,
 * so the page can say what it will train on and why the faster options were not available.
 */

interface GpuAdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
}
interface GpuLike {
  requestAdapter(opts?: { powerPreference?: string }): Promise<{ info?: GpuAdapterInfoLike; requestAdapterInfo?: () => Promise<GpuAdapterInfoLike> } | null>;
}

export const DEFAULT_BACKEND_ORDER: BackendName[] = ['webgpu', 'webgl', 'cpu'];

export async function adapterInfo(): Promise<BackendInfo['adapter']> {
  const gpu = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (!gpu) return undefined;
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return undefined;
    const info = adapter.info ?? (adapter.requestAdapterInfo ? await adapter.requestAdapterInfo() : undefined);
    if (!info) return undefined;
    return { vendor: info.vendor ?? '', architecture: info.architecture ?? '', device: info.device ?? '', description: info.description ?? '' };
  } catch {
    return undefined;
  }
}

/** Initialise tfjs with the first backend of `order` that works. */
export async function chooseBackend(order: BackendName[] = DEFAULT_BACKEND_ORDER): Promise<BackendInfo> {
  const adapter = await adapterInfo();
  const choice = await initBackend(order);
  return { backend: choice.backend, attempts: choice.attempts, ...(adapter ? { adapter } : {}) };
}
