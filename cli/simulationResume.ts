/**
 * Resuming a simulation (`npm run simulate -- --resume`): a run stopped by its time budget, or one that
 * reached its `--rounds` cap, goes on from its last round in the same `--out` folder, as if it had never
 * stopped. A device lease of 10 minutes a call trains a long run in several calls this way.
 *
 * What a round depends on, and where a resumed run finds it:
 * - the global model: `checkpoint.fgw` (weights, generator EMA and batch-norm statistics, float32 as trained);
 * - the round's sample, seeds and config: functions of the federation config and the round number
 *   (shared/fed/strategy.ts configureRound), so nothing to keep;
 * - the example-count cap of the next round: the medians of the rounds before, in `summary.json` `rounds`;
 * - each hospital's optimizers: fresh every round (shared/fed/hospitalTraining.ts), nothing to keep;
 * - under FedBN, each hospital's own weights (its batch norm): `local-weights/<k>.fgw`, written by every run
 *   with `batchNorm: 'local'` (they hold that simulated hospital's batch-norm statistics, as its browser's
 *   IndexedDB would);
 * - the quality curve, its best round and early-stop state: `summary.json` `quality` and `checkpoint-best.fgw`
 *   (not needed when the best round is the last: checkpoint.fgw then holds the same model).
 *
 * So a resumed run's weights, losses and curve equal those of an uninterrupted run, to the bit
 * (cli/simulationResume.test.ts). Every setting but the round cap, the time budget, the sample grid's
 * size and the stopping rule must be the run's own; a different one is refused, naming it. A run that
 * `--until-flat` stopped goes on under a changed rule (a later first round, a longer patience): it trains
 * the rounds an uninterrupted run under that rule would have trained.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError, decodeCheckpoint } from '../shared/checkpoint.ts';
import { decodeWeights, encodeWeights, WeightsCodecError } from '../shared/codec/weightsCodec.ts';
import { isPlainObject } from '../shared/plainObject.ts';
import type { WeightSet } from '../shared/weights.ts';
import { CliError } from '../node/cliError.ts';
import type { QualityPoint } from './simulationQuality.ts';

/** Settings a resumed run may change: the round cap, this call's time budget, the sample grid, the flag itself. */
const MAY_CHANGE = new Set(['rounds', 'timeBudgetSeconds', 'samplesPerClass', 'resume', 'out']);

/**
 * The stopping rule (`quality.untilFlat`) may change too: it decides when a run ends, never what a round
 * trains. SimulationQuality.restore replays the run's curve through this call's rule and refuses one that
 * would have stopped the run at one of its probes: a run the flat rule stopped is refused under that same
 * rule, and goes on under one that would not have stopped it.
 */
function withoutStoppingRule(config: Record<string, unknown>): Record<string, unknown> {
  const { quality } = config;
  if (!isPlainObject(quality)) return config;
  const { untilFlat: _, ...rest } = quality;
  return { ...config, quality: rest };
}

/** The run's stopping rule and this call's, as their configs state them (null: no --until-flat). */
export function stoppingRules(run: Record<string, unknown>, current: Record<string, unknown>): { was: unknown; changed: boolean } {
  const rule = (c: Record<string, unknown>) => (isPlainObject(c.quality) ? (c.quality.untilFlat ?? null) : null);
  const was = rule(run);
  return { was, changed: json(was) !== json(rule(current)) };
}

/** A call that resumed the run: the round it went on from, when, and the stopping rule it replaced (when it changed it). */
export interface ResumedCall {
  fromRound: number;
  at: string;
  untilFlatWas?: unknown;
}

/** The parts of an earlier run's summary.json a resumed run continues. */
export interface ResumableSummary {
  config: Record<string, unknown>;
  partition: { id: string; examples: number; perClass: number[] }[];
  rounds: { round: number; participants?: number; examplesMedian?: number }[];
  quality?: { curve: QualityPoint[]; best: { round: number; kid: number } | null; stoppedEarly: { round: number } | null };
  resumed?: ResumedCall[];
}

export interface ResumeState<S extends ResumableSummary> {
  summary: S;
  /** Rounds the run has completed. */
  round: number;
  global: WeightSet;
  /** The best round's global model (checkpoint-best.fgw), when the run tracked quality and had a best. */
  best: WeightSet | null;
  /** Under FedBN: each hospital's own weights, in partition order. */
  local: WeightSet[] | null;
}

export function localWeightsFile(out: string, hospital: number): string {
  return join(out, 'local-weights', `${hospital + 1}.fgw`);
}

/** Under FedBN: each hospital's own weights, for a later --resume (meta: the hospital's name and round). */
export function writeLocalWeights(out: string, names: readonly string[], weights: readonly (WeightSet | undefined)[], round: number): void {
  mkdirSync(join(out, 'local-weights'), { recursive: true });
  names.forEach((hospital, k) => {
    const w = weights[k];
    if (w) writeFileSync(localWeightsFile(out, k), encodeWeights(w, { kind: 'fedgan-simulation-local-weights', hospital, round }));
  });
}

const json = (v: unknown) => JSON.stringify(v) ?? 'undefined';
const short = (s: string) => (s.length > 160 ? `${s.slice(0, 157)}...` : s);

/** The first setting (a dotted path) whose JSON differs between two settings objects, with both values; null: none. */
function firstDifference(a: unknown, b: unknown, path: string): { path: string; a: unknown; b: unknown } | null {
  if (json(a) === json(b)) return null;
  if (!isPlainObject(a) || !isPlainObject(b)) return { path, a, b };
  for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const d = firstDifference(a[key], b[key], path ? `${path}.${key}` : key);
    if (d) return d;
  }
  return null;
}

/**
 * Read the run in `out` for a resumed call whose settings are `current` (what its summary.json `config` would
 * say) and whose hospitals are `partition` (the same split of the same tiles), with `rounds` as the new cap.
 */
export function readResumeState<S extends ResumableSummary>(
  out: string,
  current: Record<string, unknown>,
  partition: ResumableSummary['partition'],
  rounds: number,
  batchNorm: string,
): ResumeState<S> {
  const summaryFile = join(out, 'summary.json');
  if (!existsSync(summaryFile)) throw new CliError(`--resume: ${out} holds no summary.json: no run to resume there`);
  let summary: S;
  try {
    summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as S;
  } catch (e) {
    throw new CliError(`--resume: ${summaryFile} is not valid JSON (${(e as Error).message})`);
  }
  if (!summary || typeof summary !== 'object' || !Array.isArray(summary.rounds) || !summary.config) throw new CliError(`--resume: ${summaryFile} is not a simulation summary (no config or rounds)`);

  // The same run: every setting but those a resumed call may change, and the same hospitals.
  const settings = (c: unknown) => Object.fromEntries(Object.entries(withoutStoppingRule(JSON.parse(json(c)) as Record<string, unknown>)).filter(([k]) => !MAY_CHANGE.has(k)));
  const d = firstDifference(settings(summary.config), settings(current), '');
  if (d) throw new CliError(`--resume: the run in ${out} was trained with ${d.path} ${short(json(d.a))}, this call has ${short(json(d.b))}; resume with the run's own settings (only --rounds, --time-budget-minutes and the stopping rule may change)`);
  const split = (p: ResumableSummary['partition']) => json(p.map(({ id, examples, perClass }) => ({ id, examples, perClass })));
  if (split(summary.partition ?? []) !== split(partition)) throw new CliError(`--resume: the hospitals differ from the run's in ${out} (another data folder or split): ${short(split(partition))} vs ${short(split(summary.partition ?? []))}`);

  const round = summary.rounds.length;
  if (round === 0) throw new CliError(`--resume: the run in ${out} completed no round`);
  if (round >= rounds) throw new CliError(`--resume: the run in ${out} has completed ${round} rounds and --rounds is ${rounds}: nothing to train (raise --rounds to go on)`);
  const missing = summary.rounds.findIndex((r) => typeof r.participants !== 'number' || typeof r.examplesMedian !== 'number');
  if (missing >= 0) throw new CliError(`--resume: round ${missing + 1} in ${summaryFile} records no example-count median (written before runs could be resumed): start a new run`);

  const read = (file: string, name: string) => {
    if (!existsSync(file)) throw new CliError(`--resume: ${file} is missing: the run's ${name} cannot be restored`);
    return new Uint8Array(readFileSync(file));
  };
  let global: WeightSet;
  let best: WeightSet | null = null;
  try {
    global = decodeCheckpoint(read(join(out, 'checkpoint.fgw'), 'global model'), { expectedRound: round, name: 'checkpoint.fgw' }).weights;
    const bestFile = join(out, 'checkpoint-best.fgw');
    const bestRound = summary.quality?.best?.round;
    // The best round being the last, checkpoint.fgw holds its model: a carried run may leave the copy out.
    if (bestRound === round && !existsSync(bestFile)) best = global;
    else if (bestRound !== undefined) best = decodeCheckpoint(read(bestFile, 'best model'), { expectedRound: bestRound, name: 'checkpoint-best.fgw' }).weights;
  } catch (e) {
    if (e instanceof CheckpointError || e instanceof WeightsCodecError) throw new CliError(`--resume: ${e.message}`);
    throw e;
  }
  let local: WeightSet[] | null = null;
  if (batchNorm === 'local') {
    local = partition.map((h, k) => {
      const file = localWeightsFile(out, k);
      let decoded;
      try {
        decoded = decodeWeights(read(file, `hospital ${h.id}'s own weights (FedBN)`));
      } catch (e) {
        if (e instanceof WeightsCodecError) throw new CliError(`--resume: ${file}: ${e.message}`);
        throw e;
      }
      if (decoded.meta.hospital !== h.id || decoded.meta.round !== round) {
        throw new CliError(`--resume: ${file} holds the weights of ${json(decoded.meta.hospital)} after round ${json(decoded.meta.round)}, expected ${h.id} after round ${round}`);
      }
      return decoded.weights;
    });
  }
  return { summary, round, global, best, local };
}
