/**
 * Class fidelity: does a classifier that was trained on real tiles only find, in the synthetic tiles,
 * the class the generator was asked for? For each seed's real-only model, the mean positive-class
 * (e.g. MSIH) score over the tiles of each class, and the difference between the positive class and
 * the other classes; then mean ± sd of each over the seeds. The same numbers on the real test tiles
 * say how far this classifier separates real tiles, the reference the synthetic figure is read against.
 */
import { meanSd } from '../shared/metrics/summary.ts';
import { exceeds } from './report/goals.ts';

/** One seed's real-only model, scored on one set of tiles. */
export interface ClassFidelitySeed {
  seed: number;
  /** Mean positive-class score over the tiles of each class. */
  meanScore: Record<string, number>;
  /** Fraction of each class's tiles the model calls positive (score > 0.5). */
  calledPositive: Record<string, number>;
  /** Mean score on positive-class tiles − mean score on all other tiles. */
  difference: number;
}

export interface ClassFidelity {
  /** Tiles of each class that were scored. */
  tiles: Record<string, number>;
  /** Per class: the seeds' mean positive-class scores, mean ± sd over seeds. */
  meanScore: Record<string, { mean: number; sd: number }>;
  /** Per class: the fraction called positive, mean ± sd over seeds. */
  calledPositive: Record<string, { mean: number; sd: number }>;
  /** Positive-class tiles' mean score − the other tiles', mean ± sd over seeds. */
  difference: { mean: number; sd: number };
  /** The class is carried: the difference's mean exceeds its sd over seeds (the seed spread). */
  carried: boolean;
}

/**
 * `labels[i]` is the class of tile i (for synthetic tiles: the class the generator was asked for);
 * each `perSeed[k].scores[i]` is seed k's positive-class probability of tile i.
 */
export function classFidelity(
  labels: readonly number[],
  perSeed: readonly { seed: number; scores: ArrayLike<number> }[],
  opts: { classes: readonly string[]; positive: number; what: string },
): { summary: ClassFidelity; perSeed: ClassFidelitySeed[] } {
  const { classes, positive, what } = opts;
  if (perSeed.length === 0) throw new Error(`class fidelity (${what}): no seeds`);
  if (classes.length < 2) throw new Error(`class fidelity (${what}) needs at least 2 classes, got ${classes.length}`);
  if (!(positive >= 0 && positive < classes.length)) throw new Error(`class fidelity (${what}): positive class index ${positive} is not among ${classes.length} classes`);
  const tiles = Object.fromEntries(classes.map((c) => [c, 0])) as Record<string, number>;
  for (const l of labels) {
    if (!(l >= 0 && l < classes.length)) throw new Error(`class fidelity (${what}): label ${l} is not a class index (${classes.length} classes)`);
    tiles[classes[l]]++;
  }
  const empty = classes.filter((c) => tiles[c] === 0);
  if (empty.length) throw new Error(`class fidelity (${what}): no tiles of class ${empty.map((c) => `"${c}"`).join(', ')}`);
  const seeds: ClassFidelitySeed[] = perSeed.map(({ seed, scores }) => {
    if (scores.length !== labels.length) throw new Error(`class fidelity (${what}): seed ${seed} has ${scores.length} scores for ${labels.length} tiles`);
    const sum = new Array<number>(classes.length).fill(0);
    const called = new Array<number>(classes.length).fill(0);
    let otherSum = 0;
    for (let i = 0; i < labels.length; i++) {
      sum[labels[i]] += scores[i];
      if (scores[i] > 0.5) called[labels[i]]++;
      if (labels[i] !== positive) otherSum += scores[i];
    }
    const others = labels.length - tiles[classes[positive]];
    return {
      seed,
      meanScore: Object.fromEntries(classes.map((c, k) => [c, sum[k] / tiles[c]])),
      calledPositive: Object.fromEntries(classes.map((c, k) => [c, called[k] / tiles[c]])),
      difference: sum[positive] / tiles[classes[positive]] - otherSum / others,
    };
  });
  const summarise = (values: number[]) => {
    const s = meanSd(values);
    return { mean: s.mean, sd: s.sd };
  };
  const difference = summarise(seeds.map((s) => s.difference));
  return {
    summary: {
      tiles,
      meanScore: Object.fromEntries(classes.map((c) => [c, summarise(seeds.map((s) => s.meanScore[c]))])),
      calledPositive: Object.fromEntries(classes.map((c) => [c, summarise(seeds.map((s) => s.calledPositive[c]))])),
      difference,
      carried: exceeds(difference.mean, difference.sd),
    },
    perSeed: seeds,
  };
}
