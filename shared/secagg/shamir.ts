/**
 * Shamir secret sharing (Shamir 1979) over the prime field GF(p), p = 2^127 − 1 (a Mersenne prime), as
 * SecAgg uses it for each hospital's mask key and self-mask seed (Bonawitz et al. 2017, §4).
 *
 * A secret of any length is cut into 15-byte chunks (120 bits < p); each chunk is the constant term of its
 * own random polynomial of degree t − 1, evaluated at x = 1…n (a hospital's 1-based index in the round's
 * roster). Any t shares give the secret back (Lagrange interpolation at 0); t − 1 shares say nothing about it:
 * every value of the secret is equally likely given them.
 *
 * A share's bytes: u8 version (1), u16 x, u16 secret length, then per chunk the 16-byte big-endian y.
 */
import { randomBytes } from './bytes.ts';

export const SHAMIR_PRIME = (1n << 127n) - 1n;
const P = SHAMIR_PRIME;
const CHUNK = 15;
const Y_BYTES = 16;

export interface Share {
  /** The evaluation point, 1…65535 (0 would be the secret itself). */
  x: number;
  bytes: Uint8Array;
}

function mod(a: bigint): bigint {
  const r = a % P;
  return r < 0n ? r + P : r;
}

/** a^e mod p. */
function power(a: bigint, e: bigint): bigint {
  let r = 1n;
  let b = mod(a);
  while (e > 0n) {
    if (e & 1n) r = (r * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return r;
}

function inverse(a: bigint): bigint {
  if (mod(a) === 0n) throw new Error('Shamir: no inverse of 0 (two shares have the same x)');
  return power(a, P - 2n);
}

/** A uniformly random field element (rejection sampling of 127-bit values). */
function randomElement(): bigint {
  for (;;) {
    const b = randomBytes(16);
    b[0] &= 0x7f;
    let v = 0n;
    for (const x of b) v = (v << 8n) | BigInt(x);
    if (v < P) return v;
  }
}

function chunkValue(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const x of bytes) v = (v << 8n) | BigInt(x);
  return v;
}

/**
 * Split `secret` into shares for x = 1…n, any `threshold` of which recover it. Throws unless
 * 2 ≤ threshold ≤ n ≤ 65535 (a threshold of 1 would hand the secret to every holder).
 */
export function splitSecret(secret: Uint8Array, n: number, threshold: number): Share[] {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`Shamir: the number of shares must be an integer in 1…65535, got ${n}`);
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > n) throw new Error(`Shamir: the threshold must be an integer in 2…${n} (the number of shares), got ${threshold}`);
  if (secret.length > 65535) throw new Error(`Shamir: a secret of at most 65535 bytes, got ${secret.length}`);
  const chunks = Math.ceil(secret.length / CHUNK);
  const polys: bigint[][] = [];
  for (let c = 0; c < chunks; c++) {
    const coef = [chunkValue(secret.subarray(c * CHUNK, (c + 1) * CHUNK))];
    for (let k = 1; k < threshold; k++) coef.push(randomElement());
    polys.push(coef);
  }
  const shares: Share[] = [];
  for (let x = 1; x <= n; x++) {
    const out = new Uint8Array(5 + chunks * Y_BYTES);
    out[0] = 1;
    out[1] = x >> 8;
    out[2] = x & 0xff;
    out[3] = secret.length >> 8;
    out[4] = secret.length & 0xff;
    const X = BigInt(x);
    polys.forEach((coef, c) => {
      let y = 0n;
      for (let k = coef.length - 1; k >= 0; k--) y = (y * X + coef[k]) % P;
      for (let i = Y_BYTES - 1, v = y; i >= 0; i--, v >>= 8n) out[5 + c * Y_BYTES + i] = Number(v & 0xffn);
    });
    shares.push({ x, bytes: out });
  }
  return shares;
}

/** Parse a share's bytes (its x, the secret's length, the y of each chunk); throws on malformed bytes. */
export function parseShare(bytes: Uint8Array): { x: number; length: number; ys: bigint[] } {
  if (bytes.length < 5 || bytes[0] !== 1) throw new Error('Shamir: not a share (unknown version or too short)');
  const x = (bytes[1] << 8) | bytes[2];
  const length = (bytes[3] << 8) | bytes[4];
  const chunks = Math.ceil(length / CHUNK);
  if (x === 0) throw new Error('Shamir: a share at x = 0');
  if (bytes.length !== 5 + chunks * Y_BYTES) throw new Error(`Shamir: a share of a ${length}-byte secret has ${5 + chunks * Y_BYTES} bytes, got ${bytes.length}`);
  const ys: bigint[] = [];
  for (let c = 0; c < chunks; c++) {
    const y = chunkValue(bytes.subarray(5 + c * Y_BYTES, 5 + (c + 1) * Y_BYTES));
    if (y >= P) throw new Error('Shamir: a share value outside the field');
    ys.push(y);
  }
  return { x, length, ys };
}

/**
 * The secret from at least `threshold` shares (Lagrange interpolation at 0). combineShares does not know
 * the threshold: with fewer shares it usually throws (the value does not fit the secret's length) but may
 * return a wrong secret, so the caller checks the count, and the result where it can (against a public key).
 */
export function combineShares(shares: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  if (shares.length === 0) throw new Error('Shamir: no shares to combine');
  const parsed = shares.map(parseShare);
  const { length } = parsed[0];
  const xs = parsed.map((s) => BigInt(s.x));
  if (new Set(parsed.map((s) => s.x)).size !== parsed.length) throw new Error('Shamir: two shares have the same x');
  if (parsed.some((s) => s.length !== length)) throw new Error('Shamir: the shares are of secrets of different lengths');
  // Lagrange basis at 0: l_j = Π_{m≠j} x_m / (x_m − x_j).
  const basis = xs.map((xj, j) => {
    let num = 1n;
    let den = 1n;
    xs.forEach((xm, m) => {
      if (m === j) return;
      num = (num * xm) % P;
      den = mod(den * (xm - xj));
    });
    return (num * inverse(den)) % P;
  });
  const out = new Uint8Array(length);
  const chunks = Math.ceil(length / CHUNK);
  for (let c = 0; c < chunks; c++) {
    let v = 0n;
    parsed.forEach((s, j) => (v = (v + s.ys[c] * basis[j]) % P));
    const size = Math.min(CHUNK, length - c * CHUNK);
    if (v >> BigInt(8 * size) !== 0n) throw new Error('Shamir: the shares do not combine into a secret (too few, or from different secrets)');
    for (let i = size - 1; i >= 0; i--, v >>= 8n) out[c * CHUNK + i] = Number(v & 0xffn);
  }
  return out;
}
