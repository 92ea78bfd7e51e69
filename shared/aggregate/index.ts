/**
 * Aggregation strategies and a factory that builds one from configuration.
 */
import { FedAvgAccumulator } from './fedavg.ts';
import { MedianAggregator } from './median.ts';
import { TrimmedMeanAggregator } from './trimmedMean.ts';
import type { Aggregator, WeightLayout } from './types.ts';

export type AggregatorConfig = { type: 'fedavg' } | { type: 'median' } | { type: 'trimmed-mean'; beta: number };

/**
 * A fresh aggregator for one round. `reference` (typically the current global weights) fixes the
 * layout updates must match; without it the first update defines it.
 */
export function createAggregator(cfg: AggregatorConfig, reference?: WeightLayout): Aggregator {
  switch (cfg.type) {
    case 'fedavg':
      return new FedAvgAccumulator(reference);
    case 'median':
      return new MedianAggregator(reference);
    case 'trimmed-mean':
      return new TrimmedMeanAggregator(cfg.beta, reference);
    default: {
      const unknown: never = cfg;
      throw new RangeError(`unknown aggregator type ${JSON.stringify((unknown as { type: unknown }).type)} (expected fedavg, median or trimmed-mean)`);
    }
  }
}

export { CoordinateWiseAggregator } from './coordinateWise.ts';
export { fedAvg, FedAvgAccumulator } from './fedavg.ts';
export { coordinateMedian, MedianAggregator } from './median.ts';
export { trimCount, trimmedMean, TrimmedMeanAggregator } from './trimmedMean.ts';
export { AggregationError, layoutOf, validateUpdate } from './types.ts';
export type { AggregationErrorReason, Aggregator, ClientUpdate, ValidateUpdateOptions, WeightLayout } from './types.ts';
export { l2Distance } from './updateNorm.ts';
