import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { Restore } from './overrides.ts';

/**
 * How tensor data made on the CPU reaches the GPU, replacing the backend's `uploadToGPU`:
 *
 * - Small constants (the scalars tfjs makes from plain numbers in `tf.mul(x, 0.5)`, the loss seed of a
 *   gradient, `tf.zeros([3])`…) and arrays of one repeated value up to 64 KiB (the zeros tfjs's engine
 *   makes on the CPU for outputs that receive no gradient) are uploaded once per distinct content and
 *   shared read-only by every tensor holding it, so a steady-state step uploads none of them. Shared buffers are marked
 *   `external`, so disposing a tensor does not hand the buffer back to the pool; nothing in tfjs writes
 *   into an input's buffer, and this project's in-place kernels (fused Adam) skip external buffers.
 * - Everything else goes through `queue.writeBuffer` into a pooled buffer, instead of stock tfjs's
 *   fresh mapped staging buffer per upload (a new GPU buffer every time).
 *
 * A pooled buffer is never referenced by commands still being recorded (tfjs defers releasing buffers
 * used since the last submit until that submit), so writing it from the queue is ordered correctly.
 */
const SMALL_BYTES = 64;
/** Arrays of one repeated value (zeros the engine makes for unused gradients, fills) up to this size are shared too. */
const FILL_BYTES = 1 << 16;
const MAX_CONSTANTS = 4096;
const STORAGE_USAGE = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST, as tfjs allocates tensor buffers

interface TensorData {
  values: ArrayLike<number> | null;
  dtype: string;
  shape: number[];
  resource?: unknown;
  external?: boolean;
  refCount: number;
}

export interface UploadStats {
  constantHits: number;
  constantBuffers: number;
  uploads: number;
  bytes: number;
}

/** The sharing key of a constant worth sharing, or null. */
function constantKey(dtype: string, data: Float32Array | Int32Array): string | null {
  const words = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const t = dtype === 'float32' ? 'f' : 'i';
  if (data.byteLength <= SMALL_BYTES) return `${t}:${Array.from(words).join(',')}`;
  if (data.byteLength > FILL_BYTES) return null;
  const first = words[0];
  for (let i = 1; i < words.length; i++) if (words[i] !== first) return null;
  return `${t}:fill:${first}:${words.length}`;
}

export function installUploadPath(backend: WebGPUBackend): { stats: UploadStats; restore: Restore } {
  const stats: UploadStats = { constantHits: 0, constantBuffers: 0, uploads: 0, bytes: 0 };
  const constants = new Map<string, GPUBuffer>();
  const device = backend.device;
  const tensorMap = backend.tensorMap as unknown as { get(id: object): TensorData };
  const original = backend.uploadToGPU;

  const typed = (d: TensorData): Float32Array | Int32Array => {
    const v = d.values!;
    if (d.dtype === 'int32' || d.dtype === 'bool') return v instanceof Int32Array ? v : Int32Array.from(v);
    return v instanceof Float32Array ? v : Float32Array.from(v);
  };

  backend.uploadToGPU = function uploadToGPU(dataId: object): void {
    const d = tensorMap.get(dataId);
    if (d.resource != null) return;
    if (d.values == null || (d.dtype !== 'float32' && d.dtype !== 'int32' && d.dtype !== 'bool')) {
      original.call(backend, dataId);
      return;
    }
    const data = typed(d);
    const bytes = data.byteLength;
    if (bytes === 0) {
      original.call(backend, dataId);
      return;
    }
    const key = constantKey(d.dtype, data);
    if (key) {
      let buf = constants.get(key);
      if (buf) stats.constantHits++;
      else if (constants.size < MAX_CONSTANTS) {
        buf = device.createBuffer({ size: Math.max(bytes, 4), usage: STORAGE_USAGE });
        device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, bytes);
        constants.set(key, buf);
        stats.constantBuffers++;
      }
      if (buf) {
        d.resource = buf;
        d.external = true;
        return;
      }
    }
    const buf = backend.bufferManager.acquireBuffer(bytes, STORAGE_USAGE);
    device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, bytes);
    d.resource = buf;
    d.values = null;
    stats.uploads++;
    stats.bytes += bytes;
  };

  return {
    stats,
    restore() {
      backend.uploadToGPU = original;
      // Tensors still holding a shared constant keep working: the buffers are left alive (a few bytes each).
    },
  };
}
