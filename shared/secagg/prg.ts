/**
 * The mask generator: a 32-byte seed expanded into 32-bit words by AES-256 in counter mode (WebCrypto
 * AES-CTR, the keystream of an all-zero message; NIST SP 800-38A). Pairwise masks use the seed both
 * hospitals derive by key agreement, self masks a hospital's own random seed (keys.ts). Words are read
 * little-endian; the masks are added to or subtracted from a vector mod 2^32 (a Uint32Array wraps).
 */
import { subtle } from './bytes.ts';

/** Words expanded per WebCrypto call (4 MiB): bounds the memory of a mask whatever the model size. */
const CHUNK_WORDS = 1 << 20;
let zeros: Uint8Array<ArrayBuffer> | undefined;

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error('secure aggregation assumes a little-endian host (every browser and Node platform is)');
}

async function aesKey(seed: Uint8Array): Promise<CryptoKey> {
  if (seed.length !== 32) throw new Error(`a mask seed has 32 bytes, got ${seed.length}`);
  return subtle().importKey('raw', seed as Uint8Array<ArrayBuffer>, { name: 'AES-CTR' }, false, ['encrypt']);
}

/** Counter block of AES block number `block` (big-endian in the last 8 bytes; the first 8 are zero). */
function counterBlock(block: number): Uint8Array<ArrayBuffer> {
  const c = new Uint8Array(16);
  let b = block;
  for (let i = 15; i >= 8 && b > 0; i--) {
    c[i] = b % 256;
    b = Math.floor(b / 256);
  }
  return c;
}

/**
 * Call `fn(words, offset)` for consecutive pieces of the keystream of `seed`, `length` words in all
 * (the piece at `offset` covers words offset…offset + words.length − 1).
 */
async function forEachKeystream(seed: Uint8Array, length: number, fn: (words: Uint32Array, offset: number) => void): Promise<void> {
  const key = await aesKey(seed);
  for (let offset = 0; offset < length; offset += CHUNK_WORDS) {
    const n = Math.min(CHUNK_WORDS, length - offset);
    if (!zeros || zeros.length < 4 * n) zeros = new Uint8Array(4 * Math.max(n, 4));
    const input = zeros.subarray(0, 4 * n);
    // 4 words per 16-byte AES block: offset is a multiple of CHUNK_WORDS, hence of 4.
    const counter = counterBlock(offset / 4);
    const out = await subtle().encrypt({ name: 'AES-CTR', counter, length: 64 }, key, input);
    fn(new Uint32Array(out), offset);
  }
}

/** The first `length` words of the mask of `seed`. */
export async function expandMask(seed: Uint8Array, length: number): Promise<Uint32Array> {
  const out = new Uint32Array(length);
  await forEachKeystream(seed, length, (w, o) => out.set(w, o));
  return out;
}

/** target += sign · mask(seed) mod 2^32, in place (target.length words of the mask). */
export async function applyMask(target: Uint32Array, seed: Uint8Array, sign: 1 | -1): Promise<void> {
  await forEachKeystream(seed, target.length, (w, o) => {
    const t = target.subarray(o, o + w.length);
    if (sign === 1) for (let i = 0; i < w.length; i++) t[i] += w[i];
    else for (let i = 0; i < w.length; i++) t[i] -= w[i];
  });
}
