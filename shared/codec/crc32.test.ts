import { describe, expect, it } from 'vitest';
import { crc32 } from './crc32.ts';

const ascii = (s: string) => new TextEncoder().encode(s);

/** Bit-by-bit reference implementation, independent of the table-driven one. */
function crc32Reference(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return ~c >>> 0;
}

describe('crc32', () => {
  it('matches the standard check values', () => {
    expect(crc32(ascii('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(ascii('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
  });

  it('agrees with a bitwise reference for every length 0..40 (exercises the 8-byte loop and the tail)', () => {
    const data = Uint8Array.from({ length: 40 }, (_, i) => (i * 73 + 11) & 0xff);
    for (let n = 0; n <= 40; n++) {
      expect(crc32(data.subarray(0, n))).toBe(crc32Reference(data.subarray(0, n)));
    }
  });

  it('can be computed incrementally', () => {
    const data = ascii('federated generative adversarial networks');
    expect(crc32(data.subarray(13), crc32(data.subarray(0, 13)))).toBe(crc32(data));
  });

  it('changes when a single bit flips', () => {
    const data = ascii('123456789');
    data[4] ^= 0x10;
    expect(crc32(data)).not.toBe(0xcbf43926);
  });
});
