/**
 * 2-D t-SNE embedding of feature vectors, for the real-vs-synthetic plot. The optimiser is the npm
 * package @keckelt/tsne (exact t-SNE, a maintained TypeScript port of Karpathy's tsnejs); this file
 * feeds it squared Euclidean distances (rescaled to mean 1, which leaves the embedding unchanged but
 * keeps its perplexity search in range) and makes its random initialisation seeded.
 * Exact t-SNE is O(n²) per iteration: keep n to a few thousand at most.
 */
import { TSNE } from '@keckelt/tsne';
import type { Features } from './features.ts';
import { Rng } from '../rng.ts';

export interface TsneOptions {
  perplexity?: number;
  iterations?: number;
  learningRate?: number;
  seed?: number;
}

/** Returns n points as [x, y]. */
export function tsne2d(f: Features, opts: TsneOptions = {}): [number, number][] {
  const n = f.rows;
  if (n < 2) return Array.from({ length: n }, () => [0, 0]);
  const d = f.dim;
  const dist: number[][] = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  let total = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let t = 0; t < d; t++) {
        const diff = f.data[i * d + t] - f.data[j * d + t];
        s += diff * diff;
      }
      dist[i][j] = dist[j][i] = s;
      total += s;
    }
  }
  const meanDist = total / ((n * (n - 1)) / 2) || 1;
  for (const r of dist) for (let j = 0; j < n; j++) r[j] /= meanDist;
  const perplexity = Math.min(opts.perplexity ?? 30, Math.max(2, Math.floor((n - 1) / 3)));
  const rng = new Rng(opts.seed ?? 0);
  const original = Math.random;
  // The package draws its initial layout from Math.random: seed it for a reproducible plot.
  Math.random = () => rng.next();
  try {
    const model = new TSNE({ perplexity, epsilon: opts.learningRate ?? 10, dim: 2 });
    model.initDataDist(dist);
    const iterations = opts.iterations ?? 500;
    for (let i = 0; i < iterations; i++) model.step();
    return (model.getSolution() as number[][]).map((p) => [p[0], p[1]] as [number, number]);
  } finally {
    Math.random = original;
  }
}
