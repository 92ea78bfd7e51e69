/**
 * When the federation measures quality during training, and what it keeps from the measures: pure
 * functions shared by the round strategy (configureRound, RoundAggregation), the server (best checkpoint)
 * and the simulation. The measure itself is shared/metrics/qualityProbe.ts; a hospital's side of it is
 * shared/fed/hospitalProbe.ts.
 *
 * The server has no tiles, so its figure comes from the hospitals: in round r each sampled hospital probes
 * the global model it RECEIVED, the result of round r − 1, against its own tiles, and reports the probe
 * with its update. Round r's history entry records the example-weighted mean as
 * `quality: { round: r − 1, kid, … }`, the model it describes. Rounds r with r − 1 a positive multiple of
 * `fed.quality.everyRounds` probe: models N, 2N, 3N, … are measured; the final model (round `fed.rounds`)
 * is not, since no round follows it. The simulation, which holds tiles, probes its global model itself
 * after rounds N, 2N, … and after its last round (simulationProbeDue).
 */
import type { HistoryEntry } from '../checkpoint.ts';
import type { FedConfig } from '../config/fedConfig.ts';
import type { ProbeReport, RoundConfig } from '../protocol/messages.ts';

/** What a round asks its hospitals to measure (RoundConfig `quality`). */
export type QualityRequest = NonNullable<RoundConfig['quality']>;

/**
 * The global model round `round`'s hospitals probe (round − 1), or null when the round does not probe:
 * round − 1 must be a positive multiple of `everyRounds` (0: never).
 */
export function probedModelRound(everyRounds: number, round: number): number | null {
  if (!Number.isSafeInteger(round) || round < 1) throw new RangeError(`round must be a positive integer, got ${round}`);
  if (!Number.isSafeInteger(everyRounds) || everyRounds < 0) throw new RangeError(`everyRounds must be an integer ≥ 0, got ${everyRounds}`);
  const model = round - 1;
  return everyRounds > 0 && model > 0 && model % everyRounds === 0 ? model : null;
}

/** The RoundConfig `quality` of round `round` under `fed`, or undefined when the round does not probe. */
export function qualityRequest(fed: FedConfig, round: number): QualityRequest | undefined {
  const q = fed.quality;
  if (probedModelRound(q.everyRounds, round) === null) return undefined;
  return { features: q.features, perClass: q.perClass, seed: q.seed, subsets: q.subsets };
}

/**
 * Whether the simulation probes its global model after round `round` of at most `lastRound`: every
 * `everyRounds` rounds, and after the last round of a run at least `everyRounds` long (a shorter run, a
 * quick look, is not measured at all).
 */
export function simulationProbeDue(everyRounds: number, round: number, lastRound: number): boolean {
  return everyRounds > 0 && round >= 1 && (round % everyRounds === 0 || (round === lastRound && lastRound >= everyRounds));
}

/** Why a reported probe does not count in the round's figure, or null when it does. */
export function probeMismatch(request: QualityRequest | undefined, report: ProbeReport): string | null {
  if (!request) return 'the round did not ask for a quality probe';
  if (report.features !== request.features) return `the probe was made with ${report.features} features, the round asked for ${request.features}`;
  if (!Number.isFinite(report.kid) || !Number.isFinite(report.kidStd)) return 'the probe figures are not finite';
  return null;
}

export interface BestQuality {
  /** The round whose global model scored best (lowest KID). */
  round: number;
  kid: number;
  features: string;
}

/**
 * The best-quality model of a federation's history: the lowest finite `quality.kid` (the earlier model on
 * a tie), or null when no round recorded quality. Only figures on the features of the last recorded
 * probe count (KIDs on different networks are not comparable).
 */
export function bestQuality(history: readonly HistoryEntry[]): BestQuality | null {
  let features: string | undefined;
  for (const e of history) if (e.quality && Number.isFinite(e.quality.kid)) features = e.quality.features;
  let best: BestQuality | null = null;
  for (const e of history) {
    const q = e.quality;
    if (!q || q.features !== features || !Number.isFinite(q.kid)) continue;
    if (best === null || q.kid < best.kid || (q.kid === best.kid && q.round < best.round)) best = { round: q.round, kid: q.kid, features: q.features };
  }
  return best;
}

/** The latest quality figure a history recorded, or null. */
export function latestQuality(history: readonly HistoryEntry[]): NonNullable<HistoryEntry['quality']> | null {
  for (let i = history.length - 1; i >= 0; i--) {
    const q = history[i].quality;
    if (q) return q;
  }
  return null;
}
