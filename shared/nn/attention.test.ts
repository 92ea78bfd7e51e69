import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { multiHeadSelfAttention } from './attention.ts';
import { ParamStore } from './params.ts';
import { gelu } from './transformer.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Plain-JS multi-head self-attention, written straight from the formula, for one item [N][D]. */
function referenceAttention(
  x: number[][],
  w: Map<string, Float32Array>,
  name: string,
  heads: number,
  bias?: number[][][],
  mask?: number[][],
): number[][] {
  const n = x.length;
  const d = x[0].length;
  const dh = d / heads;
  const project = (rows: number[][], layer: string) =>
    rows.map((row) => {
      const k = w.get(`p/${name}/${layer}/kernel`)!;
      const b = w.get(`p/${name}/${layer}/bias`)!;
      return Array.from({ length: d }, (_, o) => row.reduce((s, v, i) => s + v * k[i * d + o], b[o]));
    });
  const q = project(x, 'query');
  const k = project(x, 'key');
  const v = project(x, 'value');
  const concat = Array.from({ length: n }, () => new Array<number>(d).fill(0));
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < n; i++) {
      const logits = Array.from({ length: n }, (_, j) => {
        let s = 0;
        for (let c = 0; c < dh; c++) s += q[i][h * dh + c] * k[j][h * dh + c];
        return s / Math.sqrt(dh) + (bias ? bias[h][i][j] : 0) + (mask ? mask[i][j] : 0);
      });
      const max = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - max));
      const z = e.reduce((a, b) => a + b, 0);
      for (let c = 0; c < dh; c++) concat[i][h * dh + c] = e.reduce((s, ej, j) => s + (ej / z) * v[j][h * dh + c], 0);
    }
  }
  return project(concat, 'output');
}

function setup(dim: number, heads: number) {
  const p = new ParamStore('p', 3);
  const att = multiHeadSelfAttention(p, 'att', dim, heads);
  // Non-zero biases so the reference checks them too.
  for (const e of p.all()) if (e.name.endsWith('/bias')) e.variable.assign(tf.randomUniform(e.variable.shape, -0.5, 0.5, 'float32', 11));
  const weights = new Map(p.read().map((t) => [t.name, t.data]));
  return { p, att, weights };
}

function nested(data: Float32Array, shape: number[]): number[][][] {
  const [a, b, c] = shape;
  return Array.from({ length: a }, (_, i) => Array.from({ length: b }, (_, j) => Array.from(data.subarray((i * b + j) * c, (i * b + j + 1) * c))));
}

describe('multiHeadSelfAttention', () => {
  it('names its weights query/key/value/output and refuses dims not divisible by heads', () => {
    const { p } = setup(8, 2);
    expect(p.all().map((e) => e.name)).toEqual([
      'p/att/query/kernel', 'p/att/query/bias', 'p/att/key/kernel', 'p/att/key/bias',
      'p/att/value/kernel', 'p/att/value/bias', 'p/att/output/kernel', 'p/att/output/bias',
    ]);
    expect(() => multiHeadSelfAttention(new ParamStore('q', 1), 'att', 10, 4)).toThrow(/dim 10 is not divisible by heads 4/);
    p.dispose();
  });

  it('matches a plain JS computation, with and without a per-head bias', () => {
    const { p, att, weights } = setup(8, 2);
    const xData = tf.randomNormal([3, 5, 8], 0, 1, 'float32', 5);
    const biasData = tf.randomNormal([2, 5, 5], 0, 1, 'float32', 6) as tf.Tensor3D;
    const x = nested(xData.dataSync() as Float32Array, [3, 5, 8]);
    const bias = nested(biasData.dataSync() as Float32Array, [2, 5, 5]);
    for (const withBias of [false, true]) {
      const out = tf.tidy(() => att.apply(xData as tf.Tensor3D, withBias ? { bias: biasData } : {}));
      expect(out.shape).toEqual([3, 5, 8]);
      const got = nested(out.dataSync() as Float32Array, [3, 5, 8]);
      for (let b = 0; b < 3; b++) {
        const want = referenceAttention(x[b], weights, 'att', 2, withBias ? bias : undefined);
        for (let i = 0; i < 5; i++) for (let c = 0; c < 8; c++) expect(got[b][i][c]).toBeCloseTo(want[i][c], 4);
      }
      out.dispose();
    }
    tf.dispose([xData, biasData]);
    p.dispose();
  });

  it('applies mask group b mod G to item b, and masked tokens have no influence', () => {
    const { p, att, weights } = setup(4, 2);
    // Two groups: group 0 keeps everything; group 1 splits the 4 tokens into {0,1} and {2,3}.
    const cut = [
      [0, 0, -100, -100],
      [0, 0, -100, -100],
      [-100, -100, 0, 0],
      [-100, -100, 0, 0],
    ];
    const open = cut.map((r) => r.map(() => 0));
    const mask = tf.tensor3d([open, cut]);
    const xData = tf.randomNormal([4, 4, 4], 0, 1, 'float32', 8) as tf.Tensor3D;
    const x = nested(xData.dataSync() as Float32Array, [4, 4, 4]);
    const out = tf.tidy(() => att.apply(xData, { mask }));
    const got = nested(out.dataSync() as Float32Array, [4, 4, 4]);
    for (let b = 0; b < 4; b++) {
      const want = referenceAttention(x[b], weights, 'att', 2, undefined, b % 2 === 0 ? open : cut);
      for (let i = 0; i < 4; i++) for (let c = 0; c < 4; c++) expect(got[b][i][c]).toBeCloseTo(want[i][c], 4);
    }
    // Changing tokens 2 and 3 of item 1 (cut) leaves tokens 0 and 1 unchanged; in item 0 (open) it does not.
    const changed = tf.tidy(() => {
      const noise = tf.concat([tf.zeros([4, 2, 4]), tf.ones([4, 2, 4])], 1);
      return att.apply(tf.add(xData, noise) as tf.Tensor3D, { mask });
    });
    const got2 = nested(changed.dataSync() as Float32Array, [4, 4, 4]);
    for (let i = 0; i < 2; i++) for (let c = 0; c < 4; c++) expect(got2[1][i][c]).toBeCloseTo(got[1][i][c], 5);
    expect(Math.abs(got2[0][0][0] - got[0][0][0])).toBeGreaterThan(1e-4);
    expect(() => tf.tidy(() => att.apply(tf.zeros([3, 4, 4]) as tf.Tensor3D, { mask }))).toThrow(/batch 3 is not a multiple of the mask's 2 groups/);
    tf.dispose([mask, xData, out, changed]);
    p.dispose();
  });

  it('leaks no tensors and has finite second-order gradients', () => {
    const { p, att } = setup(4, 2);
    const x = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 9) as tf.Tensor3D;
    const before = tf.memory().numTensors;
    const grads = tf.tidy(() => {
      const { grads } = tf.variableGrads(() => {
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.square(att.apply(t as tf.Tensor3D))))(x);
        return tf.sum(tf.square(g)) as tf.Scalar;
      }, p.trainableVariables());
      return Object.values(grads);
    });
    expect(grads.length).toBe(8);
    for (const g of grads) expect(Array.from(g.dataSync()).every(Number.isFinite)).toBe(true);
    expect(grads.some((g) => g.dataSync().some((v) => v !== 0))).toBe(true);
    tf.dispose(grads);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    p.dispose();
  });
});

describe('gelu', () => {
  it('is x·Φ(x) (exact, erf-based)', () => {
    const xs = [-3, -1, -0.5, 0, 0.5, 1, 3];
    const got = tf.tidy(() => gelu(tf.tensor1d(xs)).dataSync());
    // Φ(x) from the complementary error function values at these points.
    const phi: Record<number, number> = { [-3]: 0.0013498980, [-1]: 0.1586552539, [-0.5]: 0.3085375387, 0: 0.5, 0.5: 0.6914624613, 1: 0.8413447461, 3: 0.9986501020 };
    xs.forEach((x, i) => expect(got[i]).toBeCloseTo(x * phi[x], 5));
  });
});
