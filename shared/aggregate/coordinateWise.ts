/**
 * Base for robust, coordinate-wise aggregators (median, trimmed mean): for every scalar position,
 * the values of all clients are gathered, sorted, and reduced to one number.
 *
 * Unlike FedAvg these rules cannot stream: every update is kept in memory until `result()`, so
 * memory is O(clients × model size). Updates are kept by reference; do not modify their tensors
 * after `add()`. They are unweighted: `examples` is validated and counted but does not weigh in.
 */
import type { WeightSet } from '../weights.ts';
import { AggregationError, layoutOf, validateUpdate, type Aggregator, type ClientUpdate, type WeightLayout } from './types.ts';

/** Up to this many clients, an insertion sort beats the overhead of TypedArray.prototype.sort. */
const INSERTION_SORT_MAX = 32;

/** Sorts `v` ascending in place (NaN never occurs: updates are validated finite). */
function sortValues(v: Float64Array): void {
  if (v.length > INSERTION_SORT_MAX) {
    v.sort();
    return;
  }
  for (let i = 1; i < v.length; i++) {
    const x = v[i];
    let j = i - 1;
    while (j >= 0 && v[j] > x) {
      v[j + 1] = v[j];
      j--;
    }
    v[j + 1] = x;
  }
}

export abstract class CoordinateWiseAggregator implements Aggregator {
  abstract readonly name: string;
  /** Every update is kept by reference until result(). */
  readonly retainsUpdates = true;
  private layout: WeightLayout | undefined;
  private readonly updates: ClientUpdate[] = [];
  private examples = 0;

  /** @param reference layout every update must match; by default the first update's layout. */
  constructor(reference?: WeightLayout) {
    this.layout = reference && layoutOf(reference);
  }

  /** Reduces the sorted values of one coordinate (one per client) to the aggregated value. */
  protected abstract reduceSorted(sorted: Float64Array): number;

  add(update: ClientUpdate): void {
    const layout = this.layout ?? layoutOf(update.weights);
    validateUpdate(update, layout);
    this.layout = layout;
    this.updates.push(update);
    this.examples += update.examples;
  }

  count(): number {
    return this.updates.length;
  }

  totalExamples(): number {
    return this.examples;
  }

  result(): WeightSet {
    if (this.updates.length === 0 || this.layout === undefined) {
      throw new AggregationError('empty', `${this.name} has no update to aggregate yet`);
    }
    const n = this.updates.length;
    const column = new Float64Array(n);
    return {
      fingerprint: this.layout.fingerprint,
      tensors: this.layout.tensors.map((spec, k) => {
        const inputs = this.updates.map((u) => u.weights.tensors[k].data);
        const out = new Float32Array(inputs[0].length);
        for (let i = 0; i < out.length; i++) {
          for (let c = 0; c < n; c++) column[c] = inputs[c][i];
          sortValues(column);
          out[i] = this.reduceSorted(column);
        }
        return { name: spec.name, shape: [...spec.shape], data: out };
      }),
    };
  }
}
