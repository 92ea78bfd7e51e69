import { describe, expect, it } from 'vitest';
import { createAggregator, FedAvgAccumulator, MedianAggregator, TrimmedMeanAggregator, type AggregatorConfig } from './index.ts';
import { layoutOf } from './types.ts';
import { upd, values, ws } from './testUtil.ts';

describe('createAggregator', () => {
  it('builds the configured strategy', () => {
    expect(createAggregator({ type: 'fedavg' })).toBeInstanceOf(FedAvgAccumulator);
    expect(createAggregator({ type: 'median' })).toBeInstanceOf(MedianAggregator);
    const tm = createAggregator({ type: 'trimmed-mean', beta: 0.2 });
    expect(tm).toBeInstanceOf(TrimmedMeanAggregator);
    expect((tm as TrimmedMeanAggregator).beta).toBe(0.2);
  });

  it('gives different results for the three strategies on the same updates', () => {
    const updates = [upd([0, 0, 0, 0], [0, 0, 0], 1), upd([1, 1, 1, 1], [1, 1, 1], 1), upd([8, 8, 8, 8], [8, 8, 8], 2)];
    const run = (cfg: AggregatorConfig) => {
      const agg = createAggregator(cfg, layoutOf(ws([0, 0, 0, 0], [0, 0, 0])));
      updates.forEach((u) => agg.add(u));
      return values(agg.result())[0][0];
    };
    expect(run({ type: 'fedavg' })).toBe(17 / 4);
    expect(run({ type: 'median' })).toBe(1);
    expect(run({ type: 'trimmed-mean', beta: 0 })).toBe(3);
  });

  it('rejects unknown types and invalid parameters', () => {
    expect(() => createAggregator({ type: 'krum' } as unknown as AggregatorConfig)).toThrow(/unknown aggregator type "krum"/);
    expect(() => createAggregator({ type: 'trimmed-mean', beta: 0.5 })).toThrow(/beta/);
  });
});
