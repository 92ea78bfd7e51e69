/**
 * A linear head on frozen pretrained features (MobileNetV2 from nsfwjs): logistic regression on
 * standardised features, trained by mini-batch Adam with L2 weight decay, in plain JS. Binary: it
 * predicts the probability of the positive class.
 */
import type { Features } from '../../shared/metrics/features.ts';
import { Rng } from '../../shared/rng.ts';

export interface LinearProbe {
  /** Probability of the positive class for each row. */
  predict(f: Features): Float64Array;
}

export interface LinearProbeOptions {
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  l2?: number;
  seed: number;
}

export function trainLinearProbe(f: Features, positive: readonly boolean[], opts: LinearProbeOptions): LinearProbe {
  if (positive.length !== f.rows) throw new Error(`${positive.length} labels for ${f.rows} feature rows`);
  const d = f.dim;
  const mu = new Float64Array(d);
  const sd = new Float64Array(d);
  for (let i = 0; i < f.rows; i++) for (let j = 0; j < d; j++) mu[j] += f.data[i * d + j] / f.rows;
  for (let i = 0; i < f.rows; i++) for (let j = 0; j < d; j++) sd[j] += (f.data[i * d + j] - mu[j]) ** 2 / f.rows;
  for (let j = 0; j < d; j++) sd[j] = Math.sqrt(sd[j]) || 1;
  const w = new Float64Array(d + 1); // last = bias
  const m = new Float64Array(d + 1);
  const v = new Float64Array(d + 1);
  const g = new Float64Array(d + 1);
  const x = new Float64Array(d);
  const lr = opts.learningRate ?? 1e-2;
  const l2 = opts.l2 ?? 1e-3;
  const batch = opts.batchSize ?? 64;
  const rng = new Rng(opts.seed);
  const order = Array.from({ length: f.rows }, (_, i) => i);
  let t = 0;
  for (let epoch = 0; epoch < (opts.epochs ?? 60); epoch++) {
    rng.shuffle(order);
    for (let s = 0; s < order.length; s += batch) {
      g.fill(0);
      const idx = order.slice(s, s + batch);
      for (const i of idx) {
        let z = w[d];
        for (let j = 0; j < d; j++) {
          x[j] = (f.data[i * d + j] - mu[j]) / sd[j];
          z += w[j] * x[j];
        }
        const err = 1 / (1 + Math.exp(-z)) - (positive[i] ? 1 : 0);
        for (let j = 0; j < d; j++) g[j] += (err * x[j]) / idx.length;
        g[d] += err / idx.length;
      }
      for (let j = 0; j < d; j++) g[j] += l2 * w[j];
      t++;
      for (let j = 0; j <= d; j++) {
        m[j] = 0.9 * m[j] + 0.1 * g[j];
        v[j] = 0.999 * v[j] + 0.001 * g[j] * g[j];
        w[j] -= (lr * (m[j] / (1 - 0.9 ** t))) / (Math.sqrt(v[j] / (1 - 0.999 ** t)) + 1e-8);
      }
    }
  }
  return {
    predict(q) {
      if (q.dim !== d) throw new Error(`linear probe trained on ${d}-d features, got ${q.dim}-d`);
      const out = new Float64Array(q.rows);
      for (let i = 0; i < q.rows; i++) {
        let z = w[d];
        for (let j = 0; j < d; j++) z += (w[j] * (q.data[i * d + j] - mu[j])) / sd[j];
        out[i] = 1 / (1 + Math.exp(-z));
      }
      return out;
    },
  };
}
