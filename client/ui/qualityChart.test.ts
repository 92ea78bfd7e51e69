import { describe, expect, it } from 'vitest';
import type { RoundRecord } from '../api.ts';
import { qualityPoints } from './qualityChart.ts';

const record = (round: number, kid?: number, modelRound = round - 1): RoundRecord => ({
  round,
  participants: 2,
  examples: 20,
  dLoss: 1,
  gLoss: 1,
  seconds: 1,
  ...(kid !== undefined ? { quality: { round: modelRound, kid, kidStd: 0, hospitals: 2, examples: 20, features: 'mobilenet-v2' } } : {}),
});

describe('quality chart points', () => {
  it('plots each measured model at its own round (entry r measured model r − 1), sorted, with the lowest KID as best', () => {
    const { points, best } = qualityPoints([record(11, 0.05), record(1), record(6, 0.08), record(16, 0.06), record(12)]);
    expect(points.map((p) => [p.round, p.kid])).toEqual([
      [5, 0.08],
      [10, 0.05],
      [15, 0.06],
    ]);
    expect(best).toMatchObject({ round: 10, kid: 0.05 });
  });

  it('no quality yet: no points, no best; a non-finite figure is left out', () => {
    expect(qualityPoints([record(1), record(2)])).toEqual({ points: [], best: null });
    expect(qualityPoints([record(3, Number.NaN)]).points).toEqual([]);
  });
});
