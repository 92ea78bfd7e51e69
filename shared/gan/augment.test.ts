import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { parseGanConfig, type AugmentConfig, type Augmentation } from '../config/ganConfig.ts';
import { brightness, contrast, createAugment, cutout, noAugment, saturation, translate } from './augment.ts';

/** A seed stream like the trainer's: the same start gives the same seeds. */
const seeds = (start: number) => {
  let s = start;
  return () => ++s;
};

const augmentConfig = (policy: Augmentation[], extra: Partial<AugmentConfig> = {}): AugmentConfig => parseGanConfig({ augment: { policy, ...extra } }).augment;

const f32 = (v: number[]) => Array.from(Float32Array.from(v));
const values = (t: tf.Tensor) => Array.from(t.dataSync());
const ids = (v: number[]) => tf.tensor1d(v, 'int32');

function expectValues(actual: tf.Tensor, expected: number[], digits = 6) {
  const a = values(actual);
  expect(a.length).toBe(expected.length);
  a.forEach((v, i) => expect(v, `element ${i}`).toBeCloseTo(expected[i], digits));
}

describe('each transform with fixed parameters (values computed by hand)', () => {
  it('brightness adds δ_b to every value of sample b', () => {
    const x = tf.tensor4d([0.1, 0.2, 0.3, 0.4, -1, 0, 0.5, 1], [2, 2, 2, 1]);
    const y = brightness(x, tf.tensor1d([0.25, -0.5]));
    expect(y.shape).toEqual([2, 2, 2, 1]);
    expectValues(y, [0.35, 0.45, 0.55, 0.65, -1.5, -0.5, 0, 0.5]);
  });

  it('saturation scales each pixel around its channel mean', () => {
    // pixel 1: (0.1, 0.4, 0.7), mean 0.4; pixel 2: (−1, 0, 0.5), mean −1/6.
    const x = tf.tensor4d([0.1, 0.4, 0.7, -1, 0, 0.5], [1, 1, 2, 3]);
    expectValues(saturation(x, tf.tensor1d([0.5])), [0.25, 0.4, 0.55, -7 / 12, -1 / 12, 1 / 6]);
    // s = 0: every pixel becomes its grey (channel mean).
    expectValues(saturation(x, tf.tensor1d([0])), [0.4, 0.4, 0.4, -1 / 6, -1 / 6, -1 / 6]);
  });

  it('contrast scales each image around its mean over pixels and channels', () => {
    const x = tf.tensor4d([0, 1, 2, 3, 4, 5, 1, 1, 1, 1, 1, 7], [2, 1, 2, 3]);
    // sample 1: mean 2.5, c = 2 → 2x − 2.5; sample 2: mean 2, c = ½ → (x − 2)/2 + 2.
    expectValues(contrast(x, tf.tensor1d([2, 0.5])), [-2.5, -0.5, 1.5, 3.5, 5.5, 7.5, 1.5, 1.5, 1.5, 1.5, 1.5, 4.5]);
  });

  it('translate moves each sample by its own (dy, dx) and pads with zeros, channels apart', () => {
    // 3×3 images, channel 2 = 10 × channel 1; sample 2 is sample 1 + 100.
    const base = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const img = (off: number) => base.flatMap((v) => [v + off, 10 * (v + off)]);
    const x = tf.tensor4d([...img(0), ...img(100)], [2, 3, 3, 2]);
    const y = translate(x, ids([1, -2]), ids([-1, 0]));
    const channel = (b: number, c: number) => values(y).filter((_, i) => i % 2 === c).slice(b * 9, b * 9 + 9);
    // out[i][j] = x[i − dy][j − dx]: sample 1 (dy 1, dx −1) shows row 0 empty, rows 1–2 from rows 0–1 shifted left.
    expect(channel(0, 0)).toEqual(f32([0, 0, 0, 2, 3, 0, 5, 6, 0]));
    expect(channel(0, 1)).toEqual(f32([0, 0, 0, 20, 30, 0, 50, 60, 0]));
    // sample 2 (dy −2, dx 0): the last row moves to the top.
    expect(channel(1, 0)).toEqual(f32([107, 108, 109, 0, 0, 0, 0, 0, 0]));
    expect(channel(1, 1)).toEqual(f32([1070, 1080, 1090, 0, 0, 0, 0, 0, 0]));
    // No shift is the identity.
    expect(values(translate(x, ids([0, 0]), ids([0, 0])))).toEqual(values(x));
  });

  it('cutout zeroes a size × size square around (cy, cx) in every channel, clipped to the image', () => {
    const x = tf.ones([2, 4, 4, 2]) as tf.Tensor4D;
    // size 2 (half 1): sample 1 at (1, 2) zeroes rows 0–1, columns 1–2; size 2 is even, so the square's
    // first row and column are c − 1.
    const a = cutout(x, ids([1, 0]), ids([2, 3]), 2);
    const mask = (b: number) => values(a).filter((_, i) => i % 2 === 0).slice(b * 16, b * 16 + 16);
    expect(mask(0)).toEqual([1, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    // sample 2 at (0, 3): rows −1–0 → row 0, columns 2–3.
    expect(mask(1)).toEqual([1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(values(a).filter((_, i) => i % 2 === 1)).toEqual(values(a).filter((_, i) => i % 2 === 0));
    // size 3 (half 1) at (0, 3) on sample 2: rows 0–1, columns 2–3.
    const b = cutout(x, ids([1, 0]), ids([2, 3]), 3);
    expect(values(b).filter((_, i) => i % 2 === 0).slice(16)).toEqual([1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
    // Values are multiplied by the mask, not replaced.
    const c = cutout(tf.fill([1, 2, 2, 1], -0.5) as tf.Tensor4D, ids([0]), ids([0]), 1);
    expect(values(c).map((q) => q + 0)).toEqual([0, -0.5, -0.5, -0.5]); // + 0: −0.5 · 0 is −0
  });
});

describe('createAugment: the random transforms of a policy', () => {
  it('no policy is no augmentation: the input itself, and no seed drawn', () => {
    let drawn = 0;
    const aug = createAugment(augmentConfig([]), () => ++drawn);
    expect(aug).toBe(noAugment);
    const x = tf.zeros([2, 8, 8, 3]) as tf.Tensor4D;
    expect(aug(x)).toBe(x);
    expect(drawn).toBe(0);
  });

  it('keeps the shape; translation and cutout only move values or write zeros; one seed per transform', () => {
    let drawn = 0;
    const aug = createAugment(augmentConfig(['translation', 'cutout']), () => 1000 + ++drawn);
    const x = tf.randomUniform([6, 16, 16, 3], -1, 1, 'float32', 3) as tf.Tensor4D;
    const y = aug(x);
    expect(y.shape).toEqual([6, 16, 16, 3]);
    expect(drawn).toBe(2);
    const xv = values(x);
    const yv = values(y);
    const per = 16 * 16 * 3;
    for (let b = 0; b < 6; b++) {
      const own = new Set(xv.slice(b * per, (b + 1) * per));
      const out = yv.slice(b * per, (b + 1) * per);
      expect(out.every((v) => v === 0 || own.has(v))).toBe(true);
      // cutout 0.5 of 16 px: at least a 4 × 4 corner of the 8 × 8 square, 3 channels.
      expect(out.filter((v) => v === 0).length).toBeGreaterThanOrEqual(48);
    }
    const full = createAugment(augmentConfig(['color', 'translation', 'cutout']), () => 1000 + ++drawn);
    drawn = 0;
    expect(full(x).shape).toEqual([6, 16, 16, 3]);
    expect(drawn).toBe(3);
  });

  it('color draws brightness in [−½, ½), saturation in [0, 2), contrast in [½, 3/2), per sample', () => {
    // A 2 × 2 image: two grey pixels v ± e and two coloured ones with channel mean v (image mean v).
    // After brightness δ, saturation s, contrast c (around m = v + δ): greys → m ± c·e, the coloured
    // pixel (v − d, v, v + d) → (m − c·s·d, m, m + c·s·d). So δ, c and s can be read back.
    const [v, e, d] = [0.1, 0.3, 0.2];
    const pixel = [v + e, v + e, v + e, v - e, v - e, v - e, v - d, v, v + d, v + d, v, v - d];
    const n = 400;
    const x = tf.tensor4d(Array.from({ length: n }, () => pixel).flat(), [n, 2, 2, 3]);
    const y = values(createAugment(augmentConfig(['color']), seeds(7))(x));
    const delta: number[] = [];
    const sat: number[] = [];
    const con: number[] = [];
    for (let b = 0; b < n; b++) {
      const p = y.slice(b * 12, b * 12 + 12);
      const m = (p[0] + p[3]) / 2;
      const c = (p[0] - p[3]) / (2 * e);
      delta.push(m - v);
      con.push(c);
      sat.push((p[8] - p[6]) / (2 * c * d));
      expect(p[7]).toBeCloseTo(m, 5);
    }
    const inRange = (xs: number[], lo: number, hi: number) => xs.every((q) => q >= lo - 1e-5 && q < hi + 1e-5);
    expect(inRange(delta, -0.5, 0.5)).toBe(true);
    expect(inRange(sat, 0, 2)).toBe(true);
    expect(inRange(con, 0.5, 1.5)).toBe(true);
    // Spread over the whole range, independently per sample.
    expect([Math.min(...delta), Math.max(...delta)].map((q) => Math.abs(q) > 0.45)).toEqual([true, true]);
    expect(Math.min(...sat)).toBeLessThan(0.1);
    expect(Math.max(...sat)).toBeGreaterThan(1.9);
    expect(Math.min(...con)).toBeLessThan(0.55);
    expect(Math.max(...con)).toBeGreaterThan(1.45);
  });

  it('translation shifts by whole pixels in {−t, …, t}, t = round(side · fraction), each about equally often', () => {
    // An impulse at (8, 8) of a 16 px image: where it lands is the shift. fraction 1/8 → t = 2.
    const n = 400;
    const one = new Array(16 * 16 * 3).fill(0);
    for (let c = 0; c < 3; c++) one[(8 * 16 + 8) * 3 + c] = 1;
    const x = tf.tensor4d(Array.from({ length: n }, () => one).flat(), [n, 16, 16, 3]);
    const y = values(createAugment(augmentConfig(['translation']), seeds(11))(x));
    const counts = new Map<string, number>();
    const per = one.length;
    for (let b = 0; b < n; b++) {
      const at = y.slice(b * per, (b + 1) * per).indexOf(1);
      expect(at).toBeGreaterThanOrEqual(0);
      const pixel = Math.floor(at / 3);
      const [dy, dx] = [Math.floor(pixel / 16) - 8, (pixel % 16) - 8];
      expect(Math.abs(dy)).toBeLessThanOrEqual(2);
      expect(Math.abs(dx)).toBeLessThanOrEqual(2);
      for (const k of [`y${dy}`, `x${dx}`]) counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    for (const axis of ['y', 'x']) for (let s = -2; s <= 2; s++) expect(counts.get(`${axis}${s}`) ?? 0).toBeGreaterThan(50);
    // fraction 1/4 of 16 px: shifts up to 4.
    const wide = values(createAugment(augmentConfig(['translation'], { translation: 0.25 }), seeds(12))(x));
    let far = 0;
    for (let b = 0; b < n; b++) {
      const pixel = Math.floor(wide.slice(b * per, (b + 1) * per).indexOf(1) / 3);
      const dy = Math.floor(pixel / 16) - 8;
      expect(Math.abs(dy)).toBeLessThanOrEqual(4);
      if (Math.abs(dy) === 4) far++;
    }
    expect(far).toBeGreaterThan(0);
  });

  it('cutout zeroes one rectangle of at most round(side · fraction) per side, at least half of it inside', () => {
    const n = 200;
    const x = tf.ones([n, 16, 16, 1]) as tf.Tensor4D;
    const y = values(createAugment(augmentConfig(['cutout']), seeds(13))(x));
    const sides = new Set<number>();
    for (let b = 0; b < n; b++) {
      const img = y.slice(b * 256, (b + 1) * 256);
      const rows = new Set<number>();
      const cols = new Set<number>();
      img.forEach((v, i) => {
        if (v === 0) {
          rows.add(Math.floor(i / 16));
          cols.add(i % 16);
        }
      });
      // A full rectangle: every (row, col) pair of the zeroed rows and columns is zero, nothing else.
      expect(img.filter((v) => v === 0).length).toBe(rows.size * cols.size);
      for (const r of rows) for (const c of cols) expect(img[r * 16 + c]).toBe(0);
      for (const s of [rows.size, cols.size]) {
        expect(s).toBeGreaterThanOrEqual(4);
        expect(s).toBeLessThanOrEqual(8);
        sides.add(s);
      }
      const contiguous = (set: Set<number>) => Math.max(...set) - Math.min(...set) + 1 === set.size;
      expect(contiguous(rows) && contiguous(cols)).toBe(true);
    }
    expect(sides.has(8) && sides.has(4)).toBe(true);
  });

  it('is reproducible from the seeds, and other seeds give other parameters', () => {
    const cfg = augmentConfig(['color', 'translation', 'cutout']);
    const x = tf.randomUniform([4, 16, 16, 3], -1, 1, 'float32', 5) as tf.Tensor4D;
    const a = values(createAugment(cfg, seeds(42))(x));
    const b = values(createAugment(cfg, seeds(42))(x));
    const c = values(createAugment(cfg, seeds(43))(x));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    // Each call draws fresh parameters from the stream.
    const aug = createAugment(cfg, seeds(42));
    expect(values(aug(x))).toEqual(a);
    expect(values(aug(x))).not.toEqual(a);
  });

  it('refuses non-square images with a message naming the shape', () => {
    expect(() => createAugment(augmentConfig(['cutout']), seeds(1))(tf.zeros([1, 8, 16, 3]) as tf.Tensor4D)).toThrow(/square images, got 8×16/);
  });
});

describe('augment config', () => {
  it('is off by default, with DiffAugment fractions', () => {
    expect(parseGanConfig({}).augment).toEqual({ policy: [], translation: 0.125, cutout: 0.5 });
  });

  it('names the bad field', () => {
    expect(() => parseGanConfig({ augment: { policy: ['colour'] } })).toThrow(/augment\.policy\.0/);
    expect(() => parseGanConfig({ augment: { policy: ['cutout', 'cutout'] } })).toThrow(/augment\.policy: transforms must not repeat/);
    expect(() => parseGanConfig({ augment: { translation: 0.7 } })).toThrow(/augment\.translation/);
    expect(() => parseGanConfig({ augment: { cutout: 0 } })).toThrow(/augment\.cutout/);
    expect(() => parseGanConfig({ augment: { policy: [], flip: true } })).toThrow(/augment: unknown field\(s\) "flip"/);
  });
});

// ---- gradients against finite differences ----

/** Central differences of a scalar function of x at the given flat coordinates (float64 bookkeeping). */
function finiteDifference(f: (x: tf.Tensor4D) => tf.Scalar, x: tf.Tensor4D, coords: number[], eps: number): number[] {
  const base = x.dataSync().slice();
  const at = (i: number, d: number) => {
    const v = base.slice();
    v[i] += d;
    return tf.tidy(() => f(tf.tensor4d(v, x.shape)).dataSync()[0]);
  };
  return coords.map((i) => (at(i, eps) - at(i, -eps)) / (2 * eps));
}

function expectClose(actual: number[], expected: number[], rel: number) {
  const scale = Math.max(1e-2, ...expected.map(Math.abs));
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]) / scale, `coordinate ${i}: ${a} vs ${expected[i]}`).toBeLessThan(rel));
}

const SHAPE: [number, number, number, number] = [2, 6, 6, 3];
const COORDS = [0, 7, 20, 41, 64, 99, 107, 150, 181, 200, 215];

describe('gradients match finite differences', () => {
  const x = tf.randomUniform(SHAPE, -1, 1, 'float32', 21) as tf.Tensor4D;
  const w = tf.randomNormal(SHAPE, 0, 1, 'float32', 22);
  const fixed: Record<string, (v: tf.Tensor4D) => tf.Tensor4D> = {
    brightness: (v) => brightness(v, tf.tensor1d([0.3, -0.2])),
    saturation: (v) => saturation(v, tf.tensor1d([1.7, 0.4])),
    contrast: (v) => contrast(v, tf.tensor1d([0.6, 1.4])),
    translate: (v) => translate(v, ids([1, -2]), ids([2, 0])),
    cutout: (v) => cutout(v, ids([2, 5]), ids([3, 0]), 3),
  };
  for (const [name, t] of Object.entries(fixed)) {
    it(`${name} (first order)`, () => {
      // A nonlinear read-out, so the gradient depends on where it is taken.
      const f = (v: tf.Tensor4D) => tf.sum(tf.mul(w, tf.square(t(v)))) as tf.Scalar;
      const analytic = tf.grad(f as (v: tf.Tensor) => tf.Scalar)(x).dataSync();
      expectClose(COORDS.map((i) => analytic[i]), finiteDifference(f, x, COORDS, 1e-2), 2e-3);
    });
  }

  it('the whole random policy, with its parameters fixed by the seeds (first order)', () => {
    const cfg = augmentConfig(['color', 'translation', 'cutout'], { translation: 0.34, cutout: 0.5 });
    const f = (v: tf.Tensor4D) => tf.sum(tf.mul(w, tf.square(createAugment(cfg, seeds(77))(v)))) as tf.Scalar;
    const analytic = tf.grad(f as (v: tf.Tensor) => tf.Scalar)(x).dataSync();
    expectClose(COORDS.map((i) => analytic[i]), finiteDifference(f, x, COORDS, 1e-2), 2e-3);
    // The transform did something: the gradient differs from the un-augmented one.
    const plain = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(w, tf.square(v))))(x).dataSync();
    expect(COORDS.some((i) => Math.abs(plain[i] - analytic[i]) > 1e-2)).toBe(true);
  });

  it('second order, as in a gradient penalty: λ·E(‖∇ₓ D(T(x))‖ − 1)² differentiated in the critic weights and in x', () => {
    // A smooth critic D(y)_b = Σ v ⊙ sin(θ·y_b + u), so finite differences are valid everywhere.
    const cfg = augmentConfig(['color', 'translation', 'cutout'], { translation: 0.34, cutout: 0.5 });
    const v = tf.randomNormal(SHAPE.slice(1), 0, 0.3, 'float32', 31);
    const u = tf.randomNormal(SHAPE.slice(1), 0, 1, 'float32', 32);
    const penalty = (xs: tf.Tensor4D, theta: tf.Tensor) => {
      const critic = (y: tf.Tensor4D) => tf.sum(tf.mul(v, tf.sin(tf.add(tf.mul(theta, y), u))), [1, 2, 3]);
      const g = tf.grad((z: tf.Tensor) => tf.sum(critic(createAugment(cfg, seeds(91))(z as tf.Tensor4D))))(xs);
      const norm = tf.sqrt(tf.sum(tf.square(g), [1, 2, 3]));
      return tf.mul(tf.mean(tf.square(tf.sub(norm, 1))), 10) as tf.Scalar;
    };
    const theta0 = 1.3;
    // In the critic's weight θ.
    const dTheta = tf.grad((t: tf.Tensor) => penalty(x, t))(tf.scalar(theta0)).dataSync()[0];
    const h = 1e-2;
    const p = (t: number) => tf.tidy(() => penalty(x, tf.scalar(t)).dataSync()[0]);
    const fdTheta = (p(theta0 + h) - p(theta0 - h)) / (2 * h);
    expect(Math.abs(fdTheta)).toBeGreaterThan(0.1);
    expect(Math.abs(dTheta - fdTheta) / Math.abs(fdTheta)).toBeLessThan(1e-2);
    // In the images.
    const f = (xs: tf.Tensor4D) => penalty(xs, tf.scalar(theta0));
    const analytic = tf.grad(f as (z: tf.Tensor) => tf.Scalar)(x).dataSync();
    expectClose(COORDS.map((i) => analytic[i]), finiteDifference(f, x, COORDS, 1e-2), 2e-2);
  });
});
