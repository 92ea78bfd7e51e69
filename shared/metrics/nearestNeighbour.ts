/**
 * Nearest neighbours in feature space (Euclidean), for the memorization check: for every query
 * vector (a synthetic tile, or a real test tile as the control), the distance to the closest vector
 * of a reference set (the real training tiles) and which one it is.
 */
import { assertSameDim, FeatureError, type Features } from './features.ts';
import { percentile } from './summary.ts';

export interface NearestNeighbours {
  /** Distance from each query row to its nearest reference row. */
  distance: Float64Array;
  /** Index of that reference row. */
  index: Int32Array;
}

function squaredNorms(f: Features): Float64Array {
  const out = new Float64Array(f.rows);
  for (let i = 0; i < f.rows; i++) {
    let s = 0;
    const o = i * f.dim;
    for (let j = 0; j < f.dim; j++) s += f.data[o + j] * f.data[o + j];
    out[i] = s;
  }
  return out;
}

export function nearestNeighbours(query: Features, reference: Features): NearestNeighbours {
  assertSameDim(query, reference, 'nearest neighbours');
  if (reference.rows === 0) throw new FeatureError('nearest neighbours: the reference set is empty');
  const d = query.dim;
  const qn = squaredNorms(query);
  const rn = squaredNorms(reference);
  const distance = new Float64Array(query.rows);
  const index = new Int32Array(query.rows);
  for (let i = 0; i < query.rows; i++) {
    const qo = i * d;
    let best = Infinity;
    let bestJ = -1;
    for (let j = 0; j < reference.rows; j++) {
      const ro = j * d;
      let dot = 0;
      for (let t = 0; t < d; t++) dot += query.data[qo + t] * reference.data[ro + t];
      const d2 = qn[i] + rn[j] - 2 * dot;
      if (d2 < best) {
        best = d2;
        bestJ = j;
      }
    }
    // Recompute the winner directly: the norm expansion loses precision for near-identical vectors.
    let exact = 0;
    const ro = bestJ * d;
    for (let t = 0; t < d; t++) exact += (query.data[qo + t] - reference.data[ro + t]) ** 2;
    distance[i] = Math.sqrt(exact);
    index[i] = bestJ;
  }
  return { distance, index };
}

export interface DistanceSummary {
  p5: number;
  median: number;
}

export function summariseDistances(distance: ArrayLike<number>): DistanceSummary {
  return { p5: percentile(distance, 5), median: percentile(distance, 50) };
}

export interface ClosestPair {
  query: number;
  reference: number;
  distance: number;
}

/** The `k` query rows closest to the reference set, closest first. */
export function closestPairs(nn: NearestNeighbours, k: number): ClosestPair[] {
  return Array.from(nn.distance, (distance, query) => ({ query, reference: nn.index[query], distance }))
    .sort((a, b) => a.distance - b.distance || a.query - b.query)
    .slice(0, Math.max(0, k));
}
