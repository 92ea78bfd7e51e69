import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.ts';
import type { WeightSet } from '../weights.ts';
import { crc32 } from './crc32.ts';
import {
  assertFinite,
  decodeWeights,
  encodedSize,
  encodeWeights,
  findNonFinite,
  WeightsCodecError,
  type WeightsCodecErrorCode,
} from './weightsCodec.ts';

function randomWeights(seed: number, fingerprint = 'abcdef0123456789'): WeightSet {
  const rng = new Rng(seed);
  const layout = [
    { name: 'g/dense/kernel', shape: [7, 5] },
    { name: 'g/bn1/gamma', shape: [5] },
    { name: 'g/empty', shape: [0, 3] },
    { name: 'g/scalar', shape: [] },
    { name: 'd/conv1/kernel', shape: [3, 3, 2, 4] },
  ];
  return {
    fingerprint,
    tensors: layout.map(({ name, shape }) => {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < data.length; i++) data[i] = rng.normal() * 3;
      return { name, shape, data };
    }),
  };
}

function bits(f: Float32Array): number[] {
  return Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
}

function expectCode(fn: () => unknown, code: WeightsCodecErrorCode, message?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WeightsCodecError);
    expect((e as WeightsCodecError).code).toBe(code);
    if (message) expect((e as Error).message).toMatch(message);
    return;
  }
  throw new Error(`expected a WeightsCodecError with code ${code}`);
}

/** Recomputes the trailing CRC so that a deliberately edited file passes the checksum. */
function reseal(bytes: Uint8Array): Uint8Array {
  const end = bytes.length - 4;
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(end, crc32(bytes.subarray(0, end)), true);
  return bytes;
}

describe('encodeWeights / decodeWeights round trip', () => {
  it('is bit-exact for random data and preserves names, shapes, order and fingerprint', () => {
    const ws = randomWeights(1);
    const { weights } = decodeWeights(encodeWeights(ws));
    expect(weights.fingerprint).toBe(ws.fingerprint);
    expect(weights.tensors.map((t) => [t.name, t.shape])).toEqual(ws.tensors.map((t) => [t.name, t.shape]));
    weights.tensors.forEach((t, i) => expect(bits(t.data)).toEqual(bits(ws.tensors[i].data)));
  });

  it('preserves -0, denormals, extremes, ±Infinity and NaN payloads bit for bit', () => {
    const patterns = [
      0x80000000, // -0
      0x00000001, // smallest positive denormal
      0x807fffff, // largest negative denormal
      0x7f7fffff, // largest finite
      0x7f800000, // +Infinity
      0xff800000, // -Infinity
      0x7fc00000, // quiet NaN
      0x7fc12345, // quiet NaN with payload
      0xffc00001, // negative NaN with payload
      0x7f800001, // signalling NaN
    ];
    const data = new Float32Array(new Uint32Array(patterns).buffer);
    const ws: WeightSet = { fingerprint: 'x', tensors: [{ name: 'special', shape: [patterns.length], data }] };
    for (const copy of [false, true]) {
      const { weights } = decodeWeights(encodeWeights(ws), { copy });
      expect(bits(weights.tensors[0].data)).toEqual(patterns);
    }
  });

  it('writes the documented layout: magic, version, flags, header length, aligned data, little-endian values, CRC', () => {
    const data = new Float32Array([1.5, -2]);
    const bytes = encodeWeights({ fingerprint: 'fp', tensors: [{ name: 'w', shape: [2], data }] }, { round: 3 });
    const view = new DataView(bytes.buffer);
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('FGW1');
    expect(view.getUint16(4, true)).toBe(1);
    expect(view.getUint16(6, true)).toBe(0);
    const headerLength = view.getUint32(8, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength)));
    expect(header).toEqual({ fingerprint: 'fp', tensors: [{ name: 'w', shape: [2] }], meta: { round: 3 } });
    const dataOffset = Math.ceil((12 + headerLength) / 4) * 4;
    expect(bytes.length).toBe(dataOffset + 8 + 4);
    for (let i = 12 + headerLength; i < dataOffset; i++) expect(bytes[i]).toBe(0);
    expect(view.getFloat32(dataOffset, true)).toBe(1.5);
    expect(view.getFloat32(dataOffset + 4, true)).toBe(-2);
    expect(view.getUint32(dataOffset + 8, true)).toBe(crc32(bytes.subarray(0, dataOffset + 8)));
  });

  it('never stores values as JSON numbers', () => {
    const ws: WeightSet = { fingerprint: 'fp', tensors: [{ name: 'w', shape: [1], data: new Float32Array([0.1]) }] };
    const text = new TextDecoder().decode(encodeWeights(ws));
    expect(text).not.toContain('0.1');
  });

  it('round-trips metadata', () => {
    const meta = { round: 12, client: 'hôpital-é', examples: 1500, nested: { lr: 2e-4, tags: ['a', 'b'] }, ok: true };
    expect(decodeWeights(encodeWeights(randomWeights(2), meta)).meta).toEqual(meta);
    expect(decodeWeights(encodeWeights(randomWeights(2))).meta).toEqual({});
  });

  it('reports the exact encoded size', () => {
    const ws = randomWeights(3);
    expect(encodedSize(ws)).toBe(encodeWeights(ws).length);
    expect(encodedSize(ws, { round: 7, note: 'x'.repeat(5) })).toBe(encodeWeights(ws, { round: 7, note: 'xxxxx' }).length);
  });

  it('returns zero-copy views when aligned, and copies when asked or when misaligned', () => {
    const bytes = encodeWeights(randomWeights(4));
    const view = decodeWeights(bytes).weights.tensors[0].data;
    expect(view.buffer).toBe(bytes.buffer);
    const copied = decodeWeights(bytes, { copy: true }).weights.tensors[0].data;
    expect(copied.buffer).not.toBe(bytes.buffer);

    // Same file at an odd offset inside a bigger buffer: a Float32Array view is impossible.
    const holder = new Uint8Array(bytes.length + 1);
    holder.set(bytes, 1);
    const misaligned = holder.subarray(1);
    const { weights } = decodeWeights(misaligned);
    expect(weights.tensors[0].data.buffer).not.toBe(holder.buffer);
    expect(bits(weights.tensors[0].data)).toEqual(bits(view));
  });
});

describe('decodeWeights refuses bad input', () => {
  const ws = randomWeights(5, '1111222233334444');
  const good = encodeWeights(ws, { round: 1 });

  it('refuses weights of another architecture', () => {
    expectCode(
      () => decodeWeights(good, { expectedFingerprint: 'aaaabbbbccccdddd' }),
      'fingerprint-mismatch',
      /fingerprint 1111222233334444 does not match this model's aaaabbbbccccdddd \(weights come from another architecture\)/,
    );
    expect(decodeWeights(good, { expectedFingerprint: '1111222233334444' }).weights.fingerprint).toBe('1111222233334444');
  });

  it('refuses weights whose layout differs from the expected shapes', () => {
    const shapes = ws.tensors.map((t) => ({ name: t.name, shape: [...t.shape] }));
    expect(() => decodeWeights(good, { expectedShapes: shapes })).not.toThrow();
    expectCode(() => decodeWeights(good, { expectedShapes: shapes.slice(0, 2) }), 'shape-mismatch', /5 tensors where 2/);
    shapes[1].shape = [6];
    expectCode(() => decodeWeights(good, { expectedShapes: shapes }), 'shape-mismatch', /g\/bn1\/gamma \[5\] but g\/bn1\/gamma \[6\]/);
  });

  it('detects a flipped data byte with the checksum', () => {
    const bad = good.slice();
    bad[bad.length - 10] ^= 0x01;
    expectCode(() => decodeWeights(bad), 'checksum', /checksum mismatch.*corrupted/);
  });

  it('detects a flipped checksum byte', () => {
    const bad = good.slice();
    bad[bad.length - 1] ^= 0x80;
    expectCode(() => decodeWeights(bad), 'checksum');
  });

  it('reports corruption of the header as a checksum error', () => {
    const bad = good.slice();
    bad[13] = 0xff; // invalid UTF-8 in the JSON header
    expectCode(() => decodeWeights(bad), 'checksum', /header is not valid UTF-8 JSON/);
  });

  it('refuses truncated files at every length', () => {
    for (const n of [0, 3, 4, 11, 15, 40, good.length - 5, good.length - 1]) {
      expectCode(() => decodeWeights(good.subarray(0, n)), 'truncated', /truncated/);
    }
  });

  it('refuses trailing garbage', () => {
    const longer = new Uint8Array(good.length + 4);
    longer.set(good);
    expectCode(() => decodeWeights(longer), 'bad-header', /4 unexpected trailing bytes/);
  });

  it('refuses a bad magic and names what it found', () => {
    const bad = good.slice();
    bad.set([0x50, 0x4b, 0x03, 0x04]);
    expectCode(() => decodeWeights(bad), 'bad-magic', /expected magic "FGW1", found "PK\.\." \(50 4b 03 04\)/);
    expectCode(() => decodeWeights(new TextEncoder().encode('{"fingerprint": 1}')), 'bad-magic');
  });

  it('refuses unknown versions and flags', () => {
    const v2 = good.slice();
    new DataView(v2.buffer).setUint16(4, 2, true);
    expectCode(() => decodeWeights(v2), 'bad-version', /version 2 is not supported/);
    const flagged = good.slice();
    new DataView(flagged.buffer).setUint16(6, 4, true);
    expectCode(() => decodeWeights(flagged), 'bad-version', /flags 0x0004/);
  });

  it('refuses a well-sealed but invalid header', () => {
    const text = JSON.stringify({ fingerprint: 'fp', tensors: [{ name: 'w', shape: [-1] }], meta: {} });
    const header = new TextEncoder().encode(text);
    const dataOffset = Math.ceil((12 + header.length) / 4) * 4;
    const bytes = new Uint8Array(dataOffset + 4);
    bytes.set(new TextEncoder().encode('FGW1'));
    const view = new DataView(bytes.buffer);
    view.setUint16(4, 1, true);
    view.setUint32(8, header.length, true);
    bytes.set(header, 12);
    expectCode(() => decodeWeights(reseal(bytes)), 'bad-header', /tensor w has an invalid "shape"/);
  });

  it('refuses non-finite values only when asked to', () => {
    const withNaN = randomWeights(6);
    withNaN.tensors[4].data[17] = Number.NaN;
    const bytes = encodeWeights(withNaN);
    expect(() => decodeWeights(bytes)).not.toThrow();
    expectCode(() => decodeWeights(bytes, { requireFinite: true }), 'non-finite', /d\/conv1\/kernel holds NaN at index 17/);
  });
});

describe('encodeWeights refuses inconsistent weight sets', () => {
  it('refuses data whose length does not match the shape', () => {
    const ws: WeightSet = { fingerprint: 'fp', tensors: [{ name: 'w', shape: [2, 3], data: new Float32Array(5) }] };
    expectCode(() => encodeWeights(ws), 'shape-mismatch', /w: shape \[2, 3\] needs 6 values but data has 5/);
  });

  it('refuses duplicate names and unserialisable meta', () => {
    const t = { name: 'w', shape: [1], data: new Float32Array(1) };
    expectCode(() => encodeWeights({ fingerprint: 'fp', tensors: [t, t] }), 'bad-header', /duplicate tensor name w/);
    expectCode(() => encodeWeights({ fingerprint: 'fp', tensors: [t] }, { big: 1n }), 'bad-header', /not JSON-serialisable/);
  });
});

describe('assertFinite / findNonFinite', () => {
  it('accepts finite weights, including -0 and denormals', () => {
    const ws: WeightSet = { fingerprint: 'fp', tensors: [{ name: 'w', shape: [3], data: new Float32Array([-0, 1e-45, 3e38]) }] };
    expect(() => assertFinite(ws)).not.toThrow();
    expect(findNonFinite(ws)).toBeNull();
  });

  it('finds a non-finite value at every position, including the unrolled loop tail', () => {
    for (const length of [1, 4, 7, 9]) {
      for (let at = 0; at < length; at++) {
        const data = new Float32Array(length).fill(1);
        data[at] = at % 2 ? Infinity : Number.NaN;
        const bad = findNonFinite({ fingerprint: 'fp', tensors: [{ name: 't', shape: [length], data }] });
        expect(bad?.index).toBe(at);
      }
    }
  });

  it('names the first tensor with NaN/Infinity and the index', () => {
    const ws = randomWeights(7);
    ws.tensors[1].data[3] = -Infinity;
    ws.tensors[4].data[0] = Number.NaN;
    expect(findNonFinite(ws)).toEqual({ tensor: 'g/bn1/gamma', index: 3, value: -Infinity, countInTensor: 1 });
    expectCode(() => assertFinite(ws), 'non-finite', /^tensor g\/bn1\/gamma holds -Infinity at index 3 of 5 \(1 non-finite value in that tensor\)/);
  });
});

describe('injected checksum', () => {
  /** A CRC-32 that delegates to the JS one and counts the bytes it was given. */
  function countingCrc(): { fn: (b: Uint8Array, c?: number) => number; bytes: () => number } {
    let n = 0;
    return {
      fn: (b, c) => {
        n += b.length;
        return crc32(b, c);
      },
      bytes: () => n,
    };
  }

  it('encodes the same bytes and decodes the same weights as the default, and is the one used', () => {
    const ws = randomWeights(11);
    const expected = encodeWeights(ws, { round: 3 });
    const enc = countingCrc();
    const bytes = encodeWeights(ws, { round: 3 }, { crc32: enc.fn });
    expect(Array.from(bytes)).toEqual(Array.from(expected));
    expect(enc.bytes()).toBe(bytes.length - 4);
    for (const requireFinite of [false, true]) {
      const dec = countingCrc();
      const { weights, meta } = decodeWeights(bytes, { crc32: dec.fn, requireFinite });
      expect(meta).toEqual({ round: 3 });
      expect(weights.tensors.map((t) => bits(t.data))).toEqual(ws.tensors.map((t) => bits(t.data)));
      expect(dec.bytes()).toBe(bytes.length - 4);
    }
  });

  it('refuses the file when the injected checksum disagrees with the stored one', () => {
    const bytes = encodeWeights(randomWeights(12));
    const wrong = (b: Uint8Array, c = 0) => (crc32(b, c) ^ 1) >>> 0;
    for (const requireFinite of [false, true]) {
      expectCode(() => decodeWeights(bytes, { crc32: wrong, requireFinite }), 'checksum', /checksum mismatch/);
    }
  });
});

describe('decodeWeights requireFinite (checked in the checksum pass)', () => {
  /** One tensor of 40,000 values (several 64 KiB chunks of the fused pass) plus a small one. */
  function bigWeights(): WeightSet {
    const big = new Float32Array(40_000);
    for (let i = 0; i < big.length; i++) big[i] = ((i % 13) - 6) * 0.25;
    return {
      fingerprint: 'fp',
      tensors: [
        { name: 'g/big', shape: [200, 200], data: big },
        { name: 'g/bn1/beta', shape: [7], data: new Float32Array(7).fill(-0) },
      ],
    };
  }

  it('accepts finite data, including -0, denormals and the largest float32', () => {
    const ws = bigWeights();
    ws.tensors[0].data[5] = 1e-45;
    ws.tensors[0].data[6] = -3.4028234663852886e38;
    const { weights } = decodeWeights(encodeWeights(ws), { requireFinite: true });
    expect(bits(weights.tensors[0].data)).toEqual(bits(ws.tensors[0].data));
  });

  it('catches NaN, +Infinity and -Infinity at the first and last index and across chunk boundaries', () => {
    // Chunk boundaries of the fused pass fall every 16,384 values of the data section.
    const positions: [number, number][] = [
      [0, 0],
      [0, 16_383],
      [0, 16_384],
      [0, 32_768],
      [0, 39_999],
      [1, 0],
      [1, 6],
    ];
    for (const [tensor, index] of positions) {
      for (const bad of [Number.NaN, Infinity, -Infinity]) {
        const ws = bigWeights();
        ws.tensors[tensor].data[index] = bad;
        const bytes = encodeWeights(ws);
        const name = ws.tensors[tensor].name.replace('/', '\\/');
        expectCode(() => decodeWeights(bytes, { requireFinite: true }), 'non-finite', new RegExp(`^tensor ${name} holds ${bad} at index ${index} of`));
        // Also when the data cannot be viewed in place (copied, or misaligned input): the unfused check.
        expectCode(() => decodeWeights(bytes, { requireFinite: true, copy: true }), 'non-finite', new RegExp(`holds ${bad} at index ${index} of`));
        const shifted = new Uint8Array(bytes.length + 1).subarray(1);
        shifted.set(bytes);
        expectCode(() => decodeWeights(shifted, { requireFinite: true }), 'non-finite', new RegExp(`holds ${bad} at index ${index} of`));
        expect(() => decodeWeights(bytes)).not.toThrow();
      }
    }
  });

  it('reports a corrupted file as a checksum error even when it also holds NaN', () => {
    const ws = bigWeights();
    ws.tensors[0].data[100] = Number.NaN;
    const bytes = encodeWeights(ws);
    bytes[bytes.length - 1] ^= 0xff;
    expectCode(() => decodeWeights(bytes, { requireFinite: true }), 'checksum');
  });
});
