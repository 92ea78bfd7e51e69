/**
 * Coordinate-wise β-trimmed mean (Yin et al., 2018): for each coordinate, drop the ⌊β·n⌋ smallest and
 * the ⌊β·n⌋ largest of the n client values and average the rest. β = 0 is the plain (unweighted)
 * mean; β close to 0.5 approaches the median. Unweighted, and it keeps all updates in memory until
 * `result()` (see CoordinateWiseAggregator).
 */
import type { WeightSet } from '../weights.ts';
import { CoordinateWiseAggregator } from './coordinateWise.ts';
import type { ClientUpdate, WeightLayout } from './types.ts';

/** Number of values trimmed from each end for n clients. The epsilon absorbs float error in β·n (0.29·100 = 28.999…). */
export function trimCount(beta: number, n: number): number {
  return Math.floor(beta * n + 1e-9);
}

function checkBeta(beta: number): void {
  if (!(Number.isFinite(beta) && beta >= 0 && beta < 0.5)) {
    throw new RangeError(`trimmed-mean beta must be in [0, 0.5), got ${beta}`);
  }
}

export class TrimmedMeanAggregator extends CoordinateWiseAggregator {
  readonly name = 'trimmed-mean';

  constructor(
    readonly beta: number,
    reference?: WeightLayout,
  ) {
    checkBeta(beta);
    super(reference);
  }

  protected reduceSorted(sorted: Float64Array): number {
    const n = sorted.length;
    // β < 0.5 guarantees n − 2k ≥ 1.
    const k = trimCount(this.beta, n);
    let sum = 0;
    for (let i = k; i < n - k; i++) sum += sorted[i];
    return sum / (n - 2 * k);
  }
}

/** Coordinate-wise β-trimmed mean of all `updates`. */
export function trimmedMean(updates: readonly ClientUpdate[], beta: number): WeightSet {
  const agg = new TrimmedMeanAggregator(beta);
  for (const u of updates) agg.add(u);
  return agg.result();
}
