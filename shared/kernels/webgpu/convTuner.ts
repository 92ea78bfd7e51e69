import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { convFilterGrad, convForward, convInputGrad, gemmDims, SUBGROUP_TILE_NAMES, subgroupTileConfigs, TILE_CONFIGS, tileConfig, type ConvGeometry, type ConvMode, type TileConfig } from './convGemm.ts';

/**
 * Which tile configuration (convGemm.ts) each convolution shape runs with.
 *
 * - A fixed heuristic decides by default, from the GEMM's dimensions only, so the same shape always runs
 *   the same program (deterministic; used wherever nothing was timed, e.g. on SwiftShader).
 * - `tuneConvolutions` times every configuration on the shapes the kernels have met (or given ones) on the
 *   current adapter, and keeps the fastest per shape. Choices are cached in memory per adapter and can
 *   be exported and imported as a plain JSON map (`exportTunings` / `importTunings`), for a caller that
 *   wants to persist them (localStorage, a file): the kernels themselves never time anything, since a
 *   tfjs kernel runs synchronously.
 * - `forceTile` pins one configuration for every shape (tests, ablations).
 * - Subgroup configurations (convGemm.ts, `sg…`) are candidates only while `setSubgroupLanes` holds a
 *   fixed subgroup size (the fast path sets it when the device has `subgroups` and the adapter's
 *   subgroup size is fixed). The heuristic never picks them (no GPU has timed them); a tuned, imported or
 *   forced `sg…` choice falls back to the heuristic's configuration while the feature check fails.
 */

export interface ConvShape {
  mode: ConvMode;
  g: ConvGeometry;
}

const choices = new Map<string, string>();
const seen = new Map<string, ConvShape>();
let forced: string | null = null;
let adapter = 'unknown';
let targetWorkgroups = 1024;
let software = false;
let lanes = 0;

export function shapeKey(mode: ConvMode, g: ConvGeometry): string {
  return `${mode}:${g.batch}x${g.inH}x${g.inW}x${g.inC}>${g.outH}x${g.outW}x${g.outC}:k${g.kH}x${g.kW}:s${g.strideH}x${g.strideW}:p${g.padTop},${g.padLeft}`;
}

/**
 * Identify the adapter the choices belong to, how many workgroups the filter gradient's slices should
 * fill, and whether it is a software rasteriser (SwiftShader: the heuristic then keeps to 64-thread
 * workgroups, which ran 2× faster than 256-thread ones there; measured in docs/performance.md).
 */
export function setTunerAdapter(key: string, workgroups: number, isSoftware = false): void {
  adapter = key;
  targetWorkgroups = Math.max(1, Math.floor(workgroups));
  software = isSoftware;
}

export function filterGradWorkgroups(): number {
  return targetWorkgroups;
}

export function adapterKeyOf(backend: WebGPUBackend): string {
  const info = (backend.adapterInfo ?? {}) as unknown as { vendor?: string; architecture?: string };
  return `${info.vendor ?? ''}/${info.architecture ?? ''}` || 'unknown';
}

/**
 * The fixed subgroup size the subgroup configurations may use (0: the feature check failed, or the
 * variant is switched off): enableFastWebGPU sets it from webgpuDevice.ts's fixedSubgroupSize.
 */
export function setSubgroupLanes(n: number): void {
  lanes = Number.isInteger(n) && n > 0 ? n : 0;
}

export function subgroupLanes(): number {
  return lanes;
}

/** The configurations that may run now: the shared-memory ones, and the subgroup ones when the feature check passed. */
export function candidateTiles(): TileConfig[] {
  return [...TILE_CONFIGS, ...subgroupTileConfigs(lanes)];
}

const knownName = (name: string) => TILE_CONFIGS.some((t) => t.name === name) || SUBGROUP_TILE_NAMES.includes(name);

/** A configuration by name for now: a subgroup one resolves to the current lane count, or null without it. */
function resolve(name: string): TileConfig | null {
  if (!SUBGROUP_TILE_NAMES.includes(name)) return tileConfig(name);
  return subgroupTileConfigs(lanes).find((t) => t.name === name) ?? null;
}

/**
 * Pin one configuration for every convolution (null: back to tuned choices and the heuristic). A subgroup
 * configuration is resolved when a convolution runs, so it applies only while the feature check passes.
 */
export function forceTile(name: string | null): void {
  if (name != null && !knownName(name)) tileConfig(name); // throws, naming the known configurations
  forced = name;
}

/**
 * The heuristic: the widest tile whose columns the output channels fill, then the largest tile that still
 * gives enough workgroups to fill a large GPU (the filter gradient gets its parallelism from slices).
 */
export function heuristicTile(mode: ConvMode, g: ConvGeometry): TileConfig {
  if (software) return tileConfig('t32x32');
  const { m, n } = gemmDims(mode, g);
  const wg = (bm: number, bn: number) => Math.ceil(m / bm) * Math.ceil(n / bn);
  if (n <= 16) return tileConfig('t128x16');
  if (mode === 'filterGrad') {
    if (m <= 32 || n <= 32) return tileConfig(m <= 32 ? 't32x32' : 't64x32');
    return tileConfig(m >= 128 ? 't128x64' : 't64x64');
  }
  if (n <= 32) return tileConfig(wg(64, 32) >= 64 ? 't64x32' : 't32x32');
  if (n >= 128 && wg(128, 128) >= 256) return tileConfig('t128x128');
  if (wg(128, 64) >= 256) return tileConfig('t128x64');
  if (wg(64, 64) >= 64) return tileConfig('t64x64');
  return tileConfig('t32x32');
}

/** The configuration a convolution runs with; records the shape for `tuneConvolutions`. */
export function chooseTile(mode: ConvMode, g: ConvGeometry): TileConfig {
  if (forced) return resolve(forced) ?? heuristicTile(mode, g);
  const key = shapeKey(mode, g);
  if (!seen.has(key)) seen.set(key, { mode, g });
  const c = choices.get(`${adapter}|${key}`);
  return (c ? resolve(c) : null) ?? heuristicTile(mode, g);
}

/** Shapes met since the start (or the last `clearSeenShapes`). */
export function seenShapes(): ConvShape[] {
  return [...seen.values()];
}

export function clearSeenShapes(): void {
  seen.clear();
}

/** Tuned choices of every adapter, `adapter|shape` → configuration name. */
export function exportTunings(): Record<string, string> {
  return Object.fromEntries(choices);
}

/** Load choices exported earlier; unknown configuration names are rejected with the entry named. */
export function importTunings(map: Record<string, string>): void {
  for (const [k, v] of Object.entries(map)) {
    if (!knownName(v)) throw new Error(`tuning entry ${k}: unknown tile configuration "${v}"`);
  }
  for (const [k, v] of Object.entries(map)) choices.set(k, v);
}

export function clearTunings(): void {
  choices.clear();
}

export interface TuneResult {
  shape: string;
  times: Record<string, number>;
  chosen: string;
}

/**
 * Time every configuration on each shape (wall time of `reps` dispatches after one warm-up, read back
 * once) and keep the fastest. Needs a real GPU to mean anything; on SwiftShader it still works but the
 * times are the CPU's. Returns what was measured.
 */
export async function tuneConvolutions(shapes: ConvShape[] = seenShapes(), reps = 5): Promise<TuneResult[]> {
  if (tf.getBackend() !== 'webgpu') throw new Error(`tuneConvolutions needs the webgpu backend, not ${tf.getBackend()}`);
  const backend = tf.backend() as WebGPUBackend;
  const out: TuneResult[] = [];
  for (const { mode, g } of shapes) {
    const inputs = tf.tidy(() => {
      const x = tf.randomNormal([g.batch, g.inH, g.inW, g.inC], 0, 1, 'float32', 1);
      const w = tf.randomNormal([g.kH, g.kW, g.inC, g.outC], 0, 0.1, 'float32', 2);
      const dy = tf.randomNormal([g.batch, g.outH, g.outW, g.outC], 0, 1, 'float32', 3);
      return { x: tf.keep(x), w: tf.keep(w), dy: tf.keep(dy) };
    });
    const run = (t: TileConfig) =>
      mode === 'forward'
        ? convForward(backend, inputs.x, inputs.w, null, g, t)
        : mode === 'inputGrad'
          ? convInputGrad(backend, inputs.dy, inputs.w, g, t)
          : convFilterGrad(backend, inputs.x, inputs.dy, g, t, targetWorkgroups);
    const times: Record<string, number> = {};
    for (const t of candidateTiles()) {
      const { m, n } = gemmDims(mode, g);
      if (t.wx * t.tn > 4 * Math.max(n, 16) || (m < t.wy * t.tm && t.name !== 't32x32')) continue; // tiles mostly empty
      const sync = async (info: tf.TensorInfo) => {
        const r = tf.engine().makeTensorFromTensorInfo(info);
        await r.data();
        r.dispose();
      };
      await sync(run(t));
      const t0 = performance.now();
      const results = [];
      for (let i = 0; i < reps; i++) results.push(run(t));
      await sync(results.pop()!);
      times[t.name] = (performance.now() - t0) / reps;
      for (const r of results) backend.disposeData(r.dataId);
    }
    tf.dispose([inputs.x, inputs.w, inputs.dy]);
    const chosen = Object.entries(times).sort((a, b) => a[1] - b[1])[0]?.[0] ?? heuristicTile(mode, g).name;
    const key = shapeKey(mode, g);
    choices.set(`${adapter}|${key}`, chosen);
    out.push({ shape: key, times, chosen });
  }
  return out;
}
