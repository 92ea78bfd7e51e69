import { createCipheriv, createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fedAvg } from '../aggregate/fedavg.ts';
import type { WeightSet } from '../weights.ts';
import { fromBase64, toBase64 } from './bytes.ts';
import { agreeKey, exportPrivateScalar, generateAgreementKeys, importPrivateScalar, open, seal } from './keys.ts';
import { applyMask, expandMask } from './prg.ts';
import { decodeSum, encodeUpdate, quantError, quantScale, vectorLength } from './quantize.ts';
import { combineShares, parseShare, SHAMIR_PRIME, splitSecret } from './shamir.ts';

/** A deterministic 32-byte seed. */
const seedOf = (label: string) => new Uint8Array(createHash('sha256').update(label).digest());

/** Chi-square statistic of the top byte of each word against 256 equally likely values. */
function chiSquareTopByte(words: Uint32Array): number {
  const counts = new Float64Array(256);
  for (const w of words) counts[w >>> 24]++;
  const e = words.length / 256;
  return counts.reduce((s, c) => s + (c - e) ** 2 / e, 0);
}
/** Kolmogorov–Smirnov statistic of words / 2^32 against U(0, 1). */
function ksUniform(words: Uint32Array): number {
  const u = Float64Array.from(words, (w) => w / 2 ** 32).sort();
  let d = 0;
  for (let i = 0; i < u.length; i++) d = Math.max(d, (i + 1) / u.length - u[i], u[i] - i / u.length);
  return d;
}

describe('Shamir secret sharing over GF(2^127 − 1)', () => {
  const secret = seedOf('a hospital secret');

  it('uses the Mersenne prime 2^127 − 1', () => expect(SHAMIR_PRIME).toBe(170141183460469231731687303715884105727n));

  it('any t of n shares give the secret back, in any order', () => {
    const shares = splitSecret(secret, 5, 3);
    expect(shares.map((s) => s.x)).toEqual([1, 2, 3, 4, 5]);
    for (const pick of [[0, 1, 2], [4, 2, 0], [1, 3, 4], [0, 1, 2, 3, 4]]) {
      expect(toBase64(combineShares(pick.map((i) => shares[i].bytes)))).toBe(toBase64(secret));
    }
  });

  it('t − 1 shares do not give the secret', () => {
    const shares = splitSecret(secret, 5, 3);
    let got: string | undefined;
    try {
      got = toBase64(combineShares([shares[0].bytes, shares[3].bytes]));
    } catch {
      got = undefined;
    }
    expect(got).not.toBe(toBase64(secret));
  });

  it('shares of odd lengths (1, 15, 16, 33 bytes) round-trip', () => {
    for (const n of [1, 15, 16, 33]) {
      const s = seedOf(`s${n}`).slice(0, Math.min(32, n));
      const full = n > 32 ? new Uint8Array([...s, 7]) : s;
      const sh = splitSecret(full, 4, 2);
      expect(Array.from(combineShares([sh[3].bytes, sh[1].bytes]))).toEqual(Array.from(full));
    }
  });

  it('the same secret shared twice gives unrelated shares (fresh random polynomials)', () => {
    const a = parseShare(splitSecret(secret, 3, 2)[0].bytes).ys[0];
    const b = parseShare(splitSecret(secret, 3, 2)[0].bytes).ys[0];
    expect(a).not.toBe(b);
  });

  it('refuses a threshold below 2 or above n, duplicate x and malformed shares', () => {
    expect(() => splitSecret(secret, 3, 1)).toThrow(/threshold must be an integer in 2…3/);
    expect(() => splitSecret(secret, 3, 4)).toThrow(/threshold/);
    const sh = splitSecret(secret, 3, 2);
    expect(() => combineShares([sh[0].bytes, sh[0].bytes])).toThrow(/same x/);
    expect(() => combineShares([sh[0].bytes.subarray(0, 10)])).toThrow(/has .* bytes/);
  });
});

describe('mask generator (AES-256-CTR keystream)', () => {
  it('is the AES-256-CTR keystream from counter 0 (checked against node:crypto), across its 4 MiB chunks', async () => {
    const seed = seedOf('prg');
    const n = (1 << 20) + 37; // crosses a chunk boundary
    const got = await expandMask(seed, n);
    const c = createCipheriv('aes-256-ctr', seed, new Uint8Array(16));
    const want = new Uint32Array(new Uint8Array(c.update(new Uint8Array(4 * n))).buffer);
    expect(got.length).toBe(n);
    let diff = 0;
    for (let i = 0; i < n; i++) if (got[i] !== want[i]) diff++;
    expect(diff).toBe(0);
  });

  it('matches NIST SP 800-38A F.5.5 (CTR-AES256) for its first block', async () => {
    // Key 603deb10…0914df4, counter f0f1…feff, plaintext 6bc1bee2…172a → ciphertext 601ec313775789a5b7a7f504bbf3d228.
    // Our keystream starts at counter 0; node:crypto (checked against the vector here) bridges the two.
    const key = Uint8Array.from(Buffer.from('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4', 'hex'));
    const iv = Uint8Array.from(Buffer.from('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff', 'hex'));
    const pt = Uint8Array.from(Buffer.from('6bc1bee22e409f96e93d7e117393172a', 'hex'));
    const ct = createCipheriv('aes-256-ctr', key, iv).update(pt).toString('hex');
    expect(ct).toBe('601ec313775789a5b7a7f504bbf3d228');
    const ks0 = createCipheriv('aes-256-ctr', key, new Uint8Array(16)).update(new Uint8Array(16));
    expect(Array.from(new Uint8Array((await expandMask(key, 4)).buffer))).toEqual(Array.from(ks0));
  });

  it('adding then subtracting a mask gives the vector back; a pair of opposite masks cancels', async () => {
    const v = Uint32Array.from({ length: 1000 }, (_, i) => (i * 2654435761) >>> 0);
    const w = v.slice();
    await applyMask(w, seedOf('m'), 1);
    expect(w).not.toEqual(v);
    await applyMask(w, seedOf('m'), -1);
    expect(w).toEqual(v);
  });

  it('refuses a seed that is not 32 bytes', async () => {
    await expect(expandMask(new Uint8Array(16), 4)).rejects.toThrow(/32 bytes/);
  });
});

describe('key agreement and share encryption (WebCrypto P-256, HKDF, AES-GCM)', () => {
  it('both sides of a pair derive the same key; other labels and pairs give others', async () => {
    const [a, b, c] = await Promise.all([generateAgreementKeys(), generateAgreementKeys(), generateAgreementKeys()]);
    expect(a.publicKey.length).toBe(65);
    const ab = await agreeKey(a.privateKey, b.publicKey, 'mask/1/1');
    expect(toBase64(await agreeKey(b.privateKey, a.publicKey, 'mask/1/1'))).toBe(toBase64(ab));
    expect(toBase64(await agreeKey(a.privateKey, b.publicKey, 'mask/1/2'))).not.toBe(toBase64(ab));
    expect(toBase64(await agreeKey(a.privateKey, c.publicKey, 'mask/1/1'))).not.toBe(toBase64(ab));
  });

  it('a private scalar exported, Shamir-shared and rebuilt agrees the same keys; a wrong scalar is refused', async () => {
    const [a, b] = await Promise.all([generateAgreementKeys(), generateAgreementKeys()]);
    const d = await exportPrivateScalar(a.privateKey);
    const rebuilt = combineShares(splitSecret(d, 4, 3).slice(1).map((s) => s.bytes));
    const key = await importPrivateScalar(rebuilt, a.publicKey);
    expect(toBase64(await agreeKey(key, b.publicKey, 'x'))).toBe(toBase64(await agreeKey(b.privateKey, a.publicKey, 'x')));
    const other = await exportPrivateScalar(b.privateKey);
    await expect(importPrivateScalar(other, a.publicKey)).rejects.toThrow(/does not fit its public key/);
  });

  it('seal/open round-trips; another context or an altered byte fails authentication', async () => {
    const key = seedOf('k');
    const sealed = await seal(key, new Uint8Array([1, 2, 3]), 'r1/a1/x→y');
    expect(Array.from(await open(key, sealed, 'r1/a1/x→y'))).toEqual([1, 2, 3]);
    await expect(open(key, sealed, 'r1/a1/x→z')).rejects.toThrow(/failed authentication/);
    const bad = sealed.slice();
    bad[bad.length - 1] ^= 1;
    await expect(open(key, bad, 'r1/a1/x→y')).rejects.toThrow(/failed authentication/);
  });

  it('base64 round-trips and names bad input', () => {
    expect(Array.from(fromBase64(toBase64(new Uint8Array([0, 255, 7]))))).toEqual([0, 255, 7]);
    expect(() => fromBase64('@@', 'the share')).toThrow(/the share is not valid base64/);
  });
});

function model(values: (i: number) => number, bn: (i: number) => number): WeightSet {
  return {
    fingerprint: 'fp',
    tensors: [
      { name: 'g/dense/kernel', shape: [100], data: Float32Array.from({ length: 100 }, (_, i) => values(i)) },
      { name: 'g/bn1/gamma', shape: [4], data: Float32Array.from({ length: 4 }, (_, i) => bn(i)) },
      { name: 'd/conv/bias', shape: [10], data: Float32Array.from({ length: 10 }, (_, i) => values(i + 100)) },
    ],
  };
}

describe('fixed-point encoding of example-weighted updates', () => {
  const global = model((i) => Math.sin(i), (i) => 1 + i / 10);
  const updates = [
    { w: model((i) => Math.sin(i) + 0.01 * Math.cos(3 * i), (i) => 1.2 + i / 10), n: 120 },
    { w: model((i) => Math.sin(i) - 0.02 * Math.sin(i * 7), (i) => 0.9 + i / 10), n: 37 },
    { w: model((i) => Math.sin(i) + (0.003 * i) / 100, (i) => 1.3 + i / 10), n: 1000 },
  ];

  it('the decoded sum equals plain FedAvg within the documented bound', () => {
    const K = updates.length;
    const p = { clip: 0.5, maxExamples: 100_000, scale: quantScale(0.5, 100_000, K) };
    const sum = new Uint32Array(vectorLength(global, 'average'));
    for (const u of updates) {
      const e = encodeUpdate(u.w, global, 'average', u.n, p);
      expect(e.clipped).toBe(0);
      for (let i = 0; i < sum.length; i++) sum[i] += e.words[i];
    }
    const N = updates.reduce((s, u) => s + u.n, 0);
    const got = decodeSum(sum, global, 'average', N, p.scale);
    const want = fedAvg(updates.map((u) => ({ weights: u.w, examples: u.n })));
    const bound = quantError(p.scale, K, N);
    expect(bound).toBeLessThan(1e-5);
    got.tensors.forEach((t, k) => {
      for (let i = 0; i < t.data.length; i++) {
        const ulp = Math.abs(want.tensors[k].data[i]) * 2 ** -23;
        expect(Math.abs(t.data[i] - want.tensors[k].data[i])).toBeLessThanOrEqual(bound + 2 * ulp);
      }
    });
  });

  it('the bound is tight enough to matter: with a coarse scale the error is visible and still within it', () => {
    const p = { clip: 0.5, maxExamples: 1, scale: 10 };
    const sum = new Uint32Array(vectorLength(global, 'average'));
    for (const u of updates) {
      const e = encodeUpdate(u.w, global, 'average', u.n, p);
      for (let i = 0; i < sum.length; i++) sum[i] += e.words[i];
    }
    const got = decodeSum(sum, global, 'average', 3, p.scale);
    const want = fedAvg(updates.map((u) => ({ weights: u.w, examples: 1 })));
    let worst = 0;
    got.tensors.forEach((t, k) => t.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - want.tensors[k].data[i])))));
    expect(worst).toBeGreaterThan(1e-3);
    expect(worst).toBeLessThanOrEqual(quantError(10, 3, 3) + 1e-6);
  });

  it('under FedBN the batch-norm tensors are not encoded and keep the global values', () => {
    const p = { clip: 0.5, maxExamples: 1000, scale: quantScale(0.5, 1000, 1) };
    expect(vectorLength(global, 'local')).toBe(110);
    const e = encodeUpdate(updates[0].w, global, 'local', 10, p);
    expect(e.words.length).toBe(110);
    const got = decodeSum(e.words, global, 'local', 10, p.scale);
    expect(Array.from(got.tensors[1].data)).toEqual(Array.from(global.tensors[1].data));
  });

  it('clips each coordinate to ±clip, caps the count at maxExamples and counts the clipped coordinates', () => {
    const p = { clip: 0.5, maxExamples: 50, scale: quantScale(0.5, 50, 1) };
    // bn gamma moves by (1.5 + i) − (1 + i/10) = 0.5 + 0.9 i: i = 0 is exactly at the clip, i = 1…3 beyond it.
    const e = encodeUpdate(model((i) => Math.sin(i), (i) => 1.5 + i), global, 'average', 120, p);
    expect(e.examples).toBe(50);
    expect(e.clipped).toBe(3);
    const got = decodeSum(e.words, global, 'average', 50, p.scale);
    expect(got.tensors[1].data[3]).toBeCloseTo(global.tensors[1].data[3] + 0.5, 5);
  });

  it('the scale keeps the sum of K updates within a signed 32-bit integer; bad inputs are refused', () => {
    expect(quantScale(0.5, 100_000, 10)).toBeCloseTo((2 ** 31 - 1) / 500_000, 9);
    expect(() => quantScale(0, 1, 1)).toThrow(/clip must be a positive number/);
    expect(() => quantScale(1, 1.5, 1)).toThrow(/maxExamples must be a positive integer/);
    expect(() => encodeUpdate(global, global, 'average', 0, { clip: 1, maxExamples: 1, scale: 1 })).toThrow(/positive integer/);
  });
});

describe('a masked update, as the server sees it, is indistinguishable from uniform', () => {
  it('chi-square (top byte, 255 dof) and Kolmogorov–Smirnov of the words pass; the unmasked words fail', async () => {
    // A realistic update: small deltas around 0, so the plain words cluster near 0 and 2^32.
    const n = 200_000;
    const global: WeightSet = { fingerprint: 'fp', tensors: [{ name: 'w', shape: [n], data: new Float32Array(n) }] };
    const trained: WeightSet = { fingerprint: 'fp', tensors: [{ name: 'w', shape: [n], data: Float32Array.from({ length: n }, (_, i) => 0.01 * Math.sin(i)) }] };
    const p = { clip: 0.5, maxExamples: 1000, scale: quantScale(0.5, 1000, 2) };
    const plain = encodeUpdate(trained, global, 'average', 500, p).words;
    const masked = plain.slice();
    await applyMask(masked, seedOf('self'), 1);
    await applyMask(masked, seedOf('pair'), -1);
    // Critical values at p = 0.001: chi-square(255) 330.5; KS 1.95/√n.
    expect(chiSquareTopByte(masked)).toBeLessThan(330.5);
    expect(ksUniform(masked)).toBeLessThan(1.95 / Math.sqrt(n));
    expect(chiSquareTopByte(plain)).toBeGreaterThan(330.5);
    expect(ksUniform(plain)).toBeGreaterThan(1.95 / Math.sqrt(n));
  });
});
