/**
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a counter-based
 * generator. Block j of a draw is philox(key, counter = (j, stream, 0, 0)) — four 32-bit words computed
 * independently by any thread, so a GPU fills a tensor in one dispatch with no shared state, and the
 * same (key, stream) always gives the same numbers.
 *
 * This file holds the WGSL implementation and an exact host reference (BigInt) that tests compare with.
 */

export const PHILOX_M0 = 0xd2511f53;
export const PHILOX_M1 = 0xcd9e8d57;
export const PHILOX_W0 = 0x9e3779b9;
export const PHILOX_W1 = 0xbb67ae85;

/** WGSL: `philox(ctr, key) -> vec4<u32>`, 10 rounds, and the float conversions used by the samplers. */
export const PHILOX_WGSL = /* wgsl */ `
fn philoxMulHiLo(a: u32, b: u32) -> vec2<u32> {
  let aLo = a & 0xffffu;
  let aHi = a >> 16u;
  let bLo = b & 0xffffu;
  let bHi = b >> 16u;
  let t0 = aLo * bLo;
  let t1 = aHi * bLo + (t0 >> 16u);
  let t2 = aLo * bHi + (t1 & 0xffffu);
  let hi = aHi * bHi + (t1 >> 16u) + (t2 >> 16u);
  return vec2<u32>(hi, a * b);
}

fn philoxRound(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
  let p0 = philoxMulHiLo(${PHILOX_M0}u, c.x);
  let p1 = philoxMulHiLo(${PHILOX_M1}u, c.z);
  return vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
}

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var i = 0; i < 9; i = i + 1) {
    c = philoxRound(c, k);
    k = k + vec2<u32>(${PHILOX_W0}u, ${PHILOX_W1}u);
  }
  return philoxRound(c, k);
}

// 24 random bits -> [0, 1).
fn philoxToUnit(x: u32) -> f32 {
  return f32(x >> 8u) * 5.9604644775390625e-8;
}

// 24 random bits -> (0, 1], safe for log().
fn philoxToUnitOpen(x: u32) -> f32 {
  return (f32(x >> 8u) + 1.0) * 5.9604644775390625e-8;
}
`;

const MASK32 = 0xffffffffn;

/** Host reference of `philox(counter, key)`, exact (BigInt arithmetic). */
export function philoxHost(counter: readonly [number, number, number, number], key: readonly [number, number]): [number, number, number, number] {
  let c = counter.map((x) => BigInt(x >>> 0));
  let k = key.map((x) => BigInt(x >>> 0));
  const M0 = BigInt(PHILOX_M0);
  const M1 = BigInt(PHILOX_M1);
  for (let round = 0; round < 10; round++) {
    const p0 = M0 * c[0];
    const p1 = M1 * c[2];
    const hi0 = p0 >> 32n;
    const lo0 = p0 & MASK32;
    const hi1 = p1 >> 32n;
    const lo1 = p1 & MASK32;
    c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    if (round < 9) k = [(k[0] + BigInt(PHILOX_W0)) & MASK32, (k[1] + BigInt(PHILOX_W1)) & MASK32];
  }
  return c.map((x) => Number(x)) as [number, number, number, number];
}

/** Same conversions as the WGSL helpers (float32-exact: 24-bit integers times 2^-24). */
export function toUnit(x: number): number {
  return (x >>> 8) * 5.9604644775390625e-8;
}
export function toUnitOpen(x: number): number {
  return ((x >>> 8) + 1) * 5.9604644775390625e-8;
}

/**
 * The (key, stream) of a draw, from a user seed and a per-draw stream index. Seeds are mixed with a
 * 32-bit finaliser so nearby seeds give unrelated keys.
 */
export function philoxKey(seed: number): [number, number] {
  return [mix32(seed ^ 0x5eed1234), mix32((seed * 0x9e3779b1) ^ 0x2545f491)];
}

function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
