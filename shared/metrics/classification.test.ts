import { describe, expect, it } from 'vitest';
import { accuracy, auroc, balancedAccuracy, binaryMetrics, confusion, f1Score, MetricError } from './classification.ts';

// 10 items, 4 positives. Scores and the hand-worked confusion at threshold 0.5:
//   pos: 0.9 (TP) 0.8 (TP) 0.4 (FN) 0.6 (TP)
//   neg: 0.7 (FP) 0.3 (TN) 0.2 (TN) 0.1 (TN) 0.5 (FP, 0.5 ≥ 0.5) 0.05 (TN)
const labels = [true, true, true, true, false, false, false, false, false, false];
const scores = [0.9, 0.8, 0.4, 0.6, 0.7, 0.3, 0.2, 0.1, 0.5, 0.05];

describe('classification metrics', () => {
  it('match hand-computed values', () => {
    expect(confusion(labels, scores)).toEqual({ tp: 3, fp: 2, tn: 4, fn: 1 });
    expect(accuracy(labels, scores)).toBeCloseTo(7 / 10, 12);
    // F1 = 2·3 / (2·3 + 2 + 1) = 6/9
    expect(f1Score(labels, scores)).toBeCloseTo(6 / 9, 12);
    // sensitivity 3/4, specificity 4/6
    expect(balancedAccuracy(labels, scores)).toBeCloseTo((3 / 4 + 4 / 6) / 2, 12);
    // AUROC: pairs (pos > neg) out of 4·6 = 24. 0.9: 6, 0.8: 6, 0.6: 5 (not > 0.7), 0.4: 4 (> .3 .2 .1 .05) → 21/24
    expect(auroc(labels, scores)).toBeCloseTo(21 / 24, 12);
    const all = binaryMetrics(labels, scores);
    expect(all.f1).toBeCloseTo(6 / 9, 12);
    expect(all.counts.tp).toBe(3);
  });

  it('counts ties as one half in AUROC', () => {
    // pos {0.5, 0.5}, neg {0.5, 0.2}: pairs: (0.5,0.5) ½ ×2, (0.5,0.2) 1 ×2 → 3/4
    expect(auroc([true, true, false, false], [0.5, 0.5, 0.5, 0.2])).toBeCloseTo(0.75, 12);
    // all scores equal → 0.5
    expect(auroc([true, false, true, false, false], [0.3, 0.3, 0.3, 0.3, 0.3])).toBeCloseTo(0.5, 12);
    // perfect and inverted rankings
    expect(auroc([true, false], [0.9, 0.1])).toBe(1);
    expect(auroc([true, false], [0.1, 0.9])).toBe(0);
  });

  it('handles degenerate predictions', () => {
    // Never predicts positive: F1 = 0, balanced accuracy = 0.5
    expect(f1Score([true, false], [0.1, 0.2])).toBe(0);
    expect(balancedAccuracy([true, false], [0.1, 0.2])).toBe(0.5);
    // No positives at all and none predicted
    expect(f1Score([false, false], [0.1, 0.2])).toBe(0);
  });

  it('rejects what it cannot score, naming the problem', () => {
    expect(() => auroc([true, true], [0.1, 0.2])).toThrow(/both classes/);
    expect(() => balancedAccuracy([false, false], [0.1, 0.2])).toThrow(MetricError);
    expect(() => accuracy([true], [0.1, 0.2])).toThrow(/1 labels but 2 scores/);
    expect(() => accuracy([], [])).toThrow(/no items/);
    expect(() => auroc([true, false], [NaN, 0.2])).toThrow(/score 0 is NaN/);
  });
});
