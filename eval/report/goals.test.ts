import { describe, expect, it } from 'vitest';
import type { RegimeResult } from '../downstream.ts';
import type { ClassFidelity } from '../classFidelity.ts';
import { DIVERSITY_MIN_RATIO as VERDICT_DIVERSITY, FID_FLOOR_FACTOR as VERDICT_FID } from '../../shared/metrics/verdict.ts';
import { DIVERSITY_MIN_RATIO, FID_FLOOR_FACTOR, GOAL_IDS, judgeGoals, type Goal, type GoalId, type GoalInputs } from './goals.ts';

const ms = (mean: number, sd: number) => ({ mean, sd });

function regime(ba: [number, number], auroc: [number, number], patientAuroc?: [number, number]): RegimeResult {
  const r: RegimeResult = { accuracy: ms(ba[0], ba[1]), f1: ms(0.5, 0.01), balancedAccuracy: ms(...ba), auroc: ms(...auroc) };
  if (patientAuroc) r.patientLevel = { accuracy: ms(0.5, 0.01), f1: ms(0.5, 0.01), balancedAccuracy: ms(0.5, 0.01), auroc: ms(...patientAuroc) };
  return r;
}

function fidelity(msih: number, non: number, diff: [number, number]): ClassFidelity {
  return {
    tiles: { MSIH: 10, nonMSIH: 10 },
    meanScore: { MSIH: ms(msih, 0.01), nonMSIH: ms(non, 0.01) },
    calledPositive: { MSIH: ms(0.7, 0.05), nonMSIH: ms(0.3, 0.05) },
    difference: ms(...diff),
    carried: diff[0] > diff[1],
  };
}

/** A report where every goal is met with room to spare. */
function good(): GoalInputs {
  return {
    floor: { n: 400, trainN: 1232, fid: 2, kid: { mean: 0.001, std: 0.0002 }, syntheticFid: 4, syntheticKid: { mean: 0.003, std: 0.0003 }, fidOverFloor: 2, kidSubsetSize: 200 },
    classification: {
      realOnly: regime([0.6, 0.02], [0.65, 0.02], [0.66, 0.03]),
      realPlusSynthetic: regime([0.65, 0.02], [0.7, 0.02], [0.72, 0.03]),
      syntheticOnly: regime([0.58, 0.02], [0.64, 0.02], [0.6, 0.05]),
    },
    classFidelity: { synthetic: fidelity(0.7, 0.4, [0.3, 0.05]), realTest: fidelity(0.6, 0.45, [0.15, 0.02]) },
    memorization: { syntheticToTrain: { p5: 0.5 }, testToTrain: { p5: 0.4 } },
    diversity: { MSIH: { synthetic: 1.2, real: 1.3 }, nonMSIH: { synthetic: 1.1, real: 1.2 } },
    positiveClass: 'MSIH',
    testPatients: 23,
    seeds: 5,
  };
}

const byId = (goals: Goal[], id: GoalId) => goals.find((g) => g.id === id)!;
const metOf = (inputs: GoalInputs, id: GoalId) => byId(judgeGoals(inputs), id).met;

describe('judgeGoals', () => {
  it('lists every goal once, in order, with its figure, rule, threshold, met flag and words', () => {
    const goals = judgeGoals(good());
    expect(goals.map((g) => g.id)).toEqual([...GOAL_IDS]);
    for (const g of goals) {
      expect(Object.keys(g)).toEqual(['id', 'name', 'figure', 'rule', 'threshold', 'met', 'detail']);
      expect(g.met).toBe(true);
    }
    const m = Object.fromEntries(goals.map((g) => [g.id, g]));
    expect(m.fidVsFloor).toMatchObject({ figure: 2, rule: '≤', threshold: 3 });
    expect(m.diversity).toMatchObject({ rule: '≥', threshold: 0.8 });
    expect(m.diversity.figure).toBeCloseTo(1.1 / 1.2, 12); // the lowest class
    expect(m.classFidelity).toMatchObject({ figure: 0.3, rule: '>', threshold: 0.05 });
    expect(m.syntheticOnlyAuroc.figure).toBeCloseTo(0.01, 12); // real only − synthetic only
    expect(m.syntheticOnlyAuroc).toMatchObject({ rule: '≤', threshold: 0.03 });
    expect(m.realPlusSyntheticBalancedAccuracy.figure).toBeCloseTo(0.05, 12);
    expect(m.realPlusSyntheticBalancedAccuracy).toMatchObject({ rule: '>', threshold: 0.02 });
    expect(m.realPlusSyntheticPatientAuroc.figure).toBeCloseTo(0.06, 12);
    expect(m.realPlusSyntheticPatientAuroc.threshold).toBe(0.03);
    expect(m.realPlusSyntheticPatientAuroc.detail).toContain('23 test patients');
    expect(m.memorization).toMatchObject({ figure: 0.5, rule: '≥', threshold: 0.4 });
    expect(m.fidVsFloor.detail).toBe('FID 4.00 for 400 synthetic tiles vs 2.00 for 400 real test tiles, each against 1232 real training tiles');
  });

  it('FID: at most 3× the floor, exactly 3× included; no floor above 0 is not met', () => {
    const at = (ratio: number | null) => {
      const r = good();
      r.floor = { ...r.floor, fidOverFloor: ratio };
      return byId(judgeGoals(r), 'fidVsFloor');
    };
    expect(at(3).met).toBe(true);
    expect(at(3.001).met).toBe(false);
    expect(at(1.4 + 3 - 1.4).met).toBe(true); // 3.0000000000000004: float rounding of exactly 3
    expect(at(null)).toMatchObject({ figure: null, met: false });
    expect(at(null).detail).toContain('the floor is not above 0');
  });

  it('diversity: every class at least 0.8, judged on the lowest; a class without a ratio is not met', () => {
    const with_ = (d: GoalInputs['diversity']) => byId(judgeGoals({ ...good(), diversity: d }), 'diversity');
    expect(with_({ MSIH: { synthetic: 0.8, real: 1 }, nonMSIH: { synthetic: 2, real: 1 } }).met).toBe(true);
    expect(with_({ MSIH: { synthetic: 0.02, real: 0.025 }, nonMSIH: { synthetic: 2, real: 1 } }).met).toBe(true); // 0.7999999999999999
    const low = with_({ MSIH: { synthetic: 2, real: 1 }, nonMSIH: { synthetic: 0.79, real: 1 } });
    expect(low).toMatchObject({ figure: 0.79, met: false });
    expect(low.detail).toBe('MSIH 2.00, nonMSIH 0.79');
    expect(with_({ MSIH: { synthetic: null, real: 1 }, nonMSIH: { synthetic: 2, real: 1 } })).toMatchObject({ figure: null, met: false });
  });

  it('class fidelity: the difference must exceed its seed sd; equal is not enough', () => {
    const with_ = (diff: [number, number]) => {
      const r = good();
      r.classFidelity = { ...r.classFidelity, synthetic: fidelity(0.6, 0.5, diff) };
      return metOf(r, 'classFidelity');
    };
    expect(with_([0.05, 0.05])).toBe(false);
    expect(with_([0.1 + 0.2 - 0.25, 0.05])).toBe(false); // 0.05000000000000002: rounding, not a real excess
    expect(with_([0.051, 0.05])).toBe(true);
    expect(with_([-0.3, 0.05])).toBe(false);
    expect(with_([0.001, 0])).toBe(true);
  });

  it('synthetic only: tile AUROC at most 0.03 below real only; better than real only is met', () => {
    const with_ = (ro: number, so: number) => {
      const r = good();
      r.classification = { ...r.classification, realOnly: regime([0.6, 0.02], [ro, 0.02], [0.66, 0.03]), syntheticOnly: regime([0.6, 0.02], [so, 0.02]) };
      return byId(judgeGoals(r), 'syntheticOnlyAuroc');
    };
    expect(with_(0.73, 0.7).met).toBe(true); // gap 0.030000000000000027 in floats: exactly 0.03
    expect(with_(0.74, 0.7).met).toBe(false);
    expect(with_(0.7301, 0.7).met).toBe(false);
    const better = with_(0.6, 0.7);
    expect(better.figure).toBeCloseTo(-0.1, 12);
    expect(better.met).toBe(true);
  });

  it('real + synthetic: each gain must exceed the larger of the two seed sds; no patients is not met', () => {
    const with_ = (rps: RegimeResult, ro: RegimeResult = regime([0.6, 0.02], [0.65, 0.02], [0.66, 0.03])) => {
      const r = good();
      r.classification = { ...r.classification, realOnly: ro, realPlusSynthetic: rps };
      return judgeGoals(r);
    };
    // Balanced accuracy: +0.02 against sd 0.02 (equal: not met), +0.021 met.
    expect(byId(with_(regime([0.62, 0.02], [0.7, 0.02], [0.72, 0.03])), 'realPlusSyntheticBalancedAccuracy').met).toBe(false);
    expect(byId(with_(regime([0.621, 0.02], [0.7, 0.02], [0.72, 0.03])), 'realPlusSyntheticBalancedAccuracy').met).toBe(true);
    // The larger sd decides: +0.025 exceeds real only's 0.02 but not real + synthetic's 0.03.
    const wide = byId(with_(regime([0.625, 0.03], [0.7, 0.02], [0.72, 0.03])), 'realPlusSyntheticBalancedAccuracy');
    expect(wide).toMatchObject({ threshold: 0.03, met: false });
    // Patient AUROC: +0.03 against sd 0.03 is not met; a drop is not met.
    expect(byId(with_(regime([0.7, 0.02], [0.7, 0.02], [0.69, 0.03])), 'realPlusSyntheticPatientAuroc').met).toBe(false);
    expect(byId(with_(regime([0.7, 0.02], [0.7, 0.02], [0.6, 0.01])), 'realPlusSyntheticPatientAuroc').met).toBe(false);
    expect(byId(with_(regime([0.7, 0.02], [0.7, 0.02], [0.70, 0.01])), 'realPlusSyntheticPatientAuroc').met).toBe(true);
    // Without patient-level results the patient goal cannot be met, and says why.
    const none = byId(with_(regime([0.7, 0.02], [0.7, 0.02]), regime([0.6, 0.02], [0.65, 0.02])), 'realPlusSyntheticPatientAuroc');
    expect(none).toMatchObject({ figure: null, threshold: null, met: false });
    expect(none.detail).toMatch(/no manifest\.csv naming a patient/);
  });

  it('memorization: synthetic p5 not below test p5; equal is met', () => {
    const with_ = (s: number, t: number) => metOf({ ...good(), memorization: { syntheticToTrain: { p5: s }, testToTrain: { p5: t } } }, 'memorization');
    expect(with_(0.4, 0.4)).toBe(true);
    expect(with_(0.1 + 0.2, 0.3)).toBe(true); // 0.30000000000000004 vs 0.3
    expect(with_(0.3, 0.1 + 0.2)).toBe(true);
    expect(with_(0.399, 0.4)).toBe(false);
  });
});

describe('the goals and the web app’s verdict', () => {
  it('judge by the same thresholds (one definition, shared/metrics/verdict.ts)', () => {
    expect(FID_FLOOR_FACTOR).toBe(VERDICT_FID);
    expect(DIVERSITY_MIN_RATIO).toBe(VERDICT_DIVERSITY);
  });
});
