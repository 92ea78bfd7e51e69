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

/** Why an engine could not start, in words staff can act on (the technical reason follows in brackets). */
export function explainFailure(backend: BackendName, reason: string, hasWebGpuApi: boolean, hasAdapter: boolean): string {
  if (backend === 'webgpu') {
    if (!hasWebGpuApi) return `this browser does not offer WebGPU; use a recent Chrome or Edge (${reason})`;
    if (!hasAdapter) return `the browser found no graphics card it may use for WebGPU: it may be blocked by the browser or hardware acceleration may be off (${reason})`;
  }
  if (backend === 'webgl') return `WebGL could not start: hardware acceleration may be off (${reason})`;
  return reason;
}

/** Initialise tfjs with the first backend of `order` that works; failures are explained for the page. */
export async function chooseBackend(order: BackendName[] = DEFAULT_BACKEND_ORDER): Promise<BackendInfo> {
  const hasWebGpuApi = !!(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu;
  const adapter = await adapterInfo();
  try {
    const choice = await initBackend(order);
    const attempts = choice.attempts.map((a) => (a.ok || !a.reason ? a : { ...a, reason: explainFailure(a.backend, a.reason, hasWebGpuApi, !!adapter) }));
    return { backend: choice.backend, attempts, ...(adapter ? { adapter } : {}) };
  } catch (e) {
    throw new Error(`no training engine could start in this browser: ${(e as Error).message}`);
  }
}
