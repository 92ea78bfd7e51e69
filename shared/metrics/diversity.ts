/**
 * Diversity as the mean pairwise Euclidean distance between feature vectors of one set. A generator
 * that collapses onto a few modes gives synthetic tiles whose mean pairwise distance is well below
 * that of the real tiles of the same class.
 */
import type { Features } from './features.ts';
import { Rng } from '../rng.ts';

export interface DiversityOptions {
  /** Use at most this many vectors (a seeded random subset) to bound the O(n²·d) cost. Default 1000. */
  maxRows?: number;
  seed?: number;
}

export function meanPairwiseDistance(f: Features, opts: DiversityOptions = {}): number {
  if (f.rows < 2) throw new Error(`mean pairwise distance needs at least 2 vectors, got ${f.rows}`);
  const maxRows = opts.maxRows ?? 1000;
  let rows = Array.from({ length: f.rows }, (_, i) => i);
  if (rows.length > maxRows) rows = new Rng(opts.seed ?? 0).shuffle(rows).slice(0, maxRows);
  const d = f.dim;
  let sum = 0;
  let pairs = 0;
  for (let a = 0; a < rows.length; a++) {
    const oa = rows[a] * d;
    for (let b = a + 1; b < rows.length; b++) {
      const ob = rows[b] * d;
      let s = 0;
      for (let t = 0; t < d; t++) {
        const diff = f.data[oa + t] - f.data[ob + t];
        s += diff * diff;
      }
      sum += Math.sqrt(s);
      pairs++;
    }
  }
  return sum / pairs;
}
