import type { GanConfig } from '../shared/config/ganConfig.ts';
import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { referenceIndices } from '../shared/fed/hospitalProbe.ts';
import { simulationProbeDue } from '../shared/fed/qualitySchedule.ts';
import type { FeatureExtractor } from '../shared/features/types.ts';
import { createGan, type Gan } from '../shared/gan/gan.ts';
import { recalibrateGeneratorBatchNorm } from '../shared/gan/recalibrateBatchNorm.ts';
import { probeQuality, probeReference, QualityTrack, type ProbeReference } from '../shared/metrics/qualityProbe.ts';
import type { WeightSet } from '../shared/weights.ts';
import { CliError } from '../node/cliError.ts';
import type { FolderTile } from '../node/tileFolder.ts';

/**
 * Quality tracked during an in-process simulation (docs/quality.md, "Quality tracked during training").
 * The simulation holds every tile, so unlike the server it measures its global model itself: after every
 * `everyRounds` rounds and after the last, the fixed-sample probe (shared/metrics/qualityProbe.ts: the same
 * latents, labels and KID subsets each time) against a fixed real reference: per class, `perClass` tiles
 * of all the simulation's tiles, picked by the hospitals' rule (shared/fed/hospitalProbe.ts
 * referenceIndices, seeded by `seed`). Under FedBN the global generator's batch-norm statistics are
 * recalibrated data-free before generating, as for samples.png and the evaluator (design D1).
 */

export interface SimulationQualityOptions {
  /** Probe after every N rounds (and after the last); 0 turns tracking off. */
  everyRounds: number;
  /** The feature network (the caller chooses: MobileNetV2 in the CLI, the tiny extractor in tests). */
  extractor: FeatureExtractor;
  /** Synthetic tiles per class, and reference tiles per class at most (default 32). */
  perClass?: number;
  /** Seed of the probe's latents and of the reference subset (default 4242). */
  seed?: number;
  /** KID subsets (default 20). */
  subsets?: number;
  /**
   * Stop before `rounds` once the curve has flattened (QualityTrack): the last `patience` probes improved
   * the best KID by less than `minImprovement` (relative), judged on the probes from round `fromRound` on
   * (default 0; runSimulation sets it to the generator EMA's warm-up, emaWarmupRound). `rounds` stays the cap.
   */
  untilFlat?: { patience: number; minImprovement: number; fromRound?: number };
}

/**
 * The first round at which a generator EMA of `decay`, started from the random initial generator, holds less
 * than e^-3 (5 %) of it: 3/(1 − decay) generator steps (3,000 at 0.999, 600 at 0.995). Before it the EMA's
 * KID mixes in the initial generator, and an early low can make a still-improving curve look flat. 0 without EMA.
 */
export function emaWarmupRound(decay: number | null | undefined, localSteps: number): number {
  if (!decay) return 0;
  // (1 − decay is inexact in binary: 3 / (1 − 0.9) is 30.000000000000004, which is 30 steps.)
  return Math.ceil(Math.ceil(3 / (1 - decay) - 1e-9) / localSteps);
}

export interface QualityPoint {
  /** The round whose global model was probed. */
  round: number;
  kid: number;
  kidStd: number;
  /** The probe's pooled diversity (synthetic over reference mean pairwise feature distance; qualityProbe.ts). */
  diversity: number;
  /** Seconds the probe took. */
  seconds: number;
}

/** The `quality` section of summary.json. */
export interface QualitySummary {
  features: string;
  everyRounds: number;
  perClass: number;
  seed: number;
  /** Real tiles in the reference. */
  reference: number;
  curve: QualityPoint[];
  /** The lowest KID of the curve (null when every probe failed to give a finite figure). */
  best: { round: number; kid: number } | null;
  /** checkpoint-best.fgw: the global model of the best round. */
  bestCheckpoint: string | null;
  untilFlat: { patience: number; minImprovement: number; fromRound?: number } | null;
  /** Set when the run stopped before its last round because the curve flattened. */
  stoppedEarly: { round: number; rounds: number } | null;
}

const NO_EXTRACTOR: FeatureExtractor = {
  name: 'none',
  description: 'quality tracking off',
  dim: 0,
  extract: () => Promise.reject(new Error('quality tracking is off')),
  dispose() {},
};

export class SimulationQuality {
  private readonly track: QualityTrack;
  private readonly perClass: number;
  private readonly seed: number;
  private readonly subsets: number;
  private readonly curve: QualityPoint[] = [];
  private reference: ProbeReference | null = null;
  private referenceCount = 0;
  private gan: Gan | null = null;
  /** The global model of the best round (the simulation's round results are fresh arrays it never mutates). */
  private bestWeights: WeightSet | null = null;
  private stopped: { round: number; rounds: number } | null = null;

  private readonly opts: SimulationQualityOptions;

  /** Without options (or with everyRounds 0) nothing is tracked. */
  constructor(
    options: SimulationQualityOptions | undefined,
    private readonly model: GanConfig,
    private readonly batchNorm: BatchNormPolicy,
  ) {
    const opts = (this.opts = options ?? { everyRounds: 0, extractor: NO_EXTRACTOR });
    if (!Number.isInteger(opts.everyRounds) || opts.everyRounds < 0) throw new CliError(`quality: everyRounds must be an integer ≥ 0, got ${opts.everyRounds}`);
    this.perClass = opts.perClass ?? 32;
    if (!Number.isInteger(this.perClass) || this.perClass < 2) throw new CliError(`quality: perClass must be an integer ≥ 2, got ${this.perClass}`);
    this.seed = opts.seed ?? 4242;
    this.subsets = opts.subsets ?? 20;
    try {
      this.track = new QualityTrack(opts.untilFlat?.patience ?? 3, opts.untilFlat?.minImprovement ?? 0.05, opts.untilFlat?.fromRound ?? 0);
    } catch (e) {
      throw new CliError(`quality: untilFlat ${(e as Error).message}`);
    }
  }

  get enabled(): boolean {
    return this.opts.everyRounds > 0;
  }

  /** Features of the fixed real reference, from all the simulation's tiles (once). */
  async prepare(tiles: readonly FolderTile[]): Promise<void> {
    if (!this.enabled) return;
    const idx = referenceIndices(
      tiles.map((t) => t.label),
      this.model.classes.length,
      this.perClass,
      this.seed,
    );
    if (idx.length < 4) throw new CliError(`quality tracking needs at least 4 reference tiles, the simulation has ${idx.length}`);
    this.reference = await probeReference(
      this.opts.extractor,
      idx.map((i) => tiles[i].pixels),
      this.model.imageSize,
    );
    this.referenceCount = idx.length;
  }

  /** Whether the global model after `round` is probed (of `lastRound` rounds at most). */
  due(round: number, lastRound: number): boolean {
    return this.enabled && simulationProbeDue(this.opts.everyRounds, round, lastRound);
  }

  /**
   * Probe the global model after `round`. Returns the point, whether it is the best so far, and whether
   * the run should stop here (untilFlat and the curve flattened).
   */
  async probe(round: number, global: WeightSet, rounds: number): Promise<{ point: QualityPoint; best: boolean; stop: boolean }> {
    if (!this.reference) throw new Error('SimulationQuality.probe before prepare()');
    const t0 = performance.now();
    this.gan ??= createGan(this.model);
    this.gan.setWeights(global);
    if (this.batchNorm === 'local') recalibrateGeneratorBatchNorm(this.gan);
    const p = await probeQuality(this.gan, this.reference, this.opts.extractor, { perClass: this.perClass, seed: this.seed, subsets: this.subsets });
    const point = { round, kid: p.kid, kidStd: p.kidStd, diversity: p.diversity, seconds: (performance.now() - t0) / 1000 };
    this.curve.push(point);
    const best = this.track.add(round, p.kid);
    if (best) this.bestWeights = global;
    const stop = !!this.opts.untilFlat && round < rounds && this.track.flattened;
    if (stop) this.stopped = { round, rounds };
    return { point, best, stop };
  }

  /**
   * A resumed run (cli/simulationResume.ts): the curve of its earlier calls, replayed through the flat rule,
   * and the best round's global model (null when it had none). Refused (CliError) when this call's rule,
   * replayed, stops the run at one of those probes: a run the rule stopped, resumed under the same rule, or
   * under a changed rule that would have ended it sooner.
   */
  restore(curve: readonly QualityPoint[], bestWeights: WeightSet | null): void {
    if (this.curve.length) throw new Error('SimulationQuality.restore after a probe');
    for (const point of curve) {
      this.curve.push({ ...point });
      this.track.add(point.round, point.kid);
      // An uninterrupted run under this call's stopping rule would have ended here: going on would train rounds it never trains.
      const r = this.opts.untilFlat;
      if (r && this.track.flattened) {
        throw new CliError(
          `--resume: under this stopping rule (patience ${r.patience}, min improvement ${r.minImprovement}, from round ${r.fromRound ?? 0}) the run would have stopped after its round-${point.round} probe; ` +
            'a later --flat-from-round, a larger --flat-patience, a smaller --flat-min-improvement or no --until-flat lets it go on',
        );
      }
    }
    if (this.track.best && !bestWeights) throw new CliError(`quality: the restored curve's best round ${this.track.best.round} has no checkpoint`);
    this.bestWeights = this.track.best ? bestWeights : null;
  }

  /** The best round's global model and round, or null. */
  best(): { round: number; kid: number; weights: WeightSet } | null {
    const b = this.track.best;
    return b && this.bestWeights ? { ...b, weights: this.bestWeights } : null;
  }

  summary(bestCheckpoint: string | null): QualitySummary {
    const b = this.track.best;
    return {
      features: this.opts.extractor.name,
      everyRounds: this.opts.everyRounds,
      perClass: this.perClass,
      seed: this.seed,
      reference: this.referenceCount,
      curve: [...this.curve],
      best: b ? { round: b.round, kid: b.kid } : null,
      bestCheckpoint,
      untilFlat: this.opts.untilFlat ?? null,
      stoppedEarly: this.stopped,
    };
  }

  dispose(): void {
    this.gan?.dispose();
    this.gan = null;
  }
}

