import { describe, expect, it } from 'vitest';
import type { RoundRecord } from '../api.ts';
import { probedModelRound } from '../../shared/fed/qualitySchedule.ts';
import { QUALITY_PENDING, qualityEmptyText, qualityPoints, wrapText } from './qualityChart.ts';

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

describe('what the empty quality chart says', () => {
  it('tells staff when the first point comes, or that none will, as the federation schedules its probes', () => {
    expect(qualityEmptyText(5, 20)).toBe('The hospitals check the global model every 5 rounds: the first point comes with round 6, for the model of round 5.');
    expect(qualityEmptyText(1, 3)).toBe('The hospitals check the global model after every round: the first point comes with round 2, for the model of round 1.');
    // The walkthrough's federation: 2 rounds, checks every 5: it finished with the chart still promising a curve.
    expect(qualityEmptyText(5, 2)).toBe('No quality check during this federation: the hospitals check the global model every 5 rounds, in the round after, and it has 2 rounds.');
    expect(qualityEmptyText(1, 1)).toBe('No quality check during this federation: the hospitals check the global model after every round, in the round after, and it has 1 round.');
    expect(qualityEmptyText(0, 20)).toBe('This federation does not check quality during training (its quality.everyRounds is 0).');
    expect(qualityEmptyText(undefined, 20)).toBe(QUALITY_PENDING);
  });

  it('agrees with the schedule the server runs (shared/fed/qualitySchedule.ts) for every small federation', () => {
    for (let every = 1; every <= 6; every++) {
      for (let rounds = 1; rounds <= 15; rounds++) {
        const probing = Array.from({ length: rounds }, (_, i) => i + 1).filter((r) => probedModelRound(every, r) !== null);
        const text = qualityEmptyText(every, rounds);
        if (probing.length === 0) expect(text, `${every}/${rounds}`).toMatch(/^No quality check during this federation/);
        else expect(text, `${every}/${rounds}`).toContain(`the first point comes with round ${probing[0]}, for the model of round ${probedModelRound(every, probing[0])}.`);
      }
    }
  });

  it('wraps its sentence to the chart width', () => {
    const measure = (t: string) => t.length * 6;
    expect(wrapText('aa bb cc dd', 30, measure)).toEqual(['aa bb', 'cc dd']);
    expect(wrapText('a verylongwordindeed b', 30, measure)).toEqual(['a', 'verylongwordindeed', 'b']);
    expect(wrapText('  ', 30, measure)).toEqual([]);
    const lines = wrapText(qualityEmptyText(5, 2), 400, measure);
    expect(lines.every((l) => measure(l) <= 400)).toBe(true);
    expect(lines.join(' ')).toBe(qualityEmptyText(5, 2));
  });
});
