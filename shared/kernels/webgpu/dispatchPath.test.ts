import { describe, expect, it } from 'vitest';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { packUniforms } from './dispatchPath.ts';

type Uniform = { type: string; data: number[] };

/** The bytes tfjs's own makeUniforms writes, captured through a stand-in backend (no GPU needed). */
function tfjsUniformBytes(list: Uniform[]): Uint8Array {
  let written: Uint8Array | null = null;
  const g = globalThis as Record<string, unknown>;
  const hadUsage = 'GPUBufferUsage' in g;
  if (!hadUsage) g.GPUBufferUsage = { COPY_DST: 8, UNIFORM: 64 };
  try {
    const fake = {
      bufferManager: { acquireBuffer: () => ({}) },
      queue: {
        writeBuffer: (_b: unknown, _o: number, data: ArrayBuffer, dataOffset: number, size: number) => {
          written = new Uint8Array(data.slice(dataOffset, dataOffset + size));
        },
      },
      uniformPendingDisposal: [] as unknown[],
    };
    (WebGPUBackend.prototype as unknown as { makeUniforms(this: unknown, u: Uniform[]): unknown }).makeUniforms.call(fake, list.map((u) => ({ ...u, data: [...u.data] })));
  } finally {
    if (!hadUsage) delete g.GPUBufferUsage;
  }
  return written!;
}

function ours(list: Uniform[]): Uint8Array {
  const buf = new ArrayBuffer(4096);
  new Uint8Array(buf).fill(0xab); // stale bytes must not leak into padding
  const n = packUniforms(list, buf);
  return new Uint8Array(buf.slice(0, n));
}

describe('dispatch path: uniform packing', () => {
  const base: Uniform[] = [
    { type: 'float32', data: [NaN] },
    { type: 'float32', data: [Infinity] },
  ];
  const cases: [string, Uniform[]][] = [
    ['a 4-D input and output with strides and size', [...base, { type: 'int32', data: [64, 32, 32, 16] }, { type: 'int32', data: [16384, 512, 16] }, { type: 'int32', data: [64, 16, 16, 32] }, { type: 'int32', data: [8192, 512, 32] }, { type: 'int32', data: [524288] }]],
    ['scalars, 1-D shapes and empty strides', [...base, { type: 'int32', data: [] }, { type: 'int32', data: [] }, { type: 'int32', data: [7] }, { type: 'int32', data: [] }, { type: 'int32', data: [7] }]],
    ['5-D and 6-D shapes (16-byte alignment after them)', [...base, { type: 'int32', data: [2, 3, 4, 5, 6] }, { type: 'int32', data: [360, 120, 30, 6] }, { type: 'int32', data: [1, 2, 3, 4, 5, 6] }, { type: 'int32', data: [720, 360, 120, 30, 6] }, { type: 'int32', data: [9] }, { type: 'float32', data: [0.2] }]],
    ['program-defined uint32 and float uniforms', [...base, { type: 'int32', data: [3, 5] }, { type: 'int32', data: [5] }, { type: 'uint32', data: [0xdeadbeef] }, { type: 'uint32', data: [4294967295] }, { type: 'uint32', data: [17] }, { type: 'float32', data: [-1.5] }, { type: 'float32', data: [3e-8] }]],
    ['2- and 3-vectors mixed', [...base, { type: 'int32', data: [4, 4, 4] }, { type: 'int32', data: [1, 2] }, { type: 'int32', data: [5] }, { type: 'int32', data: [6, 7] }, { type: 'float32', data: [1, 2, 3] }]],
  ];
  it.each(cases)('%s: byte for byte what tfjs writes', (_, list) => {
    const want = tfjsUniformBytes(list);
    const got = ours(list);
    expect(got.length).toBe(want.length);
    expect(Array.from(got)).toEqual(Array.from(want));
  });

  it('refuses a 7-D shape, as tfjs does', () => {
    expect(() => packUniforms([{ type: 'int32', data: [1, 2, 3, 4, 5, 6, 7] }], new ArrayBuffer(256))).toThrow(/7D/);
  });
});
