import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';

/**
 * GPU time per compute program, from timestamp queries written at the start and end of every compute
 * pass. While installed, tfjs submits after every dispatch (WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE = 1), so
 * each tfjs pass holds one dispatch; passes this project records itself (fused Adam) hold several and
 * are reported under their programs' joint label. Programs are named by their pipeline's label
 * (tfjs labels a pipeline with its program's class name). Figures are per pass, summed per label;
 * they leave out the gaps between passes, so they are a floor on the step's GPU time.
 */
export interface KernelTime {
  name: string;
  calls: number;
  ms: number;
}

export interface GpuTimeline {
  collect(): Promise<KernelTime[]>;
  uninstall(): void;
}

type AnyFn = (...args: never[]) => unknown;
const QUERIES_PER_SET = 4096;

export function installGpuTimeline(backend: WebGPUBackend): GpuTimeline | null {
  const device = backend.device;
  if (!device.features.has('timestamp-query')) return null;
  const flag = 'WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE';
  const oldBatch = tf.env().get(flag);
  tf.env().set(flag, 1);
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  backend.submitQueue();

  const sets: GPUQuerySet[] = [];
  let used = QUERIES_PER_SET;
  const passes: { set: number; index: number; labels: string[] }[] = [];
  const dev = device as unknown as Record<string, AnyFn>;
  const hadOwn = Object.prototype.hasOwnProperty.call(device, 'createCommandEncoder');
  const before = dev.createCommandEncoder;
  const create = before.bind(device) as AnyFn;
  dev.createCommandEncoder = ((desc: never) => {
    const enc = create(desc) as GPUCommandEncoder;
    const e = enc as unknown as Record<string, AnyFn>;
    const begin = e.beginComputePass.bind(enc) as AnyFn;
    e.beginComputePass = ((d?: GPUComputePassDescriptor) => {
      if (d?.timestampWrites) return begin(d as never);
      if (used + 2 > QUERIES_PER_SET) {
        sets.push(device.createQuerySet({ type: 'timestamp', count: QUERIES_PER_SET }));
        used = 0;
      }
      const entry = { set: sets.length - 1, index: used, labels: [] as string[] };
      used += 2;
      passes.push(entry);
      const pass = begin({ ...(d ?? {}), timestampWrites: { querySet: sets[entry.set], beginningOfPassWriteIndex: entry.index, endOfPassWriteIndex: entry.index + 1 } } as never) as GPUComputePassEncoder;
      const p = pass as unknown as Record<string, AnyFn>;
      const setPipeline = p.setPipeline.bind(pass) as AnyFn;
      p.setPipeline = ((pl: GPUComputePipeline) => {
        const label = pl.label || 'unlabelled';
        if (!entry.labels.includes(label)) entry.labels.push(label);
        return setPipeline(pl as never);
      }) as AnyFn;
      return pass;
    }) as AnyFn;
    return enc;
  }) as AnyFn;

  const restore = () => {
    if (hadOwn) dev.createCommandEncoder = before;
    else delete dev.createCommandEncoder;
    tf.env().set(flag, oldBatch);
  };

  return {
    async collect() {
      backend.ensureCommandEncoderReady();
      backend.endComputePassEncoder();
      backend.submitQueue();
      restore();
      const totals = new Map<string, KernelTime>();
      for (let s = 0; s < sets.length; s++) {
        const count = s === sets.length - 1 ? used : QUERIES_PER_SET;
        if (count === 0) continue;
        const bytes = count * 8;
        const resolve = device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
        const read = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        const enc = device.createCommandEncoder();
        enc.resolveQuerySet(sets[s], 0, count, resolve, 0);
        enc.copyBufferToBuffer(resolve, 0, read, 0, bytes);
        device.queue.submit([enc.finish()]);
        await read.mapAsync(GPUMapMode.READ);
        const ts = new BigUint64Array(read.getMappedRange().slice(0));
        read.unmap();
        resolve.destroy();
        read.destroy();
        for (const p of passes) {
          if (p.set !== s) continue;
          const t0 = ts[p.index];
          const t1 = ts[p.index + 1];
          if (t0 === 0n || t1 < t0) continue;
          const name = p.labels.length ? p.labels.join('+') : 'empty pass';
          const k = totals.get(name) ?? { name, calls: 0, ms: 0 };
          k.calls++;
          k.ms += Number(t1 - t0) / 1e6;
          totals.set(name, k);
        }
      }
      for (const qs of sets) qs.destroy();
      return [...totals.values()].sort((a, b) => b.ms - a.ms).map((k) => ({ ...k, ms: Math.round(k.ms * 1000) / 1000 }));
    },
    uninstall() {
      restore();
    },
  };
}
