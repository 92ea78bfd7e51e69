/**
 * Counts what the host asks of a GPUDevice, by wrapping the methods of one device, its queue and the
 * command encoders and compute passes it hands out. Used by the benchmark's profile mode and by the
 * tests that assert a steady-state training step creates no buffers and uploads nothing.
 *
 * "Uploaded" bytes are the bytes the CPU hands to the GPU: `queue.writeBuffer` into storage buffers,
 * and buffers the CPU fills through `mappedAtCreation` (tfjs's staging path). Writes into uniform
 * buffers are counted apart, because every tfjs dispatch writes its shapes there.
 */
export interface GpuCounts {
  /** Compute dispatches (`dispatchWorkgroups` and its indirect form). */
  dispatches: number;
  /** `queue.submit` calls. */
  submits: number;
  /** Command buffers handed to `queue.submit`. */
  commandBuffers: number;
  /** `device.createBuffer` calls, and the bytes they allocated. */
  buffersCreated: number;
  bytesCreated: number;
  /** Bytes the CPU wrote into storage/staging buffers (tensor data going up). */
  bytesUploaded: number;
  /** Bytes the CPU wrote into uniform buffers. */
  uniformBytesWritten: number;
  /** `queue.writeBuffer` calls, of any kind. */
  writeBufferCalls: number;
  bindGroups: number;
  pipelines: number;
  shaderModules: number;
  /** Buffer-to-buffer copies recorded. */
  copies: number;
  /** `buffer.mapAsync` calls on buffers created while counting (readbacks). */
  mapAsyncs: number;
}

export function zeroCounts(): GpuCounts {
  return {
    dispatches: 0,
    submits: 0,
    commandBuffers: 0,
    buffersCreated: 0,
    bytesCreated: 0,
    bytesUploaded: 0,
    uniformBytesWritten: 0,
    writeBufferCalls: 0,
    bindGroups: 0,
    pipelines: 0,
    shaderModules: 0,
    copies: 0,
    mapAsyncs: 0,
  };
}

/** counts / n, field by field (per-step figures from a multi-step window). */
export function divideCounts(c: GpuCounts, n: number): GpuCounts {
  const out = zeroCounts();
  for (const k of Object.keys(out) as (keyof GpuCounts)[]) out[k] = c[k] / n;
  return out;
}

export interface GpuCounters {
  readonly counts: GpuCounts;
  reset(): void;
  /** A copy of the counts so far. */
  snapshot(): GpuCounts;
  /** Put the device's own methods back. */
  uninstall(): void;
}

type AnyFn = (...args: never[]) => unknown;

/** Replace `obj[name]` by `wrap(original)` as an own property; returns the undo. */
function patch<T extends object>(obj: T, name: string, wrap: (orig: AnyFn) => AnyFn): () => void {
  const rec = obj as unknown as Record<string, AnyFn>;
  const hadOwn = Object.prototype.hasOwnProperty.call(obj, name);
  const before = rec[name];
  const orig = before.bind(obj) as AnyFn;
  rec[name] = wrap(orig);
  return () => {
    if (hadOwn) rec[name] = before;
    else delete rec[name];
  };
}

const UNIFORM_USAGE = 0x40; // GPUBufferUsage.UNIFORM, spelled out so this file loads where the global is absent

export function installGpuCounters(device: GPUDevice): GpuCounters {
  const counts = zeroCounts();
  const undo: (() => void)[] = [];

  const wrapPass = (pass: GPUComputePassEncoder): GPUComputePassEncoder => {
    const p = pass as unknown as Record<string, AnyFn>;
    const dispatch = p.dispatchWorkgroups.bind(pass) as AnyFn;
    p.dispatchWorkgroups = ((...a: never[]) => {
      counts.dispatches++;
      return dispatch(...a);
    }) as AnyFn;
    const indirect = p.dispatchWorkgroupsIndirect.bind(pass) as AnyFn;
    p.dispatchWorkgroupsIndirect = ((...a: never[]) => {
      counts.dispatches++;
      return indirect(...a);
    }) as AnyFn;
    return pass;
  };
  const wrapEncoder = (enc: GPUCommandEncoder): GPUCommandEncoder => {
    const e = enc as unknown as Record<string, AnyFn>;
    const begin = e.beginComputePass.bind(enc) as AnyFn;
    e.beginComputePass = ((...a: never[]) => wrapPass(begin(...a) as GPUComputePassEncoder)) as AnyFn;
    const copy = e.copyBufferToBuffer.bind(enc) as AnyFn;
    e.copyBufferToBuffer = ((...a: never[]) => {
      counts.copies++;
      return copy(...a);
    }) as AnyFn;
    return enc;
  };

  undo.push(
    patch(device, 'createBuffer', (orig) => ((desc: GPUBufferDescriptor) => {
      counts.buffersCreated++;
      counts.bytesCreated += desc.size;
      if (desc.mappedAtCreation) counts.bytesUploaded += desc.size;
      const buf = orig(desc as never) as GPUBuffer;
      const b = buf as unknown as Record<string, AnyFn>;
      const map = b.mapAsync.bind(buf) as AnyFn;
      b.mapAsync = ((...a: never[]) => {
        counts.mapAsyncs++;
        return map(...a);
      }) as AnyFn;
      return buf;
    }) as AnyFn),
    patch(device, 'createBindGroup', (orig) => ((d: never) => (counts.bindGroups++, orig(d))) as AnyFn),
    patch(device, 'createComputePipeline', (orig) => ((d: never) => (counts.pipelines++, orig(d))) as AnyFn),
    patch(device, 'createComputePipelineAsync', (orig) => ((d: never) => (counts.pipelines++, orig(d))) as AnyFn),
    patch(device, 'createShaderModule', (orig) => ((d: never) => (counts.shaderModules++, orig(d))) as AnyFn),
    patch(device, 'createCommandEncoder', (orig) => ((d: never) => wrapEncoder(orig(d) as GPUCommandEncoder)) as AnyFn),
    patch(device.queue, 'submit', (orig) => ((cbs: GPUCommandBuffer[]) => {
      counts.submits++;
      counts.commandBuffers += cbs.length;
      return orig(cbs as never);
    }) as AnyFn),
    patch(device.queue, 'writeBuffer', (orig) => ((buffer: GPUBuffer, offset: number, data: BufferSource, dataOffset?: number, size?: number) => {
      counts.writeBufferCalls++;
      const bytesPerElement = ArrayBuffer.isView(data) && 'BYTES_PER_ELEMENT' in data ? (data as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT : 1;
      const total = size != null ? size * bytesPerElement : data.byteLength - (dataOffset ?? 0) * bytesPerElement;
      if (buffer.usage & UNIFORM_USAGE) counts.uniformBytesWritten += total;
      else counts.bytesUploaded += total;
      return (orig as (...a: unknown[]) => unknown)(buffer, offset, data, dataOffset, size);
    }) as AnyFn),
  );

  return {
    counts,
    reset() {
      Object.assign(counts, zeroCounts());
    },
    snapshot() {
      return { ...counts };
    },
    uninstall() {
      while (undo.length) undo.pop()!();
    },
  };
}
