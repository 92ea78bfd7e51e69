import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateTiles, loadCheckpoint } from '../eval/checkpoint.ts';
import { runLinearProbeDownstream, type RegimeResult } from '../eval/downstream.ts';
import type { DiscriminatorType, GanType } from '../shared/config/ganConfig.ts';
import type { FeatureExtractor } from '../shared/features/types.ts';
import type { Features } from '../shared/metrics/features.ts';
import { fidParts } from '../shared/metrics/fid.ts';
import { kid } from '../shared/metrics/kid.ts';
import { sizeOf } from '../shared/weights.ts';
import { pairConfig, type ComparePreset } from './comparePresets.ts';
import { runSimulation } from '../cli/simulation.ts';
import { balancedSubset } from '../cli/subset.ts';
import type { FolderTile } from '../node/tileFolder.ts';

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
  /**
   * Downstream classification (absent when skipped): a linear head on the classifier's features trained
   * on the real training tiles + this pair's synthetic tiles, and on the synthetic tiles only, scored on
   * the real test tiles; accuracy, F1 (positive class = `ComparisonResult.classifier.positiveClass`),
   * balanced accuracy and AUROC as mean ± sd over the seeds, per tile and (when known) per patient.
   */
  classification?: { realPlusSynthetic: RegimeResult; syntheticOnly: RegimeResult };
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
  /** The downstream classifier's setting and its real-only baseline (absent when skipped). */
  classifier?: {
    features: { name: string; description: string; dim: number };
    positiveClass: string;
    seeds: number[];
    /** Real tiles the head trains on (the GANs' training tiles) and is scored on (all real test tiles). */
    realTrainTiles: number;
    testTiles: number;
    /** Test tiles of the positive class (a head that always says positive scores F1 = 2P / (P + testTiles)). */
    testPositiveTiles: number;
    /** Trained on the real training tiles only: the baseline every pair's real + synthetic is compared with. */
    realOnly: RegimeResult;
  };
  pairs: PairResult[];
}

/** Downstream classification F1: a linear head (eval/classifier/linearProbe.ts) on these features. */
export interface ClassifierOptions {
  /** E.g. MobileNetV2 from nsfwjs; its features of the real tiles are computed once per comparison. */
  extractor: FeatureExtractor;
  /** Index of the positive class (MSIH). */
  positive: number;
  seeds: readonly number[];
}

export interface ComparisonOptions {
  preset: ComparePreset;
  gans: readonly GanType[];
  discriminators: readonly DiscriminatorType[];
  out: string;
  seed: number;
  extractor: FeatureExtractor;
  /** Downstream classification per pair; undefined skips it. */
  classifier?: ClassifierOptions;
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
 * in the extractor's feature space, and (with `classifier`) by the F1 on the real test tiles of a linear
 * head trained on real + its synthetic tiles and on its synthetic tiles only. A pair that fails is
 * recorded and the comparison goes on.
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

  // Downstream classification: real features once, then the real-only baseline once (it does not depend on the pair).
  const clf = opts.classifier;
  let clfReal: { features: Features; labels: number[] } | undefined;
  let clfTest: { features: Features; labels: number[]; patients?: string[] } | undefined;
  if (clf) {
    const tClf = performance.now();
    const classes = pairConfig(preset, opts.gans[0], opts.discriminators[0], opts.seed).classes;
    if (!Number.isInteger(clf.positive) || clf.positive < 0 || clf.positive >= classes.length) {
      throw new Error(`classifier positive class index ${clf.positive} is not one of the ${classes.length} classes (${classes.join(', ')})`);
    }
    clfReal = { features: await clf.extractor.extract(trainTiles.map((t) => t.pixels), size), labels: trainTiles.map((t) => t.label) };
    const patients = test.every((t) => t.patient) ? test.map((t) => t.patient!) : undefined;
    clfTest = { features: await clf.extractor.extract(test.map((t) => t.pixels), size), labels: test.map((t) => t.label), patients };
    const baseline = runLinearProbeDownstream(clfReal, null, clfTest, { positive: clf.positive, seeds: clf.seeds, regimes: ['realOnly'] });
    result.classifier = {
      features: { name: clf.extractor.name, description: clf.extractor.description, dim: clf.extractor.dim },
      positiveClass: classes[clf.positive],
      seeds: [...clf.seeds],
      realTrainTiles: trainTiles.length,
      testTiles: test.length,
      testPositiveTiles: test.filter((t) => t.label === clf.positive).length,
      realOnly: baseline.results.realOnly,
    };
    log(
      `classifier features (${clf.extractor.name}, ${trainTiles.length} training + ${test.length} test tiles) and real-only baseline: ` +
        `${((performance.now() - tClf) / 1000).toFixed(1)} s; F1 (${classes[clf.positive]}) ${baseline.results.realOnly.f1.mean.toFixed(3)} ± ${baseline.results.realOnly.f1.sd.toFixed(3)}`,
    );
  }

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
          localSteps: preset.localSteps,
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
        let synthetic: { pixels: Uint8Array[]; labels: number[] };
        try {
          for (const e of trained.spec) {
            if (e.name.startsWith('d/')) pair.dParams += sizeOf(e.shape);
            else pair.gParams += sizeOf(e.shape);
          }
          synthetic = await generateTiles(trained, preset.perClass, { seed: opts.seed });
          synthF = await extractor.extract(synthetic.pixels, model.imageSize);
        } finally {
          trained.dispose();
        }
        pair.fid = fidParts(realF, synthF).fid;
        const k = kid(realF, synthF, kidOpts);
        pair.kid = { mean: k.mean, std: k.std };
        if (clf) {
          const synth = { features: await clf.extractor.extract(synthetic.pixels, model.imageSize), labels: synthetic.labels };
          const d = runLinearProbeDownstream(clfReal!, synth, clfTest!, { positive: clf.positive, seeds: clf.seeds, regimes: ['realPlusSynthetic', 'syntheticOnly'] });
          pair.classification = d.results;
        }
        pair.evalSeconds = (performance.now() - tEval) / 1000;
        pair.evalCpuSeconds = cpuSeconds(cEval);
        const f1 = pair.classification ? `, F1 real + synthetic ${pair.classification.realPlusSynthetic.f1.mean.toFixed(3)}, synthetic only ${pair.classification.syntheticOnly.f1.mean.toFixed(3)}` : '';
        log(`${gan} × ${type}: FID ${pair.fid.toFixed(2)}, KID ${pair.kid.mean.toFixed(4)}${f1}; trained ${pair.trainSeconds.toFixed(0)} s, scored ${pair.evalSeconds.toFixed(0)} s`);
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
