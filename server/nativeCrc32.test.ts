import { describe, expect, it } from 'vitest';
import { crc32 } from '../shared/codec/crc32.ts';
import { decodeWeights, encodeWeights } from '../shared/codec/weightsCodec.ts';
import { Rng } from '../shared/rng.ts';
import { nativeCrc32Available, serverCrc32 } from './nativeCrc32.ts';

describe('serverCrc32 (native zlib.crc32)', () => {
  it('is native on this Node', () => {
    expect(nativeCrc32Available).toBe(true);
  });

  it('equals the isomorphic JS CRC-32 on known vectors and random data of every small length', () => {
    expect(serverCrc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(serverCrc32(new Uint8Array(0))).toBe(0);
    const rng = new Rng(5);
    const data = new Uint8Array(70_000);
    for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
    for (let n = 0; n < 40; n++) expect(serverCrc32(data.subarray(3, 3 + n))).toBe(crc32(data.subarray(3, 3 + n)));
    expect(serverCrc32(data)).toBe(crc32(data));
  });

  it('continues from a previous value like the JS one (checksums in pieces)', () => {
    const rng = new Rng(6);
    const data = new Uint8Array(100_000);
    for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
    for (const cut of [0, 1, 13, 65_536, 99_999]) {
      const joined = serverCrc32(data.subarray(cut), serverCrc32(data.subarray(0, cut)));
      expect(joined).toBe(crc32(data));
      expect(serverCrc32(data.subarray(cut), crc32(data.subarray(0, cut)))).toBe(crc32(data));
    }
  });

  it('writes and reads weights files interchangeably with the JS checksum', () => {
    const ws = { fingerprint: 'fp', tensors: [{ name: 'w', shape: [3, 50_000], data: new Float32Array(150_000).map((_, i) => Math.sin(i)) }] };
    const native = encodeWeights(ws, { k: 1 }, { crc32: serverCrc32 });
    expect(Array.from(native)).toEqual(Array.from(encodeWeights(ws, { k: 1 })));
    expect(decodeWeights(native, { crc32: serverCrc32, requireFinite: true }).weights.tensors[0].data).toEqual(ws.tensors[0].data);
    expect(decodeWeights(native).weights.tensors[0].data).toEqual(ws.tensors[0].data);
  });
});
