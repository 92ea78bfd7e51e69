import { initBackend, type BackendName, type WasmPaths } from '../shared/backend.ts';
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
  /** Newer browsers: the adapter is a fallback (software) adapter. */
  isFallbackAdapter?: boolean;
}
interface GpuLike {
  requestAdapter(opts?: { powerPreference?: string }): Promise<{ info?: GpuAdapterInfoLike; isFallbackAdapter?: boolean; requestAdapterInfo?: () => Promise<GpuAdapterInfoLike> } | null>;
}

/** Software renderers that imitate a graphics card on the processor, by the words their adapters report. */
const SOFTWARE_RENDERERS: { name: string; pattern: RegExp }[] = [
  { name: 'SwiftShader', pattern: /swiftshader|subzero/i },
  { name: 'llvmpipe', pattern: /llvmpipe/i },
  { name: 'lavapipe', pattern: /lavapipe/i },
  { name: 'softpipe', pattern: /softpipe/i },
  { name: 'WARP', pattern: /\bwarp\b|microsoft basic render/i },
];

/**
 * The software renderer behind a WebGPU adapter, or undefined for a real graphics card: a known name in
 * its vendor, architecture, device or description, else "a software renderer" when the browser marks the
 * adapter as a fallback adapter. Pure.
 */
export function softwareRenderer(adapter: BackendInfo['adapter'] | undefined): string | undefined {
  if (!adapter) return undefined;
  const words = [adapter.vendor, adapter.architecture, adapter.device, adapter.description].join(' ');
  const known = SOFTWARE_RENDERERS.find((r) => r.pattern.test(words));
  if (known) return known.name;
  return adapter.fallback ? 'a software renderer' : undefined;
}

/** The web app's order: the graphics card (WebGPU, then WebGL), then the processor (WebAssembly, then plain JavaScript). */
export const DEFAULT_BACKEND_ORDER: BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

export async function adapterInfo(): Promise<BackendInfo['adapter']> {
  const gpu = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (!gpu) return undefined;
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return undefined;
    const info = adapter.info ?? (adapter.requestAdapterInfo ? await adapter.requestAdapterInfo() : undefined);
    const fallback = info?.isFallbackAdapter === true || adapter.isFallbackAdapter === true;
    if (!info) return fallback ? { vendor: '', architecture: '', device: '', description: '', fallback } : undefined;
    return { vendor: info.vendor ?? '', architecture: info.architecture ?? '', device: info.device ?? '', description: info.description ?? '', ...(fallback ? { fallback } : {}) };
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
export async function chooseBackend(order: BackendName[] = DEFAULT_BACKEND_ORDER, wasmPaths?: WasmPaths): Promise<BackendInfo> {
  const hasWebGpuApi = !!(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu;
  const adapter = await adapterInfo();
  // On failure initBackend's message names each engine tried and why; the page says the rest (statusText.ts engineFailure).
  const choice = await initBackend(order, wasmPaths ? { wasmPaths, wasmThreads: false } : {});
  const attempts = choice.attempts.map((a) => (a.ok || !a.reason ? a : { ...a, reason: explainFailure(a.backend, a.reason, hasWebGpuApi, !!adapter) }));
  const software = choice.backend === 'webgpu' ? softwareRenderer(adapter) : undefined;
  return { backend: choice.backend, attempts, ...(adapter ? { adapter } : {}), ...(software ? { softwareRenderer: software } : {}) };
}
