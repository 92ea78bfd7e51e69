/**
 * Coordinate-wise median (Yin et al., 2018): robust to a minority of arbitrary (Byzantine) updates.
 * Unweighted, and it keeps all updates in memory until `result()` (see CoordinateWiseAggregator).
 */
import type { WeightSet } from '../weights.ts';
import { CoordinateWiseAggregator } from './coordinateWise.ts';
import type { ClientUpdate } from './types.ts';

export class MedianAggregator extends CoordinateWiseAggregator {
  readonly name = 'median';

  /** The middle value; for an even count, the mean of the two middle values. */
  protected reduceSorted(sorted: Float64Array): number {
    const n = sorted.length;
    const mid = n >> 1;
    return n % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }
}

/** Coordinate-wise median of all `updates`. */
export function coordinateMedian(updates: readonly ClientUpdate[]): WeightSet {
  const agg = new MedianAggregator();
  for (const u of updates) agg.add(u);
  return agg.result();
}
