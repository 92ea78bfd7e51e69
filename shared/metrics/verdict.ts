/**
 * Is the synthetic output usable? One plain-language verdict for hospital staff, from what has been
 * measured, not from "rounds done". The web app shows it at the finish, before and after an export, in
 * the export's model-card.json and in the Quality panel; FID and KID stay as details in the reasons.
 *
 * What it is judged on, strongest evidence first:
 *
 * 1. **The Quality panel's check** (client/qualityCheck.ts) of the same model, on the hospital's own
 *    tiles: usable only when all three of these hold (the goals of the quality report, eval/report/goals.ts,
 *    which imports these constants):
 *    - FID at most {@link FID_FLOOR_FACTOR}× the real floor (held-out real tiles against the same real
 *      tiles, same number of tiles): generated tiles then lie about as far from the real ones as other
 *      real tiles do. Above {@link FAR_FID_FACTOR}× they are "still far from real tissue" (the project's
 *      900-step CPU run scored 63× and drew blobs with no nuclei, glands or stroma: docs/results.md).
 *    - Diversity (mean pairwise feature distance) at least {@link DIVERSITY_MIN_RATIO} of the real tiles'
 *      in every class: below it the generator repeats itself (mode collapse).
 *    - No sign of copying: the 5th percentile of the generated tiles' distance to their nearest real tile
 *      is not below that of held-out real tiles (the memorization goal). Passing it says nothing good on
 *      its own: noise is never a copy.
 *    The browser cannot run the report's classifier goals, so "usable" means "passes the checks this
 *    app can make", and the headline says so.
 * 2. **The federation's quality probe** (the round history's KID, MobileNetV2 features, docs/quality.md):
 *    at or above {@link PROBE_KID_FAR} the images are still far from real tissue. That is the best probe
 *    KID the 900-step CPU run reached (0.040 at round 32, docs/results.md), whose tiles were still blobs;
 *    below it the probe cannot tell, and the verdict is "unknown" until the quality check is run.
 * 3. **Steps trained** (rounds × local steps along the global model) against the federation's budget:
 *    fewer than {@link BARELY_TRAINED_STEPS} is "barely trained" — the 900-step run drew blobs, and the
 *    recipe's ablation was still improving at 1,000 steps (docs/recipe.md) — so without a quality check
 *    that says otherwise the verdict is "not yet".
 *
 * Pure and isomorphic (no DOM, no Node): the worker, the page and the tests call it.
 */

/** Synthetic FID may be at most this many times the real floor (the quality report's goal). */
export const FID_FLOOR_FACTOR = 3;
/** Synthetic diversity over real diversity, in every class, at least this (the quality report's goal). */
export const DIVERSITY_MIN_RATIO = 0.8;
/** FID above this many times the floor: "still far from real tissue" rather than merely "not close enough". */
export const FAR_FID_FACTOR = 10;
/** The federation's probe KID (MobileNetV2 features) at or above this: still far from real tissue. */
export const PROBE_KID_FAR = 0.04;
/** The feature network whose probe KID {@link PROBE_KID_FAR} was measured with. */
export const PROBE_FEATURES = 'mobilenet-v2';
/** Fewer generator steps than this: barely trained. */
export const BARELY_TRAINED_STEPS = 1000;

export type VerdictLevel = 'usable' | 'not-yet' | 'unknown';

export interface Verdict {
  level: VerdictLevel;
  /** One sentence for staff. */
  headline: string;
  /** Why, one plain sentence each, figures in parentheses. */
  reasons: string[];
}

/** The federation's quality probe of one global model (a round-history entry's `quality`). */
export interface ProbeFigure {
  /** The round whose global model was measured. */
  round: number;
  kid: number;
  kidStd: number;
  features: string;
}

/** The Quality panel's figures (client/api.ts QualityReport carries them). */
export interface CheckFigures {
  /** The round of the model that was checked. */
  round: number;
  /** Feature network name (e.g. `inception-v3`). */
  extractor: string;
  fid: number;
  /** FID of held-out real tiles against the same real tiles, with as many tiles as the generated side. */
  floorFid: number;
  kid: number;
  floorKid: number;
  diversity: Record<string, { synthetic: number | null; real: number | null }>;
  memorization: { syntheticToReal: { p5: number }; realToReal?: { p5: number } };
}

/** The figures of a Quality panel report (client/api.ts QualityReport) that the verdict judges. */
export function checkFiguresOf(r: {
  round: number;
  extractor: { name: string };
  floor: { fid: number; kid: number; syntheticFid: number; syntheticKid: number };
  diversity: Record<string, { synthetic: number | null; real: number | null }>;
  memorization: { syntheticToReal: { p5: number }; realToReal?: { p5: number } };
}): CheckFigures {
  return {
    round: r.round,
    extractor: r.extractor.name,
    fid: r.floor.syntheticFid,
    floorFid: r.floor.fid,
    kid: r.floor.syntheticKid,
    floorKid: r.floor.kid,
    diversity: r.diversity,
    memorization: { syntheticToReal: { p5: r.memorization.syntheticToReal.p5 }, ...(r.memorization.realToReal ? { realToReal: { p5: r.memorization.realToReal.p5 } } : {}) },
  };
}

export interface VerdictInput {
  /** The model being judged: rounds it has completed, the federation's rounds and generator steps per round. */
  model?: { round: number; rounds: number; localSteps?: number };
  /** The newest probe of the federation (see {@link latestProbe}). */
  probe?: ProbeFigure;
  /** The latest quality check run in this browser. */
  check?: CheckFigures;
}

/** Float rounding forgiven in the comparisons (as in eval/report/goals.ts). */
const TOLERANCE = 1e-9;

const count = (n: number) => n.toLocaleString('en-US');
const f2 = (v: number) => v.toFixed(2);

/** The probe of the newest model in a round history (entries' `quality`), or undefined. */
export function latestProbe(history: readonly { quality?: ProbeFigure }[]): ProbeFigure | undefined {
  let best: ProbeFigure | undefined;
  for (const h of history) if (h.quality && (!best || h.quality.round > best.round)) best = h.quality;
  return best;
}

/** The quality check judged goal by goal (judgeOutput uses it; the Quality panel shows `memorization`). */
export interface CheckJudgement {
  /** FID at most FID_FLOOR_FACTOR × the floor. */
  close: boolean;
  /** FID above FAR_FID_FACTOR × the floor (or no floor and FID above 0). */
  far: boolean;
  /** Diversity at least DIVERSITY_MIN_RATIO of the real tiles' in every class. */
  varied: boolean;
  /** Possible copies, or copying could not be checked (no baseline). */
  copies: boolean;
  /** The memorization finding in words (one of `reasons`). */
  memorization: string;
  reasons: string[];
}

export function judgeCheck(c: CheckFigures): CheckJudgement {
  const reasons: string[] = [];
  const ratio = c.floorFid > TOLERANCE ? c.fid / c.floorFid : null;
  const close = ratio !== null && ratio <= FID_FLOOR_FACTOR + TOLERANCE;
  const far = ratio === null ? c.fid > TOLERANCE : ratio > FAR_FID_FACTOR;
  const fidDetail = `quality check on ${c.extractor} features: FID ${f2(c.fid)} against ${f2(c.floorFid)} for real tiles${ratio !== null ? `, ${ratio.toFixed(1)}×` : ''}; at most ${FID_FLOOR_FACTOR}× counts as close`;
  if (close) reasons.push(`Generated tiles are about as close to your tiles as other real tiles are (${fidDetail}).`);
  else if (far) reasons.push(`Generated tiles are still far from real tissue (${fidDetail}).`);
  else reasons.push(`Generated tiles are not yet close enough to real tissue (${fidDetail}).`);

  const low = Object.entries(c.diversity)
    .map(([cls, d]) => ({ cls, ratio: d.synthetic !== null && d.real !== null && d.real > 0 ? d.synthetic / d.real : null }))
    .filter((x) => x.ratio === null || x.ratio < DIVERSITY_MIN_RATIO - TOLERANCE);
  const varied = low.length === 0 && Object.keys(c.diversity).length > 0;
  if (varied) reasons.push(`Generated tiles vary as much as yours in every class (at least ${DIVERSITY_MIN_RATIO} of your tiles’ variety).`);
  else if (Object.keys(c.diversity).length === 0) reasons.push('The variety of the generated tiles was not measured.');
  else reasons.push(`Generated ${low.map((x) => x.cls).join(', ')} tiles vary less than yours (${low.map((x) => (x.ratio === null ? `${x.cls}: not measurable` : `${x.cls} ${f2(x.ratio)}`)).join(', ')} of your tiles’ variety; at least ${DIVERSITY_MIN_RATIO} needed).`);

  const base = c.memorization.realToReal?.p5;
  const copies = base !== undefined && c.memorization.syntheticToReal.p5 < base - TOLERANCE;
  if (base === undefined) reasons.push('Copying could not be checked: too few of your tiles to hold some out as the baseline.');
  else if (copies) reasons.push(`Some generated tiles are closer to one of your tiles than your own tiles are to each other: they may be copies (distance ${f2(c.memorization.syntheticToReal.p5)} vs ${f2(base)}, 5th percentile). Look at the closest pairs before sharing.`);
  else if (far) reasons.push('No sign of copying — but that says nothing good while the images do not look like tissue.');
  else reasons.push('No sign of copying: generated tiles are not closer to your tiles than your tiles are to each other.');
  return { close, far, varied, copies: copies || base === undefined, memorization: reasons[reasons.length - 1], reasons };
}

/**
 * The verdict. Throws on figures that are not numbers (a caller bug), never on missing evidence: with
 * nothing measured the level is 'unknown' and the headline says what to do.
 */
export function judgeOutput(input: VerdictInput): Verdict {
  const { model, probe, check } = input;
  for (const [k, v] of Object.entries({ round: model?.round, rounds: model?.rounds, localSteps: model?.localSteps, kid: probe?.kid, fid: check?.fid, floorFid: check?.floorFid })) {
    if (v !== undefined && !Number.isFinite(v)) throw new RangeError(`verdict: ${k} must be a finite number, got ${v}`);
  }
  const reasons: string[] = [];

  // Steps trained, when the federation says how many steps a round has.
  let barely = false;
  let stepsPhrase = '';
  if (model && model.localSteps !== undefined) {
    const trained = model.round * model.localSteps;
    const budget = model.rounds * model.localSteps;
    barely = trained < BARELY_TRAINED_STEPS;
    stepsPhrase = trained < budget ? `the model has trained ${count(trained)} of the ${count(budget)} steps the federation plans` : `the model has trained only ${count(trained)} steps`;
    if (barely) reasons.push(`It is barely trained: ${count(trained)} of the ${count(budget)} generator steps the federation plans; under ${count(BARELY_TRAINED_STEPS)} steps this project’s models still draw blobs, not tissue.`);
    else if (trained < budget) reasons.push(`The model has trained ${count(trained)} of the ${count(budget)} generator steps the federation plans; later models may be better.`);
    else reasons.push(`The model has trained all ${count(budget)} generator steps the federation planned.`);
  } else if (model) {
    reasons.push(`The model has completed ${model.round} of ${model.rounds} rounds (the number of steps per round is not known).`);
  }

  // The quality check, when it is of this model.
  const current = check && (!model || check.round === model.round) ? check : undefined;
  if (check && !current) reasons.push(`The last quality check was of the round-${check.round} model, not this one (round ${model!.round}): run it again.`);
  if (current) {
    const j = judgeCheck(current);
    reasons.push(...j.reasons);
    if (j.close && j.varied && !j.copies) {
      return {
        level: 'usable',
        headline: 'These images pass the checks this app can make: close to real tissue, as varied as your tiles, and no sign of copying. Check a few by eye before use.',
        reasons,
      };
    }
    const why = [j.copies && current.memorization.realToReal ? 'some look like copies of your tiles' : '', !j.close ? (j.far ? 'they are still far from real tissue' : 'they are not yet close enough to real tissue') : '', !j.varied ? 'they vary less than real tiles' : ''].filter(Boolean);
    if (why.length === 0) why.push('copying could not be ruled out');
    return { level: 'not-yet', headline: `These images are not yet usable: ${joinWords([...(barely ? [stepsPhrase] : []), ...why])}.`, reasons };
  }

  // The federation's probe.
  let probeFar = false;
  if (probe) {
    const detail = `KID ${probe.kid.toFixed(3)} ± ${probe.kidStd.toFixed(3)} of the round-${probe.round} model on ${probe.features} features`;
    if (probe.features === PROBE_FEATURES && probe.kid >= PROBE_KID_FAR - TOLERANCE) {
      probeFar = true;
      reasons.push(`The federation’s quality probe finds the images still far from real tissue (${detail}; ${PROBE_KID_FAR} or more means far).`);
    } else if (probe.features === PROBE_FEATURES) {
      reasons.push(`The federation’s quality probe does not rule the images out (${detail}; under ${PROBE_KID_FAR}): run the quality check to know more.`);
    } else {
      reasons.push(`The federation’s quality probe measured ${detail}; this app judges only ${PROBE_FEATURES} probes.`);
    }
  }
  if (probeFar || barely) {
    const why = probeFar ? (barely ? `${stepsPhrase} and its images are still far from real tissue` : 'they are still far from real tissue') : `${stepsPhrase}, too few to draw tissue`;
    return { level: 'not-yet', headline: `These images are not yet usable: ${why}.`, reasons };
  }
  reasons.push('No quality check of this model has been run in this browser.');
  return { level: 'unknown', headline: 'Not known yet whether these images are usable: run the quality check (step 6) to find out before relying on them.', reasons };
}

function joinWords(parts: string[]): string {
  if (parts.length <= 1) return parts.join('');
  return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}
