import { describe, expect, it } from 'vitest';
import { auroc } from './classification.ts';
import { aggregateByPatient } from './patients.ts';

describe('patient aggregation', () => {
  it('scores each patient by the mean of its tiles, sorted by patient id', () => {
    const patients = ['B', 'A', 'B', 'C', 'A', 'B'];
    const labels = [false, true, false, true, true, false];
    const scores = [0.2, 0.9, 0.4, 0.3, 0.5, 0.6];
    const agg = aggregateByPatient(patients, labels, scores);
    expect(agg.patients).toEqual(['A', 'B', 'C']);
    expect(agg.labels).toEqual([true, false, true]);
    expect(agg.scores[0]).toBeCloseTo(0.7, 12);
    expect(agg.scores[1]).toBeCloseTo(0.4, 12);
    expect(agg.scores[2]).toBeCloseTo(0.3, 12);
    expect(agg.tiles).toEqual([2, 3, 1]);
    // Patient-level AUROC: positives A 0.7, C 0.3 vs negative B 0.4 → (1 + 0) / 2
    expect(auroc(agg.labels, agg.scores)).toBe(0.5);
  });

  it('refuses a patient whose tiles carry both labels, and mismatched lengths', () => {
    expect(() => aggregateByPatient(['A', 'A'], [true, false], [0.1, 0.2])).toThrow(/patient A has tiles of both classes/);
    expect(() => aggregateByPatient(['A'], [true, false], [0.1, 0.2])).toThrow(/one patient, label and score per tile/);
    expect(() => aggregateByPatient(['A', ''], [true, true], [0.1, 0.2])).toThrow(/tile 1 has no patient/);
  });
});
