/**
 * The feature-space part of the quality report in one call, for every host: the Node CLI
 * (eval/cli.ts) and the web app's Quality panel (in the worker, on the hospital's own tiles). It takes
 * feature vectors, already extracted (shared/features), and returns plain numbers; no tile leaves the
 * caller.
 */
import { fidParts, type FidParts } from './fid.ts';
import { FeatureError, selectRows, type Features } from './features.ts';
import { kid, type KidOptions, type KidResult } from './kid.ts';
import { closestPairs, nearestNeighbours, summariseDistances, type ClosestPair, type DistanceSummary } from './nearestNeighbour.ts';
import { meanPairwiseDistance } from './diversity.ts';

export interface QualityInput {
  /** Real training tiles (the generator's training data, or the hospital's own tiles). */
  real: Features;
  /** Class index of each real row. */
  realLabels: ArrayLike<number>;
  synthetic: Features;
  syntheticLabels: ArrayLike<number>;
  /** Class names, indexed by label. */
  classes: readonly string[];
  /**
   * Real tiles the generator never saw (a test split): their distance to the training tiles is
   * the baseline a synthetic tile's distance is compared with. Optional.
   */
  control?: Features;
  kid?: KidOptions;
  /** How many closest synthetic–real pairs to return (default 8). */
  closestPairs?: number;
  /** Cap on vectors per class for the diversity check (default 1000). */
  diversityMaxRows?: number;
}

export interface QualityResult {
  fid: FidParts;
  kid: KidResult;
  memorization: {
    syntheticToTrain: DistanceSummary;
    testToTrain?: DistanceSummary;
    /** The synthetic rows closest to a real row (indices into `synthetic` and `real`). */
    closest: ClosestPair[];
    /** Nearest-real distance of every synthetic row. */
    syntheticDistances: Float64Array;
  };
  /** Mean pairwise feature distance within each class, synthetic vs real. */
  diversity: Record<string, { synthetic: number | null; real: number | null }>;
}

function rowsOfClass(labels: ArrayLike<number>, c: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < labels.length; i++) if (labels[i] === c) out.push(i);
  return out;
}

export function computeQuality(input: QualityInput): QualityResult {
  const { real, synthetic } = input;
  if (input.realLabels.length !== real.rows) throw new FeatureError(`${input.realLabels.length} real labels for ${real.rows} real feature rows`);
  if (input.syntheticLabels.length !== synthetic.rows) throw new FeatureError(`${input.syntheticLabels.length} synthetic labels for ${synthetic.rows} synthetic feature rows`);
  const fid = fidParts(real, synthetic);
  const kidResult = kid(real, synthetic, input.kid);
  const nn = nearestNeighbours(synthetic, real);
  const control = input.control ? summariseDistances(nearestNeighbours(input.control, real).distance) : undefined;
  const diversity: QualityResult['diversity'] = {};
  input.classes.forEach((name, c) => {
    const s = rowsOfClass(input.syntheticLabels, c);
    const r = rowsOfClass(input.realLabels, c);
    const opts = { maxRows: input.diversityMaxRows ?? 1000, seed: c };
    diversity[name] = {
      synthetic: s.length >= 2 ? meanPairwiseDistance(selectRows(synthetic, s), opts) : null,
      real: r.length >= 2 ? meanPairwiseDistance(selectRows(real, r), opts) : null,
    };
  });
  return {
    fid,
    kid: kidResult,
    memorization: {
      syntheticToTrain: summariseDistances(nn.distance),
      ...(control ? { testToTrain: control } : {}),
      closest: closestPairs(nn, input.closestPairs ?? 8),
      syntheticDistances: nn.distance,
    },
    diversity,
  };
}
