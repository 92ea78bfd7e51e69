/**
 * The round strategy of the federation, one definition for the server (server/roundMachine.ts) and the
 * in-process simulation (cli/simulation.ts), so that both run the same rounds. Modelled on Flower's
 * strategy seam: `configureRound` is configure_fit (who trains, with what config), `RoundAggregation` is
 * aggregate_fit (which updates count, how they are mixed, what the round's statistics are). Neither knows
 * how updates travel: the server streams decoded updates into a RoundAggregation one by one, the
 * simulation adds the weights its hospitals return.
 *
 * FedBN (`batchNorm: 'local'`, docs design D1): batch-norm tensors never leave a hospital. The aggregation
 * ignores the batch-norm tensors of updates: the new global model keeps the previous global's, and the
 * update-norm bound is measured without them. Under 'average' every tensor is aggregated and measured.
 *
 * No single hospital can take over the global model (docs/protocol.md §2.4, docs/configuration.md):
 * - an update may move the model at most `maxUpdateNorm` from the global (by default a bound derived from
 *   the model and the round's training budget, `autoMaxUpdateNorm`); further and it is refused ('norm');
 * - its FedAvg weight, the example count it claims, is clipped to its hospital's cap: the smaller of its
 *   tokens-file `maxExamples` (given to RoundAggregation as `exampleCap`) and, from the second completed
 *   round on, ⌊examples.medianFactor × the lower median of the counts counted in the last completed round
 *   with at least two updates⌋ (`medianExampleCap`; the median given as `previousExamplesMedian`, found
 *   by `examplesMedianBase`). A larger claim still counts, at the cap. The first round has no previous
 *   median: there only `examples.max` and the tokens file cap the weight, and the norm bound limits how far
 *   the update moves the model;
 * - its losses count in the round's statistics clamped to ±LOSS_LIMIT, so they stay finite and in range.
 */
import { createAggregator, type AggregatorConfig } from '../aggregate/index.ts';
import { AggregationError, layoutOf, validateUpdate, type Aggregator, type WeightLayout } from '../aggregate/types.ts';
import { l2Distance } from '../aggregate/updateNorm.ts';
import type { FedConfig } from '../config/fedConfig.ts';
import { probeReportSchema, type ProbeReport, type RoundConfig, type RoundQuality } from '../protocol/messages.ts';
import { describeIssues } from '../protocol/validation.ts';
import { isBatchNormWeight, type WeightSet } from '../weights.ts';
import { probeMismatch, qualityRequest } from './qualitySchedule.ts';
import { sampleClients } from './sampling.ts';

// ---------------------------------------------------------------------------------------------------------
// Configure a round
// ---------------------------------------------------------------------------------------------------------

export interface RoundPlan {
  /** The hospitals that train this round, sorted. */
  sampled: string[];
  /** What each of them receives with the global weights (the `config` of the `round` frame). */
  config: RoundConfig;
}

/**
 * The `round` key of client sampling: the round itself on a first attempt, a distinct key per repeated
 * attempt so that a repeated round draws a new sample.
 */
export function samplingRound(round: number, attempt: number): number {
  return attempt === 1 ? round : round + attempt * 1_000_000;
}

/**
 * The RoundConfig of (round, attempt) under `fed`. `maxUpdateNorm` is the bound the round's aggregation
 * enforces (`updateNormBound`); the default bound depends on the global weights, so without `global` it is
 * left out unless `fed.maxUpdateNorm` is a number.
 */
export function roundConfig(fed: FedConfig, round: number, attempt: number, global?: WeightSet): RoundConfig {
  const m = fed.model;
  const bound = fed.maxUpdateNorm === 'auto' ? (global ? autoMaxUpdateNorm(fed, global) : null) : fed.maxUpdateNorm;
  const quality = qualityRequest(fed, round);
  return {
    round,
    attempt,
    rounds: fed.rounds,
    ganType: m.gan,
    localSteps: fed.localSteps,
    learningRate: { generator: m.optimizerG.learningRate, discriminator: m.optimizerD.learningRate },
    imageSize: m.imageSize,
    batchNorm: fed.batchNorm,
    // The hospitals' bounds (the median cap is applied on the server's side, not announced).
    examples: { min: fed.examples.min, max: fed.examples.max },
    ...(bound !== null ? { maxUpdateNorm: bound } : {}),
    deadlineSeconds: fed.roundDeadlineSeconds,
    // Only on the rounds that probe quality (qualitySchedule.ts).
    ...(quality ? { quality } : {}),
    model: m as unknown as Record<string, unknown>,
    // Differential privacy at the hospitals (shared/privacy/budget.ts combines it with each hospital's own budget).
    ...(fed.privacy.dp.enabled ? { dp: roundDp(fed.privacy.dp) } : {}),
  };
}

/** The round config's `dp` from the federation's `privacy.dp` (its unset fields left out). */
function roundDp(dp: FedConfig['privacy']['dp']): NonNullable<RoundConfig['dp']> {
  return {
    clipNorm: dp.clipNorm,
    ...(dp.noiseMultiplier !== undefined ? { noiseMultiplier: dp.noiseMultiplier } : {}),
    ...(dp.targetEpsilon !== undefined ? { targetEpsilon: dp.targetEpsilon } : {}),
    ...(dp.delta !== null ? { delta: dp.delta } : {}),
  };
}

/**
 * Configure attempt `attempt` of round `round` (both 1-based) among the `available` hospitals: sample
 * ⌈fraction·available⌉ of them, at least `minFit` (shared/fed/sampling.ts, seeded by `fed.seed` and the
 * attempt-aware sampling key), and the round config they train with (`global`, the weights the round starts
 * from, gives the default update-norm bound its value; see roundConfig). Throws a RangeError when fewer
 * than `minFit` hospitals are available or a name repeats.
 */
export function configureRound(fed: FedConfig, at: { round: number; attempt: number; available: readonly string[]; global?: WeightSet }): RoundPlan {
  const { round, attempt, available } = at;
  if (!Number.isSafeInteger(round) || round < 1) throw new RangeError(`round must be a positive integer, got ${round}`);
  if (!Number.isSafeInteger(attempt) || attempt < 1) throw new RangeError(`attempt must be a positive integer, got ${attempt}`);
  const sampled = sampleClients(available, { fraction: fed.fraction, minCount: fed.minFit, seed: fed.seed, round: samplingRound(round, attempt) });
  return { sampled, config: roundConfig(fed, round, attempt, at.global) };
}

// ---------------------------------------------------------------------------------------------------------
// How far one update may move the model
// ---------------------------------------------------------------------------------------------------------

/** The safety factor of the default update-norm bound (see autoMaxUpdateNorm). */
export const AUTO_NORM_FACTOR = 2;

/** A batch-norm moving statistic (`…/movingMean`, `…/movingVariance`): not trained, a running average of activations. */
export function isMovingStatistic(name: string): boolean {
  return /\/moving(Mean|Variance)$/.test(name);
}

/**
 * The default bound on ‖update − global‖₂ (`maxUpdateNorm: 'auto'`), from the model, the round's budget
 * and the global weights the round starts from:
 *
 *   B = AUTO_NORM_FACTOR · √( Σ_trained Pₜ·(Tₜ·ηₜ)²  +  Σ_moving statistics (1 + |gᵢ|)² )
 *
 * - trained tensors (kernels, biases, embeddings, batch-norm gamma/beta): Pₜ values each, ηₜ the learning
 *   rate of their network in the round (`g/` and the generator's moving average `ema/`: the generator's;
 *   `d/`: the discriminator's; any other: the larger), Tₜ the optimizer steps it takes in a round
 *   (`localSteps`; for the WGAN-GP critic `localSteps·nCritic`). Hospitals train with fresh Adam optimizers,
 *   whose step per weight is about η (exactly η·g/(|g|+ε) on the first step), so T·η·√P is how far the
 *   weights travel when every step moves every weight by its learning rate in the same direction; real
 *   updates zig-zag and stay well inside it (measured: docs/configuration.md). The generator's moving
 *   average follows the generator and travels less.
 * - moving statistics are running averages of activations, not moved by a learning rate: each may change
 *   by 1 + its global value (a hospital recomputes them on its own tiles within a few steps).
 * - under FedBN (`batchNorm: 'local'`) batch-norm tensors are left out, as they are of the measured norm.
 *
 * Nothing an update claims changes it. Only the global model's moving statistics do (under 'average'):
 * one hospital can move them, like any weight, by at most its share s of B in a round, and honest hospitals
 * recompute them from their tiles every round. Pushing one statistic as far as it can, round after round,
 * a hospital with s < 1/3 leaves it bounded (each round multiplies its excess by at most 3s); a larger
 * share could grow it, and the bound with it: cap examples (tokens-file maxExamples) or set a number.
 */
export function autoMaxUpdateNorm(fed: FedConfig, global: WeightSet): number {
  const m = fed.model;
  const travelG = fed.localSteps * m.optimizerG.learningRate;
  const travelD = fed.localSteps * (m.gan === 'wgan-gp' ? m.nCritic : 1) * m.optimizerD.learningRate;
  const local = fed.batchNorm === 'local';
  let sum = 0;
  for (const t of global.tensors) {
    if (local && isBatchNormWeight(t.name)) continue;
    if (isMovingStatistic(t.name)) {
      for (let i = 0; i < t.data.length; i++) sum += (1 + Math.abs(t.data[i])) ** 2;
      continue;
    }
    const net = t.name.split('/')[0];
    const travel = net === 'd' ? travelD : net === 'g' || net === 'ema' ? travelG : Math.max(travelG, travelD);
    sum += t.data.length * travel * travel;
  }
  return AUTO_NORM_FACTOR * Math.sqrt(sum);
}

/** The update-norm bound of a round under `fed` from `global`: a number, or null when there is none (`maxUpdateNorm: null`). */
export function updateNormBound(fed: FedConfig, global: WeightSet): number | null {
  if (fed.maxUpdateNorm === 'auto') return autoMaxUpdateNorm(fed, global);
  return fed.maxUpdateNorm;
}

// ---------------------------------------------------------------------------------------------------------
// How much one hospital's update may weigh
// ---------------------------------------------------------------------------------------------------------

/**
 * The lower median of `counts`: the middle value of the sorted counts, and for an even number of counts
 * the LOWER of the two middle ones (index ⌊(n − 1)/2⌋ of the sorted list), so always a count one hospital
 * sent. Not the mean of the two middle ones: with two hospitals that mean is half the larger claim, and a
 * hospital alone against one other could then double its cap round after round. With the lower median, as
 * long as at most half the counts (fewer than half for an odd number) come from hospitals that inflate
 * theirs, the median is at most the largest honest count. Throws a RangeError for an empty list.
 */
export function lowerMedian(counts: readonly number[]): number {
  if (counts.length === 0) throw new RangeError('lowerMedian: no counts');
  const sorted = [...counts].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/**
 * The cap earlier rounds set on every hospital's example count: ⌊fed.examples.medianFactor × previousMedian⌋,
 * or null when there is none (no previous median: the first round; `medianFactor: null`). previousMedian
 * is the RoundStatistics.examplesMedian of the last completed round with at least two updates
 * (examplesMedianBase).
 */
export function medianExampleCap(fed: FedConfig, previousMedian: number | undefined): number | null {
  const factor = fed.examples.medianFactor;
  if (factor === null || previousMedian === undefined) return null;
  if (!(Number.isFinite(previousMedian) && previousMedian > 0)) throw new RangeError(`medianExampleCap: the previous median must be a positive number, got ${previousMedian}`);
  return Math.floor(factor * previousMedian);
}

/**
 * The median the next round's counts are capped by (medianExampleCap), from the rounds completed so far
 * (the server's history entries; the simulation's round statistics), and the round that recorded it: the
 * `examplesMedian` of the LAST completed round with at least two updates. A round of a single update does
 * not count: its median is that hospital's own count, and a hospital alone in its rounds (fraction < 1,
 * minCompletion 1) could otherwise multiply its cap by medianFactor round after round. Undefined before
 * such a round, and when the entries were written before the median was recorded (then the next round
 * has no median cap, as a first round).
 */
export function examplesMedianBase(rounds: readonly { round?: unknown; participants?: unknown; examplesMedian?: unknown }[]): { round: number; median: number } | undefined {
  for (let i = rounds.length - 1; i >= 0; i--) {
    const { round, participants, examplesMedian: m } = rounds[i];
    if (typeof participants !== 'number' || participants < 2) continue;
    if (typeof m === 'number' && Number.isFinite(m) && m > 0) return { round: typeof round === 'number' ? round : i + 1, median: m };
    return undefined;
  }
  return undefined;
}

/** |loss| above this counts as ±LOSS_LIMIT in a round's statistics (no GAN loss of a working model comes near it). */
export const LOSS_LIMIT = 1e6;

/** `x` clamped to ±LOSS_LIMIT (finite x). */
export function clampLoss(x: number): number {
  return Math.max(-LOSS_LIMIT, Math.min(LOSS_LIMIT, x));
}

// ---------------------------------------------------------------------------------------------------------
// Aggregate a round
// ---------------------------------------------------------------------------------------------------------

/** What one hospital contributes to a round. */
export interface HospitalUpdate {
  weights: WeightSet;
  /** Local training examples: the FedAvg weight, within `fed.examples` (clipped to the hospital's cap). */
  examples: number;
  /** Mean discriminator and generator losses of its local training (finite; clamped to ±LOSS_LIMIT in the statistics). */
  dLoss: number;
  gLoss: number;
  /** Its quality probe of the global model it received, when the round asked for one (RoundConfig `quality`). */
  quality?: ProbeReport;
}

/** What add() did with an update beyond counting it. */
export interface AddResult {
  /** Why the update's probe does not count in the round's quality figure (it was sent but not asked for, or on other features). */
  probeIgnored?: string;
  /**
   * Present when the update claimed more examples than its cap: it counts with `counted` (the cap), which
   * is its hospital's tokens-file cap (`by: 'hospital'`) or the median cap of earlier rounds (`by: 'median'`,
   * RoundAggregation.medianCap; when both are equal, 'hospital').
   */
  examplesClipped?: { claimed: number; counted: number; by: 'hospital' | 'median' };
  /** Present when a loss was beyond ±LOSS_LIMIT: it counts as the limit in the round's statistics (a sentence saying which). */
  lossClamped?: string;
  /** ‖update − global‖₂ as the bound measures it, when the round has a bound (for the logs: how close honest updates come). */
  norm?: number;
}

export interface RoundAggregationOptions {
  /**
   * The most examples `hospital` may count with (its tokens-file `maxExamples`), or undefined for no cap of
   * its own (then `fed.examples.max` is the cap). A larger claim is clipped, not refused.
   */
  exampleCap?: (hospital: string) => number | undefined;
  /**
   * The lower median of the example counts counted in the last completed round with at least two updates
   * (its RoundStatistics.examplesMedian; examplesMedianBase finds it in the history or the simulation's
   * rounds). With `fed.examples.medianFactor` it caps every hospital's count (medianExampleCap).
   * Undefined: no median cap (the first round).
   */
  previousExamplesMedian?: number;
}

export interface AddOptions {
  /**
   * The caller has just checked that every weight is finite (the server's decoder fuses the check with the
   * checksum pass) and not modified them since: the values are not scanned again.
   */
  finiteChecked?: boolean;
}

/** The statistics of an aggregated round (the history entry of the server, the summary of the simulation). */
export interface RoundStatistics {
  /** Updates aggregated. */
  participants: number;
  /** Their hospitals, sorted. */
  hospitals: string[];
  /** Sum of their example counts (as counted: each clipped to its cap). */
  examples: number;
  /**
   * The lower median of their counted example counts (lowerMedian): with `examples.medianFactor` it caps
   * the counts of later rounds, when this round has at least two updates (examplesMedianBase,
   * medianExampleCap).
   */
  examplesMedian: number;
  /** Example-weighted means of the losses the hospitals reported, each clamped to ±LOSS_LIMIT (exampleWeightedMean). */
  dLoss: number;
  gLoss: number;
  /**
   * Present when hospitals reported probes the round asked for: the example-weighted means of their KIDs
   * (and subset standard deviations) of the global model of round `quality.round` (= this round − 1).
   */
  quality?: RoundQuality;
}

export interface RoundResult {
  /** The new global weights (fresh arrays; same layout as the previous global). */
  weights: WeightSet;
  stats: RoundStatistics;
}

/**
 * The example-weighted mean Σ nₖ·xₖ / Σ nₖ, the one definition of a round's loss mean. Computed as
 * m · Σ (nₖ/N)·(xₖ/m) with m = max |xₖ|, so the result is finite for any finite inputs (no overflow of the
 * products). Throws a RangeError for an empty list, a non-finite value or a non-positive example count.
 */
export function exampleWeightedMean(items: readonly { examples: number; value: number }[]): number {
  if (items.length === 0) throw new RangeError('exampleWeightedMean: no values');
  let total = 0;
  let scale = 0;
  for (const { examples, value } of items) {
    if (!(Number.isFinite(examples) && examples > 0)) throw new RangeError(`exampleWeightedMean: example counts must be positive, got ${examples}`);
    if (!Number.isFinite(value)) throw new RangeError(`exampleWeightedMean: values must be finite, got ${value}`);
    total += examples;
    scale = Math.max(scale, Math.abs(value));
  }
  if (scale === 0) return 0;
  let sum = 0;
  for (const { examples, value } of items) sum += (examples / total) * (value / scale);
  return scale * sum;
}

/** `w` without its batch-norm tensors (the same tensor objects, nothing copied). */
export function withoutBatchNorm(w: WeightSet): WeightSet;
export function withoutBatchNorm(w: WeightLayout): WeightLayout;
export function withoutBatchNorm(w: WeightLayout): WeightLayout {
  return { fingerprint: w.fingerprint, tensors: w.tensors.filter((t) => !isBatchNormWeight(t.name)) };
}

/** The aggregator `fed.aggregator` names. */
export function aggregatorConfig(fed: FedConfig): AggregatorConfig {
  const a = fed.aggregator;
  return a.type === 'trimmed-mean' ? { type: 'trimmed-mean', beta: a.beta } : { type: a.type };
}

/**
 * One round's aggregation, created from the federation config and the global weights the round started
 * from. Updates are validated and streamed into the configured aggregator (shared/aggregate): with FedAvg
 * memory stays O(model) whatever the number of hospitals; an update is never kept unless the aggregator
 * keeps it (`retainsUpdates`). Updates are summed in the order they are added (the server: arrival order;
 * the simulation: sorted hospital names). FedAvg's products nₖ·wₖ are exact in float64 and its sums keep 29
 * bits beyond float32, so that order changes a float32 global weight only where a float64 rounding falls on
 * a float32 rounding boundary (none of 10⁶ random weights differed between two orders of 3, 5 or 8
 * updates); two updates sum alike in either order (test/federationEquivalence.test.ts: the simulation and
 * the server agree bit for bit). The loss means do not depend on it (stats()). Given the round's config
 * (`configureRound`), the quality probes the round asked for (`config.quality`) are averaged into its
 * statistics (`stats().quality`); without it, or on a round that did not ask, probes are ignored
 * (qualitySchedule.ts).
 */
export class RoundAggregation {
  private aggregator: Aggregator | null;
  /** The layout every update must have: the previous global's. */
  private readonly layout: WeightLayout;
  private readonly local: boolean;
  /** The round's update-norm bound (null: none). */
  readonly maxUpdateNorm: number | null;
  /** The cap the median of earlier rounds sets on every count (null: none; see medianExampleCap). */
  readonly medianCap: number | null;
  private readonly contributions = new Map<string, { examples: number; dLoss: number; gLoss: number; probe?: ProbeReport }>();

  constructor(
    private readonly fed: FedConfig,
    private readonly previous: WeightSet,
    /** The round's config as configureRound made it: which round this is and whether it probes quality. */
    private readonly config?: Pick<RoundConfig, 'round' | 'quality'>,
    private readonly opts: RoundAggregationOptions = {},
  ) {
    this.layout = layoutOf(previous);
    this.local = fed.batchNorm === 'local';
    this.maxUpdateNorm = updateNormBound(fed, previous);
    this.medianCap = medianExampleCap(fed, opts.previousExamplesMedian);
    // Under FedBN the aggregator sees only the non-batch-norm tensors.
    this.aggregator = createAggregator(aggregatorConfig(fed), this.local ? withoutBatchNorm(this.layout) : this.layout);
  }

  /** Whether the aggregator keeps references to the weights it was given (then their memory must not be reused). */
  get retainsUpdates(): boolean {
    return this.aggregator?.retainsUpdates ?? false;
  }

  /** Updates added so far. */
  get count(): number {
    return this.contributions.size;
  }

  /** Hospitals whose updates were added, sorted. */
  hospitals(): string[] {
    return [...this.contributions.keys()].sort();
  }

  /**
   * Validate the update of `hospital` and add it. Throws AggregationError, adding nothing, when the example
   * count is outside `fed.examples` ('examples'), the architecture or a tensor's name or shape differs from
   * the previous global ('fingerprint', 'shape'), a weight or a loss is not finite ('non-finite'), or the
   * update moves the model further than the round's bound `maxUpdateNorm` ('norm'; batch-norm tensors left
   * out under FedBN). Throws an Error when `hospital` already contributed or after result(). What is only
   * adjusted, the result says: an example count above its cap (the smaller of the hospital's own cap and
   * the median cap, medianCap) counts as the cap
   * (`examplesClipped`), a loss beyond ±LOSS_LIMIT as the limit (`lossClamped`), and a quality probe that
   * the round did not ask for, on other features or out of bounds is left out of the round's figure
   * (`probeIgnored`); the update still counts.
   */
  add(hospital: string, update: HospitalUpdate, opts: AddOptions = {}): AddResult {
    const aggregator = this.aggregator;
    if (!aggregator) throw new Error('RoundAggregation.add: the round was already aggregated (result() was called)');
    if (this.contributions.has(hospital)) throw new Error(`RoundAggregation.add: ${hospital} already contributed to this round`);
    const { weights, examples, dLoss, gLoss } = update;
    const ex = this.fed.examples;
    if (!Number.isSafeInteger(examples) || examples < ex.min || examples > ex.max) {
      throw new AggregationError('examples', `examples must be an integer in ${ex.min}…${ex.max}, got ${examples}`);
    }
    validateUpdate({ weights, examples, finiteChecked: opts.finiteChecked }, this.layout, { source: hospital });
    if (!Number.isFinite(dLoss) || !Number.isFinite(gLoss)) {
      throw new AggregationError('non-finite', `update from ${hospital} refused: losses must be finite numbers, got dLoss ${dLoss}, gLoss ${gLoss}`);
    }
    const counted = this.local ? withoutBatchNorm(weights) : weights;
    const bound = this.maxUpdateNorm;
    let norm: number | undefined;
    if (bound !== null) {
      const base = this.local ? withoutBatchNorm(this.previous) : this.previous;
      norm = l2Distance(counted, base);
      if (!(norm <= bound)) {
        throw new AggregationError('norm', `update norm ‖w − global‖₂ = ${norm.toPrecision(4)} exceeds maxUpdateNorm ${bound.toPrecision(4)}`);
      }
    }
    const own = this.opts.exampleCap?.(hospital) ?? ex.max;
    const cap = Math.min(own, ex.max, this.medianCap ?? ex.max);
    const weight = Math.min(examples, cap);
    // Values were checked above (or by the caller): the aggregator need not scan them again.
    aggregator.add({ weights: counted, examples: weight, finiteChecked: true });
    const result: AddResult = norm === undefined ? {} : { norm };
    if (weight < examples) result.examplesClipped = { claimed: examples, counted: weight, by: weight === own ? 'hospital' : 'median' };
    const clamped = (Object.entries({ dLoss, gLoss }) as [string, number][]).filter(([, v]) => clampLoss(v) !== v);
    if (clamped.length > 0) result.lossClamped = `${clamped.map(([k, v]) => `${k} ${v}`).join(', ')} counted as ${clamped.map(([k, v]) => `${k} ${clampLoss(v)}`).join(', ')}`;
    // The probe never decides whether the update counts: one that does not fit the round is left out of its figure.
    let probeIgnored: string | undefined;
    if (update.quality !== undefined) {
      const checked = probeReportSchema.safeParse(update.quality);
      probeIgnored = checked.success ? (probeMismatch(this.config?.quality, checked.data) ?? undefined) : `invalid probe: ${describeIssues(checked.error.issues)}`;
    }
    const probe = update.quality !== undefined && probeIgnored === undefined ? { ...update.quality } : undefined;
    this.contributions.set(hospital, { examples: weight, dLoss: clampLoss(dLoss), gLoss: clampLoss(gLoss), ...(probe ? { probe } : {}) });
    if (probeIgnored !== undefined) result.probeIgnored = probeIgnored;
    return result;
  }

  /**
   * The statistics of the updates added so far, the means summed in hospital-name order (the same whatever
   * order they were added in). Throws AggregationError('empty') before any.
   */
  stats(): RoundStatistics {
    if (this.contributions.size === 0) throw new AggregationError('empty', 'no update to aggregate in this round');
    // In hospital order, not arrival order: a float sum depends on its order, and the means must not
    // depend on which hospital's upload the server received first (nor differ from the simulation's).
    const all = this.hospitals().map((h) => this.contributions.get(h)!);
    return {
      participants: all.length,
      hospitals: this.hospitals(),
      examples: all.reduce((n, c) => n + c.examples, 0),
      examplesMedian: lowerMedian(all.map((c) => c.examples)),
      dLoss: exampleWeightedMean(all.map((c) => ({ examples: c.examples, value: c.dLoss }))),
      gLoss: exampleWeightedMean(all.map((c) => ({ examples: c.examples, value: c.gLoss }))),
      ...this.quality(all),
    };
  }

  /** `{ quality }` from the counted probes (example-weighted means), or nothing when there is none. */
  private quality(all: { examples: number; probe?: ProbeReport }[]): { quality?: RoundQuality } {
    const probed = all.filter((c) => c.probe !== undefined);
    if (probed.length === 0 || !this.config?.quality) return {};
    return {
      quality: {
        round: this.config.round - 1,
        kid: exampleWeightedMean(probed.map((c) => ({ examples: c.examples, value: c.probe!.kid }))),
        kidStd: exampleWeightedMean(probed.map((c) => ({ examples: c.examples, value: c.probe!.kidStd }))),
        hospitals: probed.length,
        examples: probed.reduce((n, c) => n + c.examples, 0),
        features: this.config.quality.features,
      },
    };
  }

  /**
   * The new global weights and the round's statistics. Under FedBN the batch-norm tensors are copies of the
   * previous global's. Once only: the aggregator (FedAvg's running sums) is released here. Throws
   * AggregationError('empty') when no update was added.
   */
  result(): RoundResult {
    const aggregator = this.aggregator;
    if (!aggregator) throw new Error('RoundAggregation.result: already taken');
    const stats = this.stats();
    const aggregated = aggregator.result();
    this.aggregator = null;
    if (!this.local) return { weights: aggregated, stats };
    let k = 0;
    const tensors = this.previous.tensors.map((t) => {
      if (isBatchNormWeight(t.name)) return { name: t.name, shape: [...t.shape], data: t.data.slice() };
      return aggregated.tensors[k++];
    });
    return { weights: { fingerprint: this.previous.fingerprint, tensors }, stats };
  }
}
