import { describe, expect, it } from 'vitest';
import { classFidelity } from './classFidelity.ts';

const classes = ['MSIH', 'nonMSIH'];

describe('classFidelity', () => {
  it('mean positive score per class and their difference per seed, then mean ± sd over seeds (hand-computed)', () => {
    const labels = [0, 0, 1, 1, 1];
    const perSeed = [
      { seed: 1, scores: [0.9, 0.7, 0.2, 0.4, 0.6] }, // MSIH 0.8, nonMSIH 0.4, difference 0.4; called 2/2, 1/3
      { seed: 2, scores: [0.6, 0.6, 0.5, 0.5, 0.5] }, // 0.6, 0.5, 0.1; called 2/2, 0/3 (0.5 is not > 0.5)
      { seed: 3, scores: Float32Array.from([0.5, 0.7, 0.25, 0.25, 0.25]) }, // 0.6, 0.25, 0.35; called 1/2, 0/3
    ];
    const r = classFidelity(labels, perSeed, { classes, positive: 0, what: 'test' });
    expect(r.summary.tiles).toEqual({ MSIH: 2, nonMSIH: 3 });
    expect(r.perSeed.map((s) => s.seed)).toEqual([1, 2, 3]);
    const close = (a: number, b: number) => expect(a).toBeCloseTo(b, 6);
    close(r.perSeed[0].meanScore.MSIH, 0.8);
    close(r.perSeed[0].meanScore.nonMSIH, 0.4);
    close(r.perSeed[0].difference, 0.4);
    close(r.perSeed[1].difference, 0.1);
    close(r.perSeed[2].difference, 0.35);
    expect(r.perSeed.map((s) => s.calledPositive)).toEqual([
      { MSIH: 1, nonMSIH: 1 / 3 },
      { MSIH: 1, nonMSIH: 0 },
      { MSIH: 0.5, nonMSIH: 0 },
    ]);
    // Differences 0.4, 0.1, 0.35: mean 0.85/3, sample sd sqrt(Σ(d − mean)² / 2).
    const m = 0.85 / 3;
    const sd = Math.sqrt(((0.4 - m) ** 2 + (0.1 - m) ** 2 + (0.35 - m) ** 2) / 2);
    close(r.summary.difference.mean, m);
    close(r.summary.difference.sd, sd);
    expect(sd).toBeCloseTo(0.160728, 5);
    close(r.summary.meanScore.MSIH.mean, (0.8 + 0.6 + 0.6) / 3);
    close(r.summary.meanScore.nonMSIH.mean, (0.4 + 0.5 + 0.25) / 3);
    close(r.summary.calledPositive.MSIH.mean, 2.5 / 3);
    expect(r.summary.carried).toBe(true); // 0.283 > 0.161
  });

  it('is not carried when the difference is within its seed spread, nor when it is reversed', () => {
    const labels = [0, 1];
    const spread = classFidelity(labels, [{ seed: 1, scores: [0.7, 0.4] }, { seed: 2, scores: [0.4, 0.5] }, { seed: 3, scores: [0.55, 0.5] }], { classes, positive: 0, what: 'x' });
    // Differences 0.3, −0.1, 0.05: mean 0.0833, sd 0.202.
    expect(spread.summary.difference.mean).toBeCloseTo(0.25 / 3, 6);
    expect(spread.summary.carried).toBe(false);
    const reversed = classFidelity(labels, [{ seed: 1, scores: [0.2, 0.8] }, { seed: 2, scores: [0.25, 0.8] }], { classes, positive: 0, what: 'x' });
    expect(reversed.summary.difference.mean).toBeCloseTo(-0.575, 6);
    expect(reversed.summary.carried).toBe(false);
  });

  it('with more than two classes, compares the positive class with all other tiles pooled', () => {
    const r = classFidelity([0, 1, 1, 2], [{ seed: 1, scores: [0.2, 0.9, 0.7, 0.3] }], { classes: ['a', 'b', 'c'], positive: 1, what: 'x' });
    expect(r.perSeed[0].meanScore).toEqual({ a: 0.2, b: 0.8, c: 0.3 });
    expect(r.perSeed[0].difference).toBeCloseTo(0.8 - 0.25, 12);
  });

  it('names what is wrong with its input', () => {
    const opts = { classes, positive: 0, what: 'synthetic tiles' };
    expect(() => classFidelity([0, 1], [{ seed: 4, scores: [0.5] }], opts)).toThrow('class fidelity (synthetic tiles): seed 4 has 1 scores for 2 tiles');
    expect(() => classFidelity([1, 1], [{ seed: 1, scores: [0.5, 0.5] }], opts)).toThrow('class fidelity (synthetic tiles): no tiles of class "MSIH"');
    expect(() => classFidelity([0, 2], [{ seed: 1, scores: [0.5, 0.5] }], opts)).toThrow('label 2 is not a class index (2 classes)');
    expect(() => classFidelity([0, 1], [], opts)).toThrow('no seeds');
    expect(() => classFidelity([0, 1], [{ seed: 1, scores: [0.5, 0.5] }], { ...opts, positive: 2 })).toThrow('positive class index 2 is not among 2 classes');
  });
});
