/**
 * The quality figure tracked DURING training: a cheap, fixed-sample KID of the generator against a fixed
 * real reference. Cheap because it runs every few rounds (in the simulation on its reference tiles, in
 * each hospital on its own tiles): a few dozen tiles per class through a small feature network
 * (MobileNetV2 in the product, the tiny projection in tests). Fixed because a curve is only a curve when
 * every point is measured the same way: the same latents, the same labels, the same real tiles, the same
 * KID subsets, round after round. It tracks progress; it does not replace the quality report.
 *
 * `QualityTrack` turns the probes into what the runs need: the best round so far (the checkpoint worth
 * keeping) and whether the curve has flattened (the run can stop).
 */
import type { FeatureExtractor } from '../features/types.ts';
import { generate, type Gan } from '../gan/gan.ts';
import { toRgbBytes } from '../image/grid.ts';
import type { Features } from './features.ts';
import { meanPairwiseDistance } from './diversity.ts';
import { kid } from './kid.ts';

export interface ProbeOptions {
  /** Synthetic tiles per class (default 32). */
  perClass?: number;
  /** Latent seed: the same for every probe of a run (default 4242). */
  seed?: number;
  /** KID subsets (default 20: the figure is for a curve, not a report). */
  subsets?: number;
  batchSize?: number;
}

export interface QualityProbe {
  /** KID (unbiased MMD², cubic kernel) of the synthetic tiles against the reference, mean over subsets. */
  kid: number;
  /** Standard deviation of KID over the subsets. */
  kidStd: number;
  /** Synthetic tiles scored, and reference tiles they were scored against. */
  synthetic: number;
  reference: number;
  /** The feature network (FeatureExtractor.name). */
  features: string;
  /**
   * Diversity, pooled over classes: the mean pairwise feature distance of the synthetic sample over that
   * of the reference tiles (shared/metrics/diversity.ts). Well below 1 is mode collapse; the quality report
   * has the per-class figure.
   */
  diversity: number;
}

/** A fixed real reference: the features of a fixed set of real tiles, computed once per run. */
export interface ProbeReference {
  features: Features;
  /** The extractor that made them; probes must use the same one. */
  extractor: string;
  /** Mean pairwise distance of the reference features, the denominator of `diversity`. */
  spread: number;
}

export async function probeReference(extractor: FeatureExtractor, tiles: readonly Uint8Array[], size: number): Promise<ProbeReference> {
  if (tiles.length < 4) throw new Error(`the quality probe needs at least 4 reference tiles, got ${tiles.length}`);
  const features = await extractor.extract(tiles, size);
  return { features, extractor: extractor.name, spread: meanPairwiseDistance(features) };
}

/** Generate the probe's fixed sample: `perClass` tiles of every class, as RGB bytes, always from the same latents. */
export async function probeSample(gan: Gan, perClass: number, seed: number, batchSize = 32): Promise<Uint8Array[]> {
  const labels = gan.cfg.classes.flatMap((_, c) => new Array<number>(perClass).fill(c));
  const out: Uint8Array[] = [];
  for (let start = 0, b = 0; start < labels.length; start += batchSize, b++) {
    const batch = labels.slice(start, start + batchSize);
    const t = generate(gan, batch, seed * 7919 + b);
    const data = (await t.data()) as Float32Array;
    t.dispose();
    out.push(...toRgbBytes(data, batch.length, gan.cfg.imageSize));
  }
  return out;
}

/** Score the generator against the reference. Same arguments → same figure. */
export async function probeQuality(gan: Gan, reference: ProbeReference, extractor: FeatureExtractor, opts: ProbeOptions = {}): Promise<QualityProbe> {
  if (reference.extractor !== extractor.name) {
    throw new Error(`the probe reference was made with ${reference.extractor} features, not ${extractor.name}`);
  }
  const perClass = opts.perClass ?? 32;
  if (!Number.isInteger(perClass) || perClass < 2) throw new Error(`perClass must be an integer ≥ 2, got ${perClass}`);
  const tiles = await probeSample(gan, perClass, opts.seed ?? 4242, opts.batchSize);
  const synthetic = await extractor.extract(tiles, gan.cfg.imageSize);
  const k = kid(synthetic, reference.features, { subsets: opts.subsets ?? 20, seed: 1 });
  const diversity = meanPairwiseDistance(synthetic) / reference.spread;
  return { kid: k.mean, kidStd: k.std, synthetic: synthetic.rows, reference: reference.features.rows, features: extractor.name, diversity };
}

export interface TrackPoint {
  round: number;
  kid: number;
}

/**
 * The quality curve of a run. `best` is the round with the lowest KID; `flattened` says that the last
 * `patience` probes improved the best KID by less than `minImprovement` (relative), so more training
 * of the same recipe is not buying quality.
 */
export class QualityTrack {
  readonly points: TrackPoint[] = [];

  /**
   * @param fromRound flatness is judged only on probes of this round or later: probes taken while the model
   *   is still warming up (a generator EMA that still carries much of the random initial generator scores
   *   deceptively well early on) can neither be the "best before" nor end the run. They still count for `best`.
   */
  constructor(
    private readonly patience = 3,
    private readonly minImprovement = 0.05,
    private readonly fromRound = 0,
  ) {
    if (!Number.isInteger(patience) || patience < 1) throw new RangeError(`patience must be a positive integer, got ${patience}`);
    if (!(minImprovement >= 0 && minImprovement < 1)) throw new RangeError(`minImprovement must be in [0, 1), got ${minImprovement}`);
    if (!Number.isInteger(fromRound) || fromRound < 0) throw new RangeError(`fromRound must be an integer ≥ 0, got ${fromRound}`);
  }

  /** Record a probe; returns true when it is the best so far. Non-finite KIDs are recorded but never best. */
  add(round: number, kidValue: number): boolean {
    const before = this.best;
    this.points.push({ round, kid: kidValue });
    return Number.isFinite(kidValue) && (before === null || kidValue < before.kid);
  }

  get best(): TrackPoint | null {
    let b: TrackPoint | null = null;
    for (const p of this.points) if (Number.isFinite(p.kid) && (b === null || p.kid < b.kid)) b = p;
    return b;
  }

  get flattened(): boolean {
    const judged = this.points.filter((p) => p.round >= this.fromRound);
    const n = judged.length;
    if (n <= this.patience) return false;
    const bestBefore = bestOf(judged.slice(0, n - this.patience));
    const bestRecent = bestOf(judged.slice(n - this.patience));
    if (bestBefore === null) return false;
    if (bestRecent === null) return true;
    // Relative to the size of the best KID so far (KID is unbiased, so it can be slightly negative).
    return bestBefore - bestRecent < this.minImprovement * Math.abs(bestBefore);
  }
}

function bestOf(points: readonly TrackPoint[]): number | null {
  let b: number | null = null;
  for (const p of points) if (Number.isFinite(p.kid) && (b === null || p.kid < b)) b = p.kid;
  return b;
}
