import { describe, expect, it } from 'vitest';
import { featuresFromRows } from './features.ts';
import { closestPairs, nearestNeighbours, summariseDistances } from './nearestNeighbour.ts';
import { meanPairwiseDistance } from './diversity.ts';

describe('nearest neighbours and diversity', () => {
  it('finds each query’s closest reference and its Euclidean distance', () => {
    const ref = featuresFromRows([[0, 0], [10, 0], [0, 10]]);
    const q = featuresFromRows([[1, 1], [9, 0], [0, 10], [3, 4]]);
    const nn = nearestNeighbours(q, ref);
    expect(Array.from(nn.index)).toEqual([0, 1, 2, 0]);
    expect(Array.from(nn.distance)).toEqual([Math.SQRT2, 1, 0, 5]);
    expect(closestPairs(nn, 2)).toEqual([
      { query: 2, reference: 2, distance: 0 },
      { query: 1, reference: 1, distance: 1 },
    ]);
    expect(summariseDistances(nn.distance).median).toBeCloseTo((Math.SQRT2 + 1) / 2, 12);
  });

  it('gives an exact zero for a copied vector, even with large coordinates', () => {
    const big = [1e6 + 0.1, -3e5, 7e5];
    const nn = nearestNeighbours(featuresFromRows([big]), featuresFromRows([[0, 0, 0], big]));
    expect(nn.distance[0]).toBe(0);
    expect(nn.index[0]).toBe(1);
  });

  it('mean pairwise distance drops when a set collapses', () => {
    const spread = featuresFromRows([[0, 0], [3, 4], [6, 8]]); // distances 5, 10, 5
    expect(meanPairwiseDistance(spread)).toBeCloseTo(20 / 3, 12);
    const collapsed = featuresFromRows([[1, 1], [1, 1], [1, 1.1]]);
    expect(meanPairwiseDistance(collapsed)).toBeLessThan(0.1);
    expect(() => meanPairwiseDistance(featuresFromRows([[1]]))).toThrow(/at least 2 vectors/);
    // A subset cap still gives a sensible value.
    const many = featuresFromRows(Array.from({ length: 50 }, (_, i) => [i % 2 ? 1 : -1]));
    expect(meanPairwiseDistance(many, { maxRows: 10, seed: 1 })).toBeGreaterThan(0.5);
  });
});
