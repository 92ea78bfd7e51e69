import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { createAggregator, type AggregatorConfig } from '../shared/aggregate/index.ts';
import { encodeCheckpoint } from '../shared/checkpoint.ts';
import type { GanConfig } from '../shared/config/ganConfig.ts';
import { datasetFromTiles, type Dataset } from '../shared/data/dataset.ts';
import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { HospitalTraining } from '../shared/fed/hospitalTraining.ts';
import { partitionBySite, partitionIID, partitionNonIID, type PartitionSpec } from '../shared/fed/partition.ts';
import { sampleClients } from '../shared/fed/sampling.ts';
import { createGan, generate } from '../shared/gan/gan.ts';
import { recalibrateGeneratorBatchNorm } from '../shared/gan/recalibrateBatchNorm.ts';
import { tileGrid, toRgbBytes } from '../shared/image/grid.ts';
import type { WeightSet } from '../shared/weights.ts';
import { CliError } from './cliError.ts';
import { encodePng } from './png.ts';
import type { FolderTile } from './tileFolder.ts';

export interface SimulationOptions {
  clients: number;
  rounds: number;
  localEpochs: number;
  fraction: number;
  /** Minimum hospitals per round (default 1). */
  minFit?: number;
  partition: PartitionSpec;
  model: GanConfig;
  batchNorm: BatchNormPolicy;
  aggregator: AggregatorConfig;
  out: string;
  /** Samples per class in samples.png. */
  samplesPerClass?: number;
  onProgress?: (p: { round: number; rounds: number; client: number; clients: number; fraction: number; detail: string }) => void;
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
}

export interface SimulationSummary {
  config: Record<string, unknown>;
  partition: { id: string; examples: number; perClass: number[]; site?: string }[];
  rounds: RoundSummary[];
  checkpoint: string;
  samples: string;
  backend: string;
}

/** Split tiles into hospitals as the partition spec says; each hospital gets at least one tile. */
export function partitionTiles(tiles: readonly FolderTile[], spec: PartitionSpec, clients: number, seed: number): { indices: number[][]; names: string[] } {
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

/** Mean of `key` over clients, weighted by their example counts. */
function weightedMean(clients: ClientSummary[], key: 'dLoss' | 'gLoss'): number {
  const n = clients.reduce((s, c) => s + c.examples, 0);
  return clients.reduce((s, c) => s + c[key] * c.examples, 0) / n;
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
    const labels = model.classes.flatMap((_, c) => new Array<number>(perClass).fill(c));
    const imgs = generate(gan, labels, seed);
    const data = (await imgs.data()) as Float32Array;
    imgs.dispose();
    const grid = tileGrid(toRgbBytes(data, labels.length, model.imageSize), model.imageSize, model.classes.length, perClass);
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
  const hospitals = names.map((name, i) => new HospitalTraining(datasets[i], name, model.seed + i + 1));
  const init = createGan(model);
  let global = init.getWeights();
  init.dispose();
  const summary: SimulationSummary = {
    config: { ...opts, onProgress: undefined, clientsActual: hospitals.length, tiles: tiles.length },
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
  for (let round = 1; round <= opts.rounds; round++) {
    const t0 = Date.now();
    const chosen = sampleClients(names, { fraction: opts.fraction, minCount: Math.min(opts.minFit ?? 1, names.length), seed: model.seed, round });
    const aggregator = createAggregator(opts.aggregator);
    const clients: ClientSummary[] = [];
    for (const [k, id] of chosen.entries()) {
      const h = hospitals[names.indexOf(id)];
      const r = await h.train(global, {
        model,
        epochs: opts.localEpochs,
        batchNorm: opts.batchNorm,
        round,
        onProgress: (p) =>
          opts.onProgress?.({
            round,
            rounds: opts.rounds,
            client: k + 1,
            clients: chosen.length,
            fraction: (p.epoch + p.step / p.stepsPerEpoch) / p.epochs,
            detail: `${id} epoch ${p.epoch + 1}/${p.epochs}` + (p.dLoss !== undefined ? ` D ${p.dLoss.toFixed(3)} G ${p.gLoss!.toFixed(3)}` : ''),
          }),
      });
      if (!Number.isFinite(r.dLoss) || !Number.isFinite(r.gLoss)) throw new Error(`${id} diverged in round ${round}: D loss ${r.dLoss}, G loss ${r.gLoss}`);
      aggregator.add({ weights: r.weights, examples: r.examples });
      clients.push({ id, examples: r.examples, dLoss: r.dLoss, gLoss: r.gLoss });
    }
    global = aggregator.result();
    summary.rounds.push({ round, clients, dLoss: weightedMean(clients, 'dLoss'), gLoss: weightedMean(clients, 'gLoss'), seconds: (Date.now() - t0) / 1000 });
  }
  hospitals.forEach((h) => h.dispose());
  datasets.forEach((d) => d.dispose());

  const out = resolve(opts.out);
  mkdirSync(out, { recursive: true });
  summary.checkpoint = join(out, 'checkpoint.fgw');
  summary.samples = join(out, 'samples.png');
  // The one checkpoint format (shared/checkpoint.ts): npm run evaluate reads it, recalibrating FedBN's batch norms as samples.png does.
  writeFileSync(summary.checkpoint, encodeCheckpoint(global, { config: model, round: opts.rounds, batchNorm: opts.batchNorm, source: 'simulation' }));
  writeFileSync(summary.samples, await samplesPng(global, model, opts.samplesPerClass ?? 8, { batchNorm: opts.batchNorm }));
  writeFileSync(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}
