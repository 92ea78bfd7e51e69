import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateTiles, loadCheckpoint } from '../eval/checkpoint.ts';
import type { DiscriminatorType, GanType } from '../shared/config/ganConfig.ts';
import type { FeatureExtractor } from '../shared/features/types.ts';
import type { Features } from '../shared/metrics/features.ts';
import { fidParts } from '../shared/metrics/fid.ts';
import { kid } from '../shared/metrics/kid.ts';
import { sizeOf } from '../shared/weights.ts';
import { pairConfig, type ComparePreset } from './comparePresets.ts';
import { runSimulation } from './simulation.ts';
import { balancedSubset } from './subset.ts';
import type { FolderTile } from './tileFolder.ts';

/** What was measured for one GAN × discriminator pair. */
export interface PairResult {
  gan: GanType;
  discriminator: DiscriminatorType;
  /** 'failed' when training diverged or threw; `error` says why. */
  status: 'ok' | 'failed';
  error?: string;
  dParams: number;
  gParams: number;
  /** Losses of the last round (example-weighted over hospitals). */
  dLoss?: number;
  gLoss?: number;
  fid?: number;
  kid?: { mean: number; std: number };
  trainSeconds: number;
  evalSeconds: number;
  /** CPU time of this process (all threads) while training / scoring: wall time on an idle machine, load-independent. */
  trainCpuSeconds: number;
  evalCpuSeconds: number;
  /** The run's folder: summary.json, samples.png, checkpoint.fgw. */
  dir: string;
}

export interface ComparisonResult {
  /** Real test tiles against the real reference tiles: the FID/KID a perfect generator would get at this sample size. */
  floor: { fid: number; kid: { mean: number; std: number } };
  features: { name: string; description: string; dim: number };
  trainTiles: number;
  referenceTiles: number;
  testTiles: number;
  pairs: PairResult[];
}

export interface ComparisonOptions {
  preset: ComparePreset;
  gans: readonly GanType[];
  discriminators: readonly DiscriminatorType[];
  out: string;
  seed: number;
  extractor: FeatureExtractor;
  kidSubsets?: number;
  log?: (line: string) => void;
  /** Called after every pair, e.g. to rewrite the results table as the comparison goes. */
  onPair?: (partial: ComparisonResult) => void;
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

/** At most `perClass` tiles of every class (seeded). */
function perClassSubset<T extends { label: number }>(tiles: readonly T[], perClass: number | undefined, seed: number): T[] {
  if (perClass === undefined) return tiles.slice();
  const classes = new Set(tiles.map((t) => t.label)).size;
  return balancedSubset(tiles, perClass * classes, seed);
}

/**
 * Train every GAN type × discriminator pair with the federated simulation (same tiles, hospitals, rounds
 * and seed for all), then score each generator by FID and KID of its tiles against real training tiles,
 * in the extractor's feature space. A pair that fails is recorded and the comparison goes on.
 */
export async function runComparison(train: readonly FolderTile[], test: readonly FolderTile[], opts: ComparisonOptions): Promise<ComparisonResult> {
  const log = opts.log ?? (() => {});
  const { preset, extractor } = opts;
  const trainTiles = balancedSubset(train, preset.maxTiles, opts.seed);
  const reference = perClassSubset(trainTiles, preset.realPerClass, opts.seed + 1);
  const control = perClassSubset(test, preset.realPerClass, opts.seed + 2);
  const size = trainTiles[0]?.pixels.length ? Math.round(Math.sqrt(trainTiles[0].pixels.length / 3)) : 0;
  const kidOpts = { subsets: opts.kidSubsets ?? 100, seed: opts.seed };

  const t0 = performance.now();
  const realF = await extractor.extract(reference.map((t) => t.pixels), size);
  const testF = await extractor.extract(control.map((t) => t.pixels), size);
  const floorKid = kid(realF, testF, kidOpts);
  const result: ComparisonResult = {
    floor: { fid: fidParts(realF, testF).fid, kid: { mean: floorKid.mean, std: floorKid.std } },
    features: { name: extractor.name, description: extractor.description, dim: extractor.dim },
    trainTiles: trainTiles.length,
    referenceTiles: reference.length,
    testTiles: control.length,
    pairs: [],
  };
  log(`real features (${reference.length} training + ${control.length} test tiles): ${((performance.now() - t0) / 1000).toFixed(1)} s; real-vs-real FID ${result.floor.fid.toFixed(2)}`);

  for (const gan of opts.gans) {
    for (const type of opts.discriminators) {
      const model = pairConfig(preset, gan, type, opts.seed);
      const dir = resolve(join(opts.out, `${gan}-${type}`));
      mkdirSync(dir, { recursive: true });
      const pair: PairResult = { gan, discriminator: type, status: 'ok', dParams: 0, gParams: 0, trainSeconds: 0, evalSeconds: 0, trainCpuSeconds: 0, evalCpuSeconds: 0, dir };
      try {
        const tTrain = performance.now();
        const cTrain = process.cpuUsage();
        const summary = await runSimulation(trainTiles, {
          clients: preset.clients,
          rounds: preset.rounds,
          localEpochs: preset.localEpochs,
          fraction: 1,
          minFit: preset.clients,
          partition: { kind: 'iid' },
          model,
          batchNorm: 'average',
          aggregator: { type: 'fedavg' },
          out: dir,
        });
        pair.trainSeconds = (performance.now() - tTrain) / 1000;
        pair.trainCpuSeconds = cpuSeconds(cTrain);
        const last = summary.rounds[summary.rounds.length - 1];
        pair.dLoss = last.dLoss;
        pair.gLoss = last.gLoss;
        const tEval = performance.now();
        const cEval = process.cpuUsage();
        const { gan: trained } = loadCheckpoint(summary.checkpoint);
        let synthF: Features;
        try {
          for (const e of trained.spec) {
            if (e.name.startsWith('d/')) pair.dParams += sizeOf(e.shape);
            else pair.gParams += sizeOf(e.shape);
          }
          const synthetic = await generateTiles(trained, preset.perClass, { seed: opts.seed });
          synthF = await extractor.extract(synthetic.pixels, model.imageSize);
        } finally {
          trained.dispose();
        }
        pair.fid = fidParts(realF, synthF).fid;
        const k = kid(realF, synthF, kidOpts);
        pair.kid = { mean: k.mean, std: k.std };
        pair.evalSeconds = (performance.now() - tEval) / 1000;
        pair.evalCpuSeconds = cpuSeconds(cEval);
        log(`${gan} × ${type}: FID ${pair.fid.toFixed(2)}, KID ${pair.kid.mean.toFixed(4)}; trained ${pair.trainSeconds.toFixed(0)} s, scored ${pair.evalSeconds.toFixed(0)} s`);
      } catch (e) {
        pair.status = 'failed';
        pair.error = e instanceof Error ? e.message : String(e);
        log(`${gan} × ${type}: FAILED: ${pair.error}`);
      }
      writeFileSync(join(dir, 'metrics.json'), JSON.stringify(pair, null, 2) + '\n');
      result.pairs.push(pair);
      opts.onPair?.(result);
    }
  }
  return result;
}
