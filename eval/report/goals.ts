/**
 * The goals a checkpoint's synthetic tiles are judged against (issue 13), each as a figure, a
 * threshold and met or not. One pure function: the HTML verdicts and report.json's `goals` table
 * both come from it.
 *
 * Comparisons allow for float rounding: values within 1e-9 of each other count as equal, so "exceeds"
 * needs more than that and "at most"/"at least" forgive it.
 */
import type { RegimeResult } from '../downstream.ts';
import type { ClassFidelity } from '../classFidelity.ts';
import type { RealFloor } from '../floor.ts';

/**
 * Synthetic FID at most FID_FLOOR_FACTOR times the real floor; synthetic diversity over real, in every
 * class, at least DIVERSITY_MIN_RATIO. Defined with the web app's plain-language verdict, which judges by
 * the same goals (shared/metrics/verdict.ts).
 */
import { DIVERSITY_MIN_RATIO, FID_FLOOR_FACTOR } from '../../shared/metrics/verdict.ts';
export { DIVERSITY_MIN_RATIO, FID_FLOOR_FACTOR };
/** Synthetic-only tile AUROC at most this far below real-only. */
export const SYNTHETIC_ONLY_MAX_AUROC_GAP = 0.03;
export const TOLERANCE = 1e-9;

/** a > b, by more than float rounding. */
export function exceeds(a: number, b: number): boolean {
  return a > b + TOLERANCE;
}
/** a ≤ b, up to float rounding. */
export function atMost(a: number, b: number): boolean {
  return a <= b + TOLERANCE;
}
/** a ≥ b, up to float rounding. */
export function atLeast(a: number, b: number): boolean {
  return a >= b - TOLERANCE;
}

export const GOAL_IDS = [
  'fidVsFloor',
  'diversity',
  'classFidelity',
  'syntheticOnlyAuroc',
  'realPlusSyntheticBalancedAccuracy',
  'realPlusSyntheticPatientAuroc',
  'memorization',
] as const;
export type GoalId = (typeof GOAL_IDS)[number];

export interface Goal {
  id: GoalId;
  /** The goal in words. */
  name: string;
  /** The measured figure; null when it cannot be measured (e.g. no patients), and then the goal is not met. */
  figure: number | null;
  /** How the figure must compare with the threshold to meet the goal. */
  rule: '≤' | '≥' | '>';
  threshold: number | null;
  met: boolean;
  /** The figures behind it, in words. */
  detail: string;
}

/** What the goals are judged on: parts of report.json. */
export interface GoalInputs {
  floor: RealFloor;
  classification: Record<'realOnly' | 'realPlusSynthetic' | 'syntheticOnly', RegimeResult>;
  classFidelity: { synthetic: ClassFidelity; realTest: ClassFidelity };
  memorization: { syntheticToTrain: { p5: number }; testToTrain: { p5: number } };
  diversity: Record<string, { synthetic: number | null; real: number | null }>;
  positiveClass: string;
  /** Patients in the real test set (null: no manifest names them). */
  testPatients: number | null;
  seeds: number;
}

const f2 = (v: number) => v.toFixed(2);
const f3 = (v: number) => v.toFixed(3);
const signed = (v: number) => `${v >= 0 ? '+' : '−'}${f3(Math.abs(v))}`;
const pm = (m: { mean: number; sd: number }) => `${f3(m.mean)} ± ${f3(m.sd)}`;

function judge(id: GoalId, name: string, figure: number | null, rule: Goal['rule'], threshold: number | null, detail: string): Goal {
  let met = false;
  if (figure !== null && threshold !== null && Number.isFinite(figure) && Number.isFinite(threshold)) {
    met = rule === '≤' ? atMost(figure, threshold) : rule === '≥' ? atLeast(figure, threshold) : exceeds(figure, threshold);
  }
  return { id, name, figure, rule, threshold, met, detail };
}

/**
 * A classifier metric with the synthetic tiles minus without them, against one seed sd (the larger of the
 * two regimes'); `helps` when it exceeds it. The goals and the per-hospital figures (eval/downstream.ts)
 * judge a gain by this one rule.
 */
export function gainOver(withSynthetic: { mean: number; sd: number }, without: { mean: number; sd: number }): { figure: number; threshold: number; helps: boolean } {
  const figure = withSynthetic.mean - without.mean;
  const threshold = Math.max(withSynthetic.sd, without.sd);
  return { figure, threshold, helps: exceeds(figure, threshold) };
}

/** Real + synthetic minus real only, in words. */
function gain(a: { mean: number; sd: number }, b: { mean: number; sd: number }): { figure: number; threshold: number; detail: string } {
  const { figure, threshold } = gainOver(a, b);
  return { figure, threshold, detail: `real + synthetic ${pm(a)} vs real only ${pm(b)}: ${signed(figure)}, against one seed sd of ${f3(threshold)}` };
}

export function judgeGoals(r: GoalInputs): Goal[] {
  const goals: Goal[] = [];
  const fl = r.floor;
  goals.push(
    judge(
      'fidVsFloor',
      `FID of synthetic vs real training tiles at most ${FID_FLOOR_FACTOR}× the real floor (real test vs real training tiles, same sample size)`,
      fl.fidOverFloor,
      '≤',
      FID_FLOOR_FACTOR,
      `FID ${f2(fl.syntheticFid)} for ${fl.n} synthetic tiles vs ${f2(fl.fid)} for ${fl.n} real test tiles, each against ${fl.trainN} real training tiles${fl.fidOverFloor === null ? '; the floor is not above 0, so no ratio' : ''}`,
    ),
  );
  const ratios = Object.entries(r.diversity).map(([cls, d]) => ({ cls, ratio: d.synthetic !== null && d.real !== null && d.real > 0 ? d.synthetic / d.real : null }));
  const missing = ratios.filter((x) => x.ratio === null);
  const lowest = missing.length ? null : Math.min(...ratios.map((x) => x.ratio!));
  goals.push(
    judge(
      'diversity',
      `Diversity (mean pairwise feature distance), synthetic over real, at least ${DIVERSITY_MIN_RATIO} in every class (figure: the lowest class)`,
      lowest,
      '≥',
      DIVERSITY_MIN_RATIO,
      missing.length
        ? `no ratio for ${missing.map((x) => x.cls).join(', ')} (fewer than 2 tiles of the class)`
        : ratios.map((x) => `${x.cls} ${f2(x.ratio!)}`).join(', '),
    ),
  );
  const cf = r.classFidelity.synthetic;
  const pos = r.positiveClass;
  const others = Object.keys(cf.meanScore).filter((c) => c !== pos);
  goals.push(
    judge(
      'classFidelity',
      `Class fidelity: a classifier trained on real tiles only scores synthetic ${pos} tiles higher for ${pos} than synthetic ${others.join('/')} tiles, by more than the seed spread (figure: the difference of mean ${pos} scores; threshold: its sd over seeds)`,
      cf.difference.mean,
      '>',
      cf.difference.sd,
      `mean ${pos} score ${[pos, ...others].map((k) => `${f3(cf.meanScore[k].mean)} on synthetic ${k}`).join(' vs ')}, difference ${pm(cf.difference)} over ${r.seeds} seeds; on real test tiles the same classifiers give ${pm(r.classFidelity.realTest.difference)}`,
    ),
  );
  const c = r.classification;
  const gap = c.realOnly.auroc.mean - c.syntheticOnly.auroc.mean;
  goals.push(
    judge(
      'syntheticOnlyAuroc',
      `Synthetic only: tile AUROC at most ${SYNTHETIC_ONLY_MAX_AUROC_GAP} below real only (figure: real only − synthetic only)`,
      gap,
      '≤',
      SYNTHETIC_ONLY_MAX_AUROC_GAP,
      `tile AUROC ${pm(c.syntheticOnly.auroc)} trained on synthetic tiles only vs ${pm(c.realOnly.auroc)} on real tiles only`,
    ),
  );
  const ba = gain(c.realPlusSynthetic.balancedAccuracy, c.realOnly.balancedAccuracy);
  goals.push(
    judge(
      'realPlusSyntheticBalancedAccuracy',
      'Real + synthetic better than real only: balanced accuracy higher by more than one seed sd (figure: the difference; threshold: the larger sd)',
      ba.figure,
      '>',
      ba.threshold,
      `balanced accuracy, ${ba.detail}`,
    ),
  );
  const pRps = c.realPlusSynthetic.patientLevel;
  const pRo = c.realOnly.patientLevel;
  const pa = pRps && pRo ? gain(pRps.auroc, pRo.auroc) : null;
  goals.push(
    judge(
      'realPlusSyntheticPatientAuroc',
      'Real + synthetic better than real only: patient AUROC higher by more than one seed sd (figure: the difference; threshold: the larger sd)',
      pa ? pa.figure : null,
      '>',
      pa ? pa.threshold : null,
      pa ? `patient AUROC over ${r.testPatients ?? '?'} test patients, ${pa.detail}` : 'not measured: the test set has no manifest.csv naming a patient for every tile',
    ),
  );
  const m = r.memorization;
  goals.push(
    judge(
      'memorization',
      'Memorization: the 5th percentile of the synthetic tiles\' distance to their nearest training tile is not below that of real test tiles',
      m.syntheticToTrain.p5,
      '≥',
      m.testToTrain.p5,
      `5th percentile of the feature distance to the nearest training tile: synthetic ${f2(m.syntheticToTrain.p5)}, real test ${f2(m.testToTrain.p5)}`,
    ),
  );
  return goals;
}
