/**
 * Seeded, reproducible pseudo-random numbers (isomorphic: plain 32-bit integer arithmetic only).
 *
 * Generator: xoshiro128** (Blackman & Vigna), 128 bits of state, period 2^128 − 1. Its state is
 * filled from a 64-bit *key* with a splitmix32-style mixer, so nearby seeds (0, 1, 2, …) give
 * unrelated streams.
 *
 * Streams are identified by their key, not by how far they have been consumed:
 * `rng.fork(salt)` derives the child key from the parent's key and the salt only, so
 * `new Rng(7).fork('round:3')` is the same stream whether or not the parent has drawn numbers.
 * That makes per-round / per-client randomness reproducible independently of call order.
 */

const TWO_POW_32 = 4294967296;
const INV_TWO_POW_32 = 1 / TWO_POW_32;
const GOLDEN_GAMMA = 0x9e3779b9;

/** A strong 32-bit avalanche mixer (the "lowbias32" constants of Wellons' hash prospector). */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * 32-bit FNV-1a hash of the UTF-8 encoding of `s`, with a final avalanche step so that short,
 * similar strings ("client-1", "client-2") give well-spread values. Returns an unsigned 32-bit integer.
 */
export function hashString(s: string): number {
  const bytes = new TextEncoder().encode(s);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h);
}

/** Splits a seed (any finite number) into two 32-bit words, using all 53 integer bits when it is an integer. */
function seedWords(seed: number): [number, number] {
  if (!Number.isFinite(seed)) throw new RangeError(`Rng seed must be a finite number, got ${seed}`);
  if (!Number.isSafeInteger(seed)) {
    // Non-integers (and huge values) are keyed by their exact decimal representation.
    return [hashString(`f:${seed}`), 0x2545f491];
  }
  const lo = seed >>> 0; // low 32 bits (two's complement for negatives)
  const hi = Math.floor(seed / TWO_POW_32) >>> 0;
  return [lo, hi];
}

function saltWords(salt: number | string): [number, number] {
  if (typeof salt === 'string') return [hashString(salt), hashString(`#${salt}`) ^ 0x5bd1e995];
  return seedWords(salt);
}

/** A seeded xoshiro128** generator. Not cryptographically secure. */
export class Rng {
  /** 64-bit stream key (two 32-bit words); the whole stream is a pure function of it. */
  private k0 = 0;
  private k1 = 0;
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  /** Second value of the last Box–Muller pair, if unused. */
  private spareNormal: number | null = null;

  /** `seed`: any finite number; integers use all their bits (up to 2^53), others are hashed. */
  constructor(seed: number) {
    const [lo, hi] = seedWords(seed);
    this.setKey(lo, hi);
  }

  /** Sets the stream key and expands it into the 128-bit generator state. */
  private setKey(lo: number, hi: number): void {
    this.k0 = lo >>> 0;
    this.k1 = hi >>> 0;
    this.spareNormal = null;
    // The two key words are cross-mixed so that neither word alone determines any state word.
    let a = mix32(this.k0 ^ 0x243f6a88);
    let b = mix32(this.k1 ^ 0x85a308d3);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      a = (a + GOLDEN_GAMMA) >>> 0;
      b = (b + 0x6a09e667) >>> 0;
      words.push(mix32(a ^ rotl(mix32(b), 13)));
    }
    [this.s0, this.s1, this.s2, this.s3] = words;
    // xoshiro must not start from the all-zero state.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = GOLDEN_GAMMA;
  }

  /** Next raw unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextUint32() * INV_TWO_POW_32;
  }

  /** Uniform integer in [0, n), without modulo bias. `n` must be an integer in [1, 2^32]. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`Rng.int(n) needs an integer n in [1, 2^32], got ${n}`);
    }
    // Reject the top partial block of 2^32 so every residue is equally likely.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    let x: number;
    do x = this.nextUint32();
    while (x >= limit);
    return x % n;
  }

  /** Standard normal deviate (mean 0, variance 1), Box–Muller transform. */
  normal(): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return z;
    }
    const u = 1 - this.next(); // (0, 1]: log(u) is finite
    const v = this.next();
    const radius = Math.sqrt(-2 * Math.log(u));
    const angle = 2 * Math.PI * v;
    this.spareNormal = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /** In-place Fisher–Yates shuffle; returns the same array. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = arr[i];
      arr[i] = arr[j];
      arr[j] = tmp;
    }
    return arr;
  }

  /**
   * A new, independent stream derived from this stream's key and `salt` (e.g. a round number or a
   * client id). Deterministic, and independent of how many numbers this stream has already drawn.
   */
  fork(salt: number | string): Rng {
    const [sa, sb] = saltWords(salt);
    // Tag number and string salts differently so fork(1) and fork('1') differ.
    const tag = typeof salt === 'string' ? 0x1b873593 : 0xcc9e2d51;
    const lo = mix32(this.k0 ^ mix32(sa ^ tag));
    const hi = mix32(this.k1 ^ rotl(mix32(sb + GOLDEN_GAMMA), 7) ^ lo);
    const child = new Rng(0);
    child.setKey(lo, hi);
    return child;
  }
}
