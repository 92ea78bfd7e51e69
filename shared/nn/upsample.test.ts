import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { parseGanConfig } from '../config/ganConfig.ts';
import { createGan } from '../gan/gan.ts';
import { createGenerator } from '../gan/generator.ts';
import { bilinearWeights, upsample2x } from './layers.ts';

/**
 * Bilinear 2× upsampling with half-pixel centres and clamped edges, written directly: output (y, x) reads
 * the source point ((y + ½)/2 − ½, (x + ½)/2 − ½), clamped into the image, and interpolates the four pixels
 * around it. Float64, no matrices: an independent reference for upsample2x's matrix form.
 */
function bilinearReference(x: Float64Array, [b, h, w, c]: number[]): Float64Array {
  const out = new Float64Array(b * 4 * h * w * c);
  const axis = (o: number, n: number) => {
    const s = Math.min(n - 1, Math.max(0, (o + 0.5) / 2 - 0.5));
    const i0 = Math.floor(s);
    return { i0, i1: Math.min(n - 1, i0 + 1), f: s - i0 };
  };
  for (let bi = 0; bi < b; bi++)
    for (let y = 0; y < 2 * h; y++)
      for (let xo = 0; xo < 2 * w; xo++)
        for (let ci = 0; ci < c; ci++) {
          const r = axis(y, h);
          const q = axis(xo, w);
          const at = (yy: number, xx: number) => x[((bi * h + yy) * w + xx) * c + ci];
          out[((bi * 2 * h + y) * 2 * w + xo) * c + ci] =
            (1 - r.f) * ((1 - q.f) * at(r.i0, q.i0) + q.f * at(r.i0, q.i1)) + r.f * ((1 - q.f) * at(r.i1, q.i0) + q.f * at(r.i1, q.i1));
        }
  return out;
}

const values = (n: number, seed: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 2);

describe('bilinear 2× upsampling (generator.upsample: bilinear)', () => {
  it('interpolation weights: ¾ own pixel, ¼ the neighbour on its side, the edge pixel itself at the border', () => {
    expect(Array.from(bilinearWeights(2))).toEqual([1, 0, 0.75, 0.25, 0.25, 0.75, 0, 1]);
    expect(Array.from(bilinearWeights(3))).toEqual([1, 0, 0, 0.75, 0.25, 0, 0.25, 0.75, 0, 0, 0.75, 0.25, 0, 0.25, 0.75, 0, 0, 1]);
    const u = bilinearWeights(5);
    for (let o = 0; o < 10; o++) expect(u.slice(o * 5, o * 5 + 5).reduce((a, v) => a + v, 0)).toBe(1);
  });

  it('values match the direct float64 interpolation and tfjs resizeBilinear (half-pixel centres) on a non-square batch', () => {
    const shape = [2, 3, 5, 4];
    const data = values(2 * 3 * 5 * 4, 1);
    const x = tf.tensor4d(Float32Array.from(data), shape as [number, number, number, number]);
    const y = upsample2x(x, 'bilinear');
    expect(y.shape).toEqual([2, 6, 10, 4]);
    const got = y.dataSync();
    const want = bilinearReference(data, shape);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `element ${i}`).toBeLessThan(1e-5);
    const tfjs = tf.image.resizeBilinear(x, [6, 10], false, true).dataSync();
    for (let i = 0; i < want.length; i++) expect(Math.abs(tfjs[i] - want[i]), `tfjs element ${i}`).toBeLessThan(1e-5);
    tf.dispose([x, y]);
  });

  it('the gradient is the exact adjoint (float64 reference) and matches central differences', () => {
    const shape = [2, 4, 3, 2];
    const n = 2 * 4 * 3 * 2;
    const data = values(n, 2);
    const g = values(n * 4, 3);
    const x = tf.tensor4d(Float32Array.from(data), shape as [number, number, number, number]);
    const gT = tf.tensor4d(Float32Array.from(g), [2, 8, 6, 2]);
    const dx = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(upsample2x(v as tf.Tensor4D, 'bilinear'), gT)))(x).dataSync();
    // The adjoint: d⟨U x, g⟩/dx_i = ⟨U e_i, g⟩ with the reference interpolation of each unit vector.
    for (let i = 0; i < n; i++) {
      const e = new Float64Array(n);
      e[i] = 1;
      const ue = bilinearReference(e, shape);
      const want = ue.reduce((a, v, j) => a + v * g[j], 0);
      expect(Math.abs(dx[i] - want), `element ${i}`).toBeLessThan(1e-4);
    }
    // Central differences in float32 on a few elements (the map is linear, so they are exact up to rounding).
    const f = (d: Float64Array) => bilinearReference(d, shape).reduce((a, v, j) => a + v * g[j], 0);
    for (const i of [0, 5, 13, n - 1]) {
      const up = Float64Array.from(data);
      const down = Float64Array.from(data);
      up[i] += 1e-3;
      down[i] -= 1e-3;
      expect(Math.abs(dx[i] - (f(up) - f(down)) / 2e-3), `fd element ${i}`).toBeLessThan(1e-3);
    }
    tf.dispose([x, gT]);
  });

  it("nearest (the default) is tfjs's nearest-neighbour resize", () => {
    const x = tf.tensor4d(Float32Array.from(values(2 * 2 * 3 * 2, 4)), [2, 2, 3, 2]);
    expect(Array.from(upsample2x(x).dataSync())).toEqual(Array.from(tf.image.resizeNearestNeighbor(x, [4, 6]).dataSync()));
    x.dispose();
  });

  it('the interpolation matrices are kept: steady-state calls leak nothing', () => {
    const x = tf.ones([1, 4, 4, 2]) as tf.Tensor4D;
    upsample2x(x, 'bilinear').dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) upsample2x(x, 'bilinear').dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});

describe('generator.upsample', () => {
  it('defaults to nearest; bilinear is accepted; anything else is refused naming the field', () => {
    expect(parseGanConfig({}).generator.upsample).toBe('nearest');
    expect(parseGanConfig({ generator: { upsample: 'bilinear' } }).generator.upsample).toBe('bilinear');
    expect(() => parseGanConfig({ generator: { upsample: 'bicubic' as 'nearest' } })).toThrow(/generator\.upsample/);
  });

  it('bilinear changes the model fingerprint (a federation cannot mix the two); nearest spelled out does not', () => {
    const base = { imageSize: 16, latentDim: 8, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 } };
    const fp = (upsample?: 'nearest' | 'bilinear') => {
      const gan = createGan(parseGanConfig({ ...base, generator: { baseChannels: 8, ...(upsample ? { upsample } : {}) } }));
      const f = gan.fingerprint;
      gan.dispose();
      return f;
    };
    expect(fp('nearest')).toBe(fp());
    expect(fp('bilinear')).not.toBe(fp());
  });

  it('a bilinear generator has the same weights as a nearest one and a different, smoother image', () => {
    const base = { imageSize: 16, latentDim: 8, generator: { baseChannels: 8 }, seed: 5 };
    const near = createGenerator(parseGanConfig(base));
    const bil = createGenerator(parseGanConfig({ ...base, generator: { baseChannels: 8, upsample: 'bilinear' } }));
    const weights = (g: typeof near) => g.params.read().map((t) => ({ name: t.name, shape: t.shape, data: Array.from(t.data) }));
    expect(weights(bil)).toEqual(weights(near));
    const z = tf.randomNormal([4, 8], 0, 1, 'float32', 9) as tf.Tensor2D;
    const labels = tf.tensor1d([0, 1, 0, 1], 'int32');
    const a = near.apply(z, labels, false);
    const b = bil.apply(z, labels, false);
    expect(b.shape).toEqual([4, 16, 16, 3]);
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeGreaterThan(1e-3);
    // Total variation: interpolated features change less from pixel to pixel than 2 × 2 copies.
    const tv = (img: tf.Tensor4D) => tf.add(tf.mean(tf.abs(tf.sub(img.slice([0, 1], [-1, -1]), img.slice([0, 0], [-1, 15])))), tf.mean(tf.abs(tf.sub(img.slice([0, 0, 1], [-1, -1, -1]), img.slice([0, 0, 0], [-1, -1, 15]))))).dataSync()[0];
    expect(tv(b)).toBeLessThan(tv(a));
    tf.dispose([z, labels, a, b]);
  });
});
