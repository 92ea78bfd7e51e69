import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AggregationError, type AggregatorConfig } from '../shared/aggregate/index.ts';
import { encodeCheckpoint } from '../shared/checkpoint.ts';
import { parseFedConfig, type FedConfig, type FedConfigInput } from '../shared/config/fedConfig.ts';
import type { GanConfig } from '../shared/config/ganConfig.ts';
import { datasetFromTiles, type Dataset } from '../shared/data/dataset.ts';
import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { HospitalTraining, memoryLocalWeights } from '../shared/fed/hospitalTraining.ts';
import { partitionBySite, partitionIID, partitionNonIID, type PartitionSpec } from '../shared/fed/partition.ts';
import { configureRound, examplesMedianBase, RoundAggregation } from '../shared/fed/strategy.ts';
import { createGan } from '../shared/gan/gan.ts';
import { generateSampleGrid } from '../shared/gan/sampleGrid.ts';
import { recalibrateGeneratorBatchNorm } from '../shared/gan/recalibrateBatchNorm.ts';
import type { WeightSet } from '../shared/weights.ts';
import { CliError } from '../node/cliError.ts';
import { encodePng } from '../node/png.ts';
import type { FolderTile } from '../node/tileFolder.ts';
import { readResumeState, stoppingRules, writeLocalWeights, type ResumedCall } from './simulationResume.ts';
import { emaWarmupRound, SimulationQuality, type QualityPoint, type QualitySummary, type SimulationQualityOptions } from './simulationQuality.ts';

export interface SimulationOptions {
  clients: number;
  rounds: number;
  /** Generator steps each sampled hospital trains per round (FedConfig localSteps). */
  localSteps: number;
  fraction: number;
  /** Minimum hospitals per round (default 1). */
  minFit?: number;
  partition: PartitionSpec;
  model: GanConfig;
  batchNorm: BatchNormPolicy;
  aggregator: AggregatorConfig;
  out: string;
  /**
   * Further federation settings, as a server's FED_CONFIG (shared/config/fedConfig.ts): sampling seed
   * (default: the model seed), minFit, maxUpdateNorm, examples, … The fields the options above define
   * (rounds, fraction, localSteps, batchNorm, aggregator, model) come from them.
   */
  fed?: Omit<FedConfigInput, 'rounds' | 'fraction' | 'localSteps' | 'batchNorm' | 'aggregator' | 'model'>;
  /** Samples per class in samples.png. */
  samplesPerClass?: number;
  /**
   * Quality tracked during training (cli/simulationQuality.ts): the global model probed every few rounds
   * against a fixed real reference, the curve in summary.json, checkpoint-best.fgw, and optionally an early
   * stop once the curve flattens (`untilFlat`; `rounds` is then the cap). Off when absent.
   */
  quality?: SimulationQualityOptions;
  /** After each quality probe: the point, whether it is the best so far, whether the run stops there. */
  onQuality?: (p: { point: QualityPoint; best: boolean; stop: boolean }) => void;
  onProgress?: (p: { round: number; rounds: number; client: number; clients: number; fraction: number; detail: string }) => void;
  /**
   * Train for at most this long (`rounds` is then the cap): after the first round that ends past the budget
   * the run stops, probes quality once more if that round was not probed, and writes its outputs as if it
   * had reached its last round. A round is never cut short, so a run overshoots by up to one round.
   */
  timeBudgetSeconds?: number;
  /** The clock the time budget reads, in milliseconds (default Date.now): an input, so tests can drive it. */
  now?: () => number;
  /**
   * Go on with the run in `out` from its last round (cli/simulationResume.ts), up to `rounds`: its
   * checkpoint, rounds, quality curve and (FedBN) hospitals' own weights. Its other settings must be these.
   */
  resume?: boolean;
}

export interface ClientSummary {
  id: string;
  examples: number;
  dLoss: number;
  gLoss: number;
}

export interface RoundSummary {
  round: number;
  clients: ClientSummary[];
  /** Example-weighted means over the round's clients. */
  dLoss: number;
  gLoss: number;
  seconds: number;
  /** Updates aggregated, and the lower median of their counted example counts (it caps the next round's, as on the server). */
  participants: number;
  examplesMedian: number;
}

export interface SimulationSummary {
  config: Record<string, unknown>;
  partition: { id: string; examples: number; perClass: number[]; site?: string }[];
  rounds: RoundSummary[];
  checkpoint: string;
  samples: string;
  backend: string;
  /** With quality tracking: the curve, the best round and checkpoint-best.fgw, an early stop. */
  quality?: QualitySummary;
  /** With a time budget: the budget, and the round the run stopped after because it ran out (null: it did not). */
  timeBudget?: { seconds: number; stoppedAfterRound: number | null; rounds: number };
  /** Each call that went on with this run (`resume`): the rounds it found completed, and when. */
  resumed?: ResumedCall[];
  /**
   * true in the snapshot written after each quality probe while the run goes on (its checkpoint.fgw,
   * checkpoint-best.fgw and local weights are that round's, there is no samples.png yet): a run killed later
   * keeps its best model and resumes from there. Absent in the final summary.
   */
  inProgress?: boolean;
}

/** Write a file whole or not at all (a run killed mid-write leaves the previous version). */
function writeWhole(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/**
 * Split tiles into hospitals as the partition spec says; each hospital gets at least one tile. The quality
 * report splits the same folder with it (eval/evaluate.ts, `--partition`): tiles read in the same order with
 * the same seed give the same hospitals.
 */
export function partitionTiles(tiles: readonly Pick<FolderTile, 'label' | 'site'>[], spec: PartitionSpec, clients: number, seed: number): { indices: number[][]; names: string[] } {
  if (clients > tiles.length) throw new CliError(`cannot split ${tiles.length} tiles among ${clients} hospitals`);
  try {
    if (spec.kind === 'site') {
      const missing = tiles.filter((t) => !t.site).length;
      if (missing) throw new CliError(`--partition site needs a manifest.csv with a "site" column; ${missing} tiles have no site`);
      const p = partitionBySite(tiles.map((t) => t.site!), { maxClients: spec.maxClients ?? clients });
      return { indices: p.clients, names: p.names.map((n) => `site-${n}`) };
    }
    const labels = tiles.map((t) => t.label);
    const indices = spec.kind === 'iid' ? partitionIID(labels, clients, seed) : partitionNonIID(labels, clients, spec.ratio, seed);
    return { indices, names: indices.map((_, i) => `hospital-${i + 1}`) };
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
}

/**
 * The federation config a simulation of `hospitals` hospitals runs under, the server's schema: every
 * hospital is available, at least min(minFit, hospitals) train per round, the sampling seed is the model
 * seed unless `opts.fed` says otherwise.
 */
export function simulationFedConfig(opts: SimulationOptions, hospitals: number): FedConfig {
  const minFit = Math.min(opts.minFit ?? 1, hospitals);
  const input: FedConfigInput = {
    minFit,
    minAvailable: hospitals,
    minCompletion: 1,
    seed: opts.model.seed,
    // The simulation measures quality itself, on all its tiles (opts.quality): its hospitals are not asked to.
    quality: { everyRounds: 0 },
    ...opts.fed,
    rounds: opts.rounds,
    fraction: opts.fraction,
    localSteps: opts.localSteps,
    batchNorm: opts.batchNorm,
    aggregator: opts.aggregator,
    model: opts.model,
  };
  try {
    return parseFedConfig(input, 'simulation settings');
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
}

/**
 * Render one row of generated tiles per class as a PNG. Under FedBN (`batchNorm: 'local'`) the global
 * generator's batch-norm statistics are untrained by design (D1): they are recalibrated data-free first
 * (shared/gan/recalibrateBatchNorm.ts), as the evaluator does.
 */
export async function samplesPng(global: WeightSet, model: GanConfig, perClass: number, opts: { batchNorm?: BatchNormPolicy; seed?: number } = {}): Promise<Buffer> {
  const seed = opts.seed ?? 1234;
  const gan = createGan(model);
  try {
    gan.setWeights(global);
    if (opts.batchNorm === 'local') recalibrateGeneratorBatchNorm(gan);
    const grid = await generateSampleGrid(gan, perClass, seed);
    return encodePng(grid.width, grid.height, grid.rgba);
  } finally {
    gan.dispose();
  }
}

/**
 * N simulated hospitals in one process, running the same shared/ code as the browser worker and the
 * server: sample hospitals, train each locally from the global weights, aggregate, repeat.
 */
export async function runSimulation(tiles: readonly FolderTile[], opts: SimulationOptions): Promise<SimulationSummary> {
  const { model } = opts;
  const { indices, names } = partitionTiles(tiles, opts.partition, opts.clients, model.seed);
  const datasets: Dataset[] = indices.map((idx) => datasetFromTiles(idx.map((i) => tiles[i]), model.imageSize, model.classes.length));
  // Each hospital's own weights between rounds (under FedBN its batch norm), kept for a resumed run.
  const localStores = names.map(() => memoryLocalWeights());
  // Each hospital trains under its partition name, which keys its seed (D3).
  const hospitals = names.map((name, i) => new HospitalTraining({ hospital: name, data: datasets[i], localWeights: localStores[i] }));
  const init = createGan(model);
  let global = await init.getWeightsAsync(); // async: a GPU backend (WebGPU through Dawn) has no synchronous read in Node
  init.dispose();
  // The flat rule waits for the generator EMA to forget the random initial generator (unless told otherwise).
  const untilFlat = opts.quality?.untilFlat && { fromRound: emaWarmupRound(model.ema?.decay, opts.localSteps), ...opts.quality.untilFlat };
  const quality = new SimulationQuality(opts.quality && { ...opts.quality, untilFlat }, model, opts.batchNorm);
  const qualityConfig = opts.quality ? { ...opts.quality, extractor: opts.quality.extractor.name } : undefined;
  const summary: SimulationSummary = {
    config: { ...opts, onProgress: undefined, onQuality: undefined, now: undefined, quality: qualityConfig, clientsActual: hospitals.length, tiles: tiles.length },
    partition: indices.map((idx, i) => ({
      id: names[i],
      examples: idx.length,
      perClass: model.classes.map((_, c) => idx.filter((j) => tiles[j].label === c).length),
      ...(opts.partition.kind === 'site' ? { site: names[i].replace(/^site-/, '') } : {}),
    })),
    rounds: [],
    checkpoint: '',
    samples: '',
    backend: tf.getBackend(),
  };
  const fed = simulationFedConfig(opts, names.length);
  const now = opts.now ?? Date.now;
  const budget = opts.timeBudgetSeconds;
  if (budget !== undefined && !(budget > 0)) throw new Error(`timeBudgetSeconds must be positive, got ${budget}`);
  if (budget !== undefined) summary.timeBudget = { seconds: budget, stoppedAfterRound: null, rounds: fed.rounds };
  let completed = 0;
  // Refused before any training or feature work when the run in `out` cannot be continued exactly.
  if (opts.resume) {
    const state = readResumeState<SimulationSummary>(resolve(opts.out), summary.config, summary.partition, fed.rounds, opts.batchNorm);
    global = state.global;
    completed = state.round;
    summary.rounds = state.summary.rounds;
    const rules = stoppingRules(state.summary.config, summary.config);
    summary.resumed = [...(state.summary.resumed ?? []), { fromRound: state.round, at: new Date().toISOString(), ...(rules.changed ? { untilFlatWas: rules.was } : {}) }];
    quality.restore(state.summary.quality?.curve ?? [], state.best);
    state.local?.forEach((w, k) => localStores[k].save(w, { round: state.round, model: model as unknown as Record<string, unknown> }));
  }
  const out = resolve(opts.out);
  /** The best round whose checkpoint-best.fgw is on disk (only a new best is written again). */
  let bestWritten: number | null = null;
  /**
   * Everything a resumed run and the report need, as of the last completed round: the global model, the
   * hospitals' own weights under FedBN, the best model so far, and summary.json (marked inProgress until the end).
   */
  const persist = (final: boolean) => {
    mkdirSync(out, { recursive: true });
    if (opts.batchNorm === 'local') writeLocalWeights(out, names, localStores.map((s) => s.weights), completed);
    summary.checkpoint = join(out, 'checkpoint.fgw');
    // The one checkpoint format (shared/checkpoint.ts): npm run evaluate reads it, recalibrating FedBN's batch norms as samples.png does.
    writeWhole(summary.checkpoint, encodeCheckpoint(global, { config: model, round: completed, batchNorm: opts.batchNorm, source: 'simulation' }));
    if (quality.enabled) {
      // The best-quality global model, in the same format (its round in the meta).
      const best = quality.best();
      const file = best ? join(out, 'checkpoint-best.fgw') : null;
      if (best && file && best.round !== bestWritten) {
        writeWhole(file, encodeCheckpoint(best.weights, { config: model, round: best.round, batchNorm: opts.batchNorm, source: 'simulation' }));
        bestWritten = best.round;
      }
      summary.quality = quality.summary(file);
    }
    if (final) delete summary.inProgress;
    else summary.inProgress = true;
    writeWhole(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  };
  const started = now();
  await quality.prepare(tiles);
  // The rounds' medians of the counted example counts, which cap the next round's (as on the server).
  const medians = summary.rounds.map(({ round, participants, examplesMedian }) => ({ round, participants, examplesMedian }));
  for (let round = completed + 1; round <= fed.rounds; round++) {
    const t0 = Date.now();
    // The round the server would run with these hospitals (D2): its sample, its config, its aggregation.
    const { sampled: chosen, config } = configureRound(fed, { round, attempt: 1, available: names, global });
    const aggregation = new RoundAggregation(fed, global, config, { previousExamplesMedian: examplesMedianBase(medians)?.median });
    const clients: ClientSummary[] = [];
    for (const [k, id] of chosen.entries()) {
      const h = hospitals[names.indexOf(id)];
      const r = await h.train(global, config, {
        onProgress: (p) =>
          opts.onProgress?.({
            round,
            rounds: opts.rounds,
            client: k + 1,
            clients: chosen.length,
            fraction: p.fraction,
            detail: `${id} step ${p.done}/${p.total}` + (p.dLoss !== undefined ? ` D ${p.dLoss.toFixed(3)} G ${p.gLoss!.toFixed(3)}` : ''),
          }),
      });
      try {
        aggregation.add(id, r);
      } catch (e) {
        // The server would drop this hospital from the round; a simulation stops and says why.
        if (e instanceof AggregationError) throw new Error(`the update of ${id} in round ${round} was refused (${e.reason}): ${e.message}`);
        throw e;
      }
      clients.push({ id, examples: r.examples, dLoss: r.dLoss, gLoss: r.gLoss });
    }
    const { weights, stats } = aggregation.result();
    global = weights;
    medians.push({ round, participants: stats.participants, examplesMedian: stats.examplesMedian });
    summary.rounds.push({ round, clients, dLoss: stats.dLoss, gLoss: stats.gLoss, seconds: (Date.now() - t0) / 1000, participants: stats.participants, examplesMedian: stats.examplesMedian });
    completed = round;
    const outOfTime = budget !== undefined && round < fed.rounds && (now() - started) / 1000 >= budget;
    // The last round of a budget-stopped run is probed like a run's last round, so the curve ends where it stopped.
    if (quality.due(round, fed.rounds) || (outOfTime && quality.enabled)) {
      const probed = await quality.probe(round, global, fed.rounds);
      // Saved before anything else can fail: a run killed after this keeps its best model and resumes here.
      if (!probed.stop && !outOfTime && round < fed.rounds) persist(false);
      opts.onQuality?.(probed);
      if (probed.stop) break;
    }
    if (outOfTime) {
      summary.timeBudget!.stoppedAfterRound = round;
      break;
    }
  }
  hospitals.forEach((h) => h.dispose());
  datasets.forEach((d) => d.dispose());
  quality.dispose();

  mkdirSync(out, { recursive: true });
  summary.samples = join(out, 'samples.png');
  writeFileSync(summary.samples, await samplesPng(global, model, opts.samplesPerClass ?? 8, { batchNorm: opts.batchNorm }));
  persist(true);
  return summary;
}
