/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320; the zlib / PNG / gzip checksum).
 * Table-driven "slicing-by-8": eight 256-entry tables let the loop consume 8 bytes per iteration.
 */

const POLY = 0xedb88320;

/**
 * A CRC-32 (IEEE) implementation with the same contract as `crc32` below: `(bytes, crc = 0)` → the
 * checksum, continuing from `crc` (the result for the preceding bytes). The codec takes one as an option
 * so that a host with a native implementation (Node's `zlib.crc32`, ~5× faster) can use it; the
 * isomorphic default is `crc32`.
 */
export type Crc32Fn = (bytes: Uint8Array, crc?: number) => number;

/** TABLES[k * 256 + b]: CRC contribution of byte b followed by k zero bytes. */
const TABLES: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
    t[b] = c >>> 0;
  }
  for (let b = 0; b < 256; b++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + b];
      t[k * 256 + b] = (prev >>> 8) ^ t[prev & 0xff];
    }
  }
  return t;
})();

/**
 * CRC-32 of `bytes`. Pass the previous result as `crc` to checksum data given in pieces:
 * `crc32(b, crc32(a)) === crc32(concat(a, b))`. Returns an unsigned 32-bit integer.
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  const t = TABLES;
  let c = ~crc >>> 0;
  let i = 0;
  const n = bytes.length;
  const end8 = n - (n % 8);
  for (; i < end8; i += 8) {
    c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    c =
      t[1792 + (c & 0xff)] ^
      t[1536 + ((c >>> 8) & 0xff)] ^
      t[1280 + ((c >>> 16) & 0xff)] ^
      t[1024 + (c >>> 24)] ^
      t[768 + bytes[i + 4]] ^
      t[512 + bytes[i + 5]] ^
      t[256 + bytes[i + 6]] ^
      t[bytes[i + 7]];
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
