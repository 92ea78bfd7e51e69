import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { Restore } from './overrides.ts';

/**
 * How a tfjs program is recorded, replacing the backend's `recordAndSubmit` (the step after the pipeline
 * is found). Stock tfjs, for every dispatch: packs the uniforms into a new ArrayBuffer, takes a uniform
 * buffer from the pool and writes it (`queue.writeBuffer`), asks the pipeline for its bind-group layout
 * and creates a bind group. On an H200 with Dawn, `createBindGroup` alone was 10 % of the host time of
 * an ACGAN step (16 % for WGAN-GP), and the step is host-bound. A training step issues the same
 * programs, with the same shapes, on the same pooled buffers every time, so here:
 *
 * - uniforms are packed into one reused scratch buffer, exactly as tfjs lays them out, and looked up by
 *   content: each distinct content is uploaded once, into a uniform buffer of its own that is never
 *   written again (shapes and sizes repeat every step);
 * - bind-group layouts are asked once per pipeline;
 * - bind groups are looked up by (pipeline, output buffer, input buffers, uniform buffer).
 *
 * Programs whose uniforms change on every call (the Philox generator's keys and counters) mark
 * themselves `volatileUniforms` and take the stock route for their uniforms: a pooled buffer written per
 * dispatch, and a bind group of their own. Both caches are bounded; on overflow they are dropped (not
 * destroyed: the GPU may still use them; the garbage collector frees them) and refill.
 *
 * Timed programs (tf.profile / tf.time), pixel programs (textures), programs still compiling in
 * parallel and bindings that are not plain buffers go through tfjs's own `recordAndSubmit`.
 */

interface ProgramUniform {
  type: string;
  data: ArrayLike<number>;
}

interface Program {
  pipeline?: GPUComputePipeline | Promise<GPUComputePipeline>;
  pixelsOpType?: unknown;
  size?: boolean;
  outputShape: number[];
  outputComponent?: number;
  dispatch: [number, number, number];
  /** Set by programs whose uniforms differ on every call: their uniforms are not cached. */
  volatileUniforms?: boolean;
}

interface TensorInfoLike {
  dataId: object;
  shape: number[];
}

interface BackendInternals {
  tensorMap: { get(id: object): { resource?: unknown } };
  commandQueueOwnedIds: WeakSet<object>;
  uniformPendingDisposal: GPUBuffer[];
  activeTimers: unknown;
  computePassEncoder: GPUComputePassEncoder | null;
  commandEncoder: GPUCommandEncoder;
  dispatchCountInPass: number;
  device: GPUDevice;
  queue: GPUQueue;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  bufferManager: { acquireBuffer(size: number, usage: number): GPUBuffer; freeBuffers: Map<string, GPUBuffer[]> };
  recordAndSubmit(program: Program, output: TensorInfoLike, inputs: TensorInfoLike[], programDefinedUniform?: ProgramUniform[]): void;
}

export interface DispatchStats {
  dispatches: number;
  /** Dispatches that went to tfjs's own recordAndSubmit. */
  fallbacks: number;
  uniformHits: number;
  uniformBuffers: number;
  bindGroupHits: number;
  bindGroupsCreated: number;
  /** Dispatches of programs with volatile uniforms (uncached uniforms and bind group). */
  volatile: number;
  /** Times the caches overflowed and were dropped. */
  resets: number;
}

const UNIFORM_USAGE = 0x40 | 0x8; // UNIFORM | COPY_DST
export const MAX_UNIFORMS = 8192;
export const MAX_BIND_GROUPS = 16384;

/**
 * tfjs's uniform layout (WebGPUBackend.makeUniforms, WGSL alignment rules) written into `words`
 * (a Uint32Array view over `out`); returns the byte length. `programUniform` entries with empty data
 * become [1], as in tfjs.
 */
export function packUniforms(programUniform: ProgramUniform[], out: ArrayBuffer): number {
  const i32 = new Int32Array(out);
  const u32 = new Uint32Array(out);
  const f32 = new Float32Array(out);
  let offset = 0;
  let preLength = 0;
  let maxAlign = 1;
  for (const d of programUniform) {
    const data = d.data.length === 0 ? [1] : d.data;
    const n = data.length;
    if (n < 1 || n > 6) throw new Error(`Unsupported ${n}D shape`);
    let align = n === 1 ? 4 : n === 2 ? 8 : 16;
    if (preLength === 5 || preLength === 6) align = 16;
    if (align > maxAlign) maxAlign = align;
    const end = offset;
    offset = Math.ceil(offset / align) * align;
    // Alignment gaps are part of the content key: zero them (tfjs's fresh ArrayBuffer is zeroed).
    for (let k = end >> 2; k < offset >> 2; k++) u32[k] = 0;
    preLength = n;
    const w = offset >> 2;
    if (offset + n * 4 > out.byteLength) throw new Error(`uniforms need more than ${out.byteLength} bytes`);
    if (d.type === 'int32') for (let k = 0; k < n; k++) i32[w + k] = data[k];
    else if (d.type === 'uint32') for (let k = 0; k < n; k++) u32[w + k] = data[k];
    else for (let k = 0; k < n; k++) f32[w + k] = data[k];
    offset += n * 4;
  }
  const total = Math.ceil(offset / maxAlign) * maxAlign;
  for (let k = offset >> 2; k < total >> 2; k++) u32[k] = 0;
  return total;
}

/** The stock uniform list of tfjs's recordAndSubmit (NaN, Infinity, shapes and strides, size, program's own). */
function programUniforms(program: Program, inputs: TensorInfoLike[], output: TensorInfoLike, extra?: ProgramUniform[]): ProgramUniform[] {
  const list: ProgramUniform[] = [
    { type: 'float32', data: [NaN] },
    { type: 'float32', data: [Infinity] },
  ];
  const push = (shape: number[]) => {
    list.push({ type: 'int32', data: shape });
    list.push({ type: 'int32', data: strides(shape) });
  };
  for (const t of inputs) push(t.shape);
  push(output.shape);
  if (program.size) {
    let size = 1;
    for (const s of program.outputShape) size *= s;
    list.push({ type: 'int32', data: [program.outputComponent ? size / program.outputComponent : size] });
  }
  if (extra) for (const u of extra) list.push(u);
  return list;
}

/** tfjs's util.computeStrides: row-major strides of all but the last axis. */
function strides(shape: number[]): number[] {
  const rank = shape.length;
  if (rank < 2) return [];
  const s = new Array<number>(rank - 1);
  s[rank - 2] = shape[rank - 1];
  for (let i = rank - 3; i >= 0; --i) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** The content key of `bytes` bytes of `buf` (two bytes per UTF-16 unit; lengths are multiples of 4). */
function contentKey(buf: ArrayBuffer, bytes: number): string {
  const u16 = new Uint16Array(buf, 0, bytes >> 1);
  let key = '';
  // String.fromCharCode over chunks: a short string whose hash covers every byte.
  for (let i = 0; i < u16.length; i += 4096) key += String.fromCharCode.apply(null, u16.subarray(i, i + 4096) as unknown as number[]);
  return key;
}

/** Small integer ids for GPU objects, for cache keys. */
export class Ids {
  private readonly ids = new WeakMap<object, number>();
  private next = 1;
  of(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) {
      id = this.next++;
      this.ids.set(o, id);
    }
    return id;
  }
}

/** Layouts per pipeline, and bind groups per (pipeline, buffers…): shared with this project's own passes (fused Adam). */
export class BindGroupCache {
  readonly ids = new Ids();
  private readonly layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
  private groups = new Map<string, GPUBindGroup>();
  hits = 0;
  created = 0;
  resets = 0;

  constructor(private readonly device: GPUDevice, private readonly max = MAX_BIND_GROUPS) {}

  layout(pipeline: GPUComputePipeline): GPUBindGroupLayout {
    let l = this.layouts.get(pipeline);
    if (!l) {
      l = pipeline.getBindGroupLayout(0);
      this.layouts.set(pipeline, l);
    }
    return l;
  }

  /** A bind group binding whole buffers at bindings 0…n−1 (the last may be a sized range: tfjs's uniform binding). */
  get(pipeline: GPUComputePipeline, buffers: GPUBuffer[], lastSize?: number): GPUBindGroup {
    let key = String(this.ids.of(pipeline));
    for (const b of buffers) key += ',' + this.ids.of(b);
    if (lastSize !== undefined) key += ':' + lastSize;
    let g = this.groups.get(key);
    if (g) {
      this.hits++;
      return g;
    }
    if (this.groups.size >= this.max) {
      this.groups = new Map();
      this.resets++;
    }
    const last = buffers.length - 1;
    g = this.device.createBindGroup({
      layout: this.layout(pipeline),
      entries: buffers.map((buffer, i) => ({ binding: i, resource: i === last && lastSize !== undefined ? { buffer, offset: 0, size: lastSize } : { buffer } })),
    });
    this.groups.set(key, g);
    this.created++;
    return g;
  }
}

export function installDispatchPath(backend: WebGPUBackend): { stats: DispatchStats; restore: Restore } {
  const be = backend as unknown as BackendInternals;
  const device = be.device;
  const stats: DispatchStats = { dispatches: 0, fallbacks: 0, uniformHits: 0, uniformBuffers: 0, bindGroupHits: 0, bindGroupsCreated: 0, volatile: 0, resets: 0 };
  const hadOwn = Object.prototype.hasOwnProperty.call(backend, 'recordAndSubmit');
  const original = be.recordAndSubmit;
  const scratch = new ArrayBuffer(4096);
  let uniforms = new Map<string, GPUBuffer>();
  const groups = new BindGroupCache(device);
  const buffers: GPUBuffer[] = [];

  const uniformBuffer = (bytes: number, volatile: boolean): GPUBuffer => {
    if (volatile) {
      const b = be.bufferManager.acquireBuffer(bytes, UNIFORM_USAGE);
      be.queue.writeBuffer(b, 0, scratch, 0, bytes);
      be.uniformPendingDisposal.push(b);
      return b;
    }
    const key = contentKey(scratch, bytes);
    let b = uniforms.get(key);
    if (b) {
      stats.uniformHits++;
      return b;
    }
    if (uniforms.size >= MAX_UNIFORMS) {
      uniforms = new Map();
      stats.resets++;
    }
    b = device.createBuffer({ size: bytes, usage: UNIFORM_USAGE, mappedAtCreation: true, label: 'fedgan uniforms' });
    new Uint8Array(b.getMappedRange()).set(new Uint8Array(scratch, 0, bytes));
    b.unmap();
    uniforms.set(key, b);
    stats.uniformBuffers++;
    return b;
  };

  const recordAndSubmit = function (this: BackendInternals, program: Program, output: TensorInfoLike, inputs: TensorInfoLike[], programDefinedUniform?: ProgramUniform[]): void {
    const pipeline = program.pipeline;
    if (this.activeTimers != null || program.pixelsOpType != null || pipeline == null || pipeline instanceof Promise) {
      stats.fallbacks++;
      return original.call(this, program, output, inputs, programDefinedUniform);
    }
    buffers.length = 0;
    const outRes = this.tensorMap.get(output.dataId).resource;
    if (!(outRes instanceof GPUBuffer)) {
      stats.fallbacks++;
      return original.call(this, program, output, inputs, programDefinedUniform);
    }
    buffers.push(outRes);
    for (const t of inputs) {
      const r = this.tensorMap.get(t.dataId).resource;
      if (!(r instanceof GPUBuffer)) {
        stats.fallbacks++;
        return original.call(this, program, output, inputs, programDefinedUniform);
      }
      buffers.push(r);
    }
    const bytes = packUniforms(programUniforms(program, inputs, output, programDefinedUniform), scratch);
    const volatile = program.volatileUniforms === true;
    const ub = uniformBuffer(bytes, volatile);
    buffers.push(ub);
    for (const t of inputs) this.commandQueueOwnedIds.add(t.dataId);
    this.commandQueueOwnedIds.add(output.dataId);
    let bindGroup: GPUBindGroup;
    if (volatile) {
      bindGroup = device.createBindGroup({
        layout: groups.layout(pipeline),
        entries: buffers.map((buffer, i) => ({ binding: i, resource: i === buffers.length - 1 ? { buffer, offset: 0, size: bytes } : { buffer } })),
      });
      stats.bindGroupsCreated++;
      stats.volatile++;
    } else {
      const created = groups.created;
      const resets = groups.resets;
      bindGroup = groups.get(pipeline, buffers, bytes);
      if (groups.created === created) stats.bindGroupHits++;
      else stats.bindGroupsCreated++;
      stats.resets += groups.resets - resets;
    }
    this.ensureCommandEncoderReady();
    if (!this.computePassEncoder) this.computePassEncoder = this.commandEncoder.beginComputePass({});
    const pass = this.computePassEncoder;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(program.dispatch[0], program.dispatch[1], program.dispatch[2]);
    this.dispatchCountInPass++;
    stats.dispatches++;
    if ((tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE') as number) <= this.dispatchCountInPass) {
      this.endComputePassEncoder();
      this.submitQueue();
    }
  };
  be.recordAndSubmit = recordAndSubmit;

  // Pooled buffers are handed out last-in first-out, and the order in which a step frees them is not the
  // order in which it took them: left alone, the step after next gets its buffers in a different
  // arrangement, for many steps before it repeats, and bind groups keyed by buffers would rarely be
  // found again. After every submit (the points where deferred frees happen) each free list is put in a
  // canonical order, so the same sequence of programs gets the same buffers every step.
  const hadSubmit = Object.prototype.hasOwnProperty.call(backend, 'submitQueue');
  const submitQueue = be.submitQueue;
  const byId = (a: GPUBuffer, b: GPUBuffer) => groups.ids.of(b) - groups.ids.of(a);
  be.submitQueue = function (this: BackendInternals): void {
    submitQueue.call(this);
    for (const list of this.bufferManager.freeBuffers.values()) if (list.length > 1) list.sort(byId);
  };
  return {
    stats,
    restore() {
      if (hadOwn) be.recordAndSubmit = original;
      else delete (be as Partial<BackendInternals>).recordAndSubmit;
      if (hadSubmit) be.submitQueue = submitQueue;
      else delete (be as Partial<BackendInternals>).submitQueue;
    },
  };
}
