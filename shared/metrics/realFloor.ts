/**
 * The real floor: how far real tiles the generator never saw (the test split, other patients) lie
 * from the real training tiles, by the same FID and KID. A synthetic figure means something only next
 * to it. FID is biased by sample size, so both comparisons use the same number of tiles: the larger of
 * the test and synthetic sets is subsampled (seeded) to the smaller one's size, and both are compared
 * with all the real training tiles. Isomorphic: the quality report (eval/evaluate.ts) and the web app's
 * Quality panel (client/qualityCheck.ts) both use it.
 */
import { fidParts } from './fid.ts';
import { selectRows, type Features } from './features.ts';
import { kid } from './kid.ts';
import { Rng } from '../rng.ts';

/** Float rounding: a floor within this of 0 gives no ratio (as eval/report/goals.ts TOLERANCE). */
const TOLERANCE = 1e-9;

export interface RealFloor {
  /** Tiles on the compared side of both comparisons: real test tiles (floor) and synthetic tiles. */
  n: number;
  /** Real training tiles, the reference of both comparisons. */
  trainN: number;
  /** FID of n real test tiles against the real training tiles. */
  fid: number;
  /** KID of the same, mean ± std over subsets. */
  kid: { mean: number; std: number };
  /** FID of n synthetic tiles against the real training tiles (the report's `fid` when no subsampling was needed). */
  syntheticFid: number;
  syntheticKid: { mean: number; std: number };
  /** syntheticFid / fid; null when the floor is not above float rounding (1e-9). */
  fidOverFloor: number | null;
  /** Vectors per KID subset, the same for both. */
  kidSubsetSize: number;
}

/** Rows `0..rows−1`, or a seeded random subset of `n` of them (ascending). */
export function subsampleRows(rows: number, n: number, rng: Rng): number[] {
  const all = Array.from({ length: rows }, (_, i) => i);
  if (n >= rows) return all;
  return rng
    .shuffle(all)
    .slice(0, n)
    .sort((a, b) => a - b);
}

/**
 * `train`, `test` and `synthetic` are feature sets. `full`: the synthetic FID/KID already computed on
 * all synthetic tiles with the same KID options, reused when the synthetic side needs no subsampling.
 */
export function realFloor(
  train: Features,
  test: Features,
  synthetic: Features,
  opts: { seed: number; kidSubsets: number; full?: { fid: number; kid: { mean: number; std: number } } },
): { floor: RealFloor; rows: { test: number[]; synthetic: number[] } } {
  const n = Math.min(test.rows, synthetic.rows);
  if (n < 2) throw new Error(`the real floor needs at least 2 test and 2 synthetic tiles, got ${test.rows} and ${synthetic.rows}`);
  const rng = new Rng(opts.seed).fork('real-floor');
  const rows = { test: subsampleRows(test.rows, n, rng.fork('test')), synthetic: subsampleRows(synthetic.rows, n, rng.fork('synthetic')) };
  const kidOpts = { subsets: opts.kidSubsets, seed: opts.seed };
  const testSet = n === test.rows ? test : selectRows(test, rows.test);
  const floorFid = fidParts(train, testSet).fid;
  const floorKid = kid(train, testSet, kidOpts);
  let syntheticFid: number;
  let syntheticKid: { mean: number; std: number };
  if (n === synthetic.rows && opts.full) {
    syntheticFid = opts.full.fid;
    syntheticKid = opts.full.kid;
  } else {
    const synthSet = n === synthetic.rows ? synthetic : selectRows(synthetic, rows.synthetic);
    syntheticFid = fidParts(train, synthSet).fid;
    const k = kid(train, synthSet, kidOpts);
    syntheticKid = { mean: k.mean, std: k.std };
  }
  return {
    floor: {
      n,
      trainN: train.rows,
      fid: floorFid,
      kid: { mean: floorKid.mean, std: floorKid.std },
      syntheticFid,
      syntheticKid,
      fidOverFloor: floorFid > TOLERANCE ? syntheticFid / floorFid : null,
      kidSubsetSize: floorKid.subsetSize,
    },
    rows,
  };
}
