/**
 * The quality report, end to end: checkpoint → synthetic tiles → features → FID/KID next to the real
 * floor, memorization, diversity, t-SNE → downstream classification and class fidelity → the membership-
 * inference audit (training vs held-out tiles, eval/membership.ts) → the goals → report.json,
 * report-details.json, report.html.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initNodeBackend } from '../node/nodeBackend.ts';
import { createTinyExtractor } from '../shared/features/tiny.ts';
import type { FeatureExtractor } from '../shared/features/types.ts';
import { concatRows, selectRows, type Features } from '../shared/metrics/features.ts';
import { computeQuality } from '../shared/metrics/quality.ts';
import { tsne2d } from '../shared/metrics/tsne.ts';
import { Rng } from '../shared/rng.ts';
import { generateTiles, loadCheckpoint } from './checkpoint.ts';
import { createGan, type Gan } from '../shared/gan/gan.ts';
import { resizeTiles, runCnnDownstream, runHospitalDownstream, runLinearProbeDownstream, type DownstreamResult, type HospitalDownstream } from './downstream.ts';
import { partitionTiles } from '../cli/simulation.ts';
import { formatPartitionSpec, type PartitionSpec } from '../shared/fed/partition.ts';
import { EvalError } from './evalError.ts';
import { readRealTiles, type RealTileSet } from './realTiles.ts';
import { classFidelity } from './classFidelity.ts';
import { realFloor } from './floor.ts';
import { judgeGoals } from './report/goals.ts';
import { renderReportHtml } from './report/html.ts';
import { createNodeNsfwjsExtractor, type EngineExtractor, type FeatureEngine } from './features/nodeExtractor.ts';
import { withFeatureCache } from './features/featureCache.ts';
import { auditMembership } from './membership.ts';
import { discriminatorScores } from '../shared/privacy/membershipDiscriminator.ts';
import { createClassifierPool } from './classifier/classifierPool.ts';
import { classGridPng, pngDataUrl, tilePng } from './report/images.ts';
import { tsneSvg } from './report/tsnePlot.ts';
import type { HospitalSection, QualityReport, ReportDetails } from './report/types.ts';

export type FeatureChoice = 'inception' | 'tiny';

/** ε (the largest over the hospitals) at δ, and where the figure comes from. */
export interface EvaluatePrivacy {
  epsilon: number;
  delta: number | null;
  source: string;
}

export interface EvaluateOptions {
  checkpoint: string;
  /** The server's FED_CONFIG file: the model and batch-norm policy of a version-1 server checkpoint (eval/checkpoint.ts). */
  fedConfig?: string;
  realTrain: string;
  realTest: string;
  /** Synthetic tiles generated per class. */
  perClass: number;
  out: string;
  features: FeatureChoice;
  /** What runs InceptionV3/MobileNetV2: ONNX Runtime's native CPU kernels, tfjs wasm, or auto (onnx, else wasm). */
  featureEngine: FeatureEngine;
  /** Threads for the feature network: ONNX Runtime intra-op threads, or wasm worker threads (1 = in process). */
  featureWorkers: number;
  /** Classifier input size in px; default the generator's size, at most 64. */
  classifierSize?: number;
  classifierChannels: number;
  /** Worker threads for the classifier trainings (wasm only; with WebGPU they run in process). */
  classifierWorkers: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Classifier seeds: every regime is trained once per seed; verdicts compare means against the sd over seeds. */
  seeds: number[];
  linearProbe: boolean;
  /**
   * The federation's split of --real-train into hospitals (simulate's --partition, --clients and --seed):
   * each hospital's classifier is trained on its own tiles, then on them + the synthetic tiles. Absent: not run.
   */
  hospitals?: { partition: PartitionSpec; clients: number; seed: number };
  /**
   * The differential privacy the checkpoint was trained with, for the report: the checkpoint does not
   * record it, so it is given (from the operator's /api/status or console, or by npm run privacy-audit).
   */
  privacy?: EvaluatePrivacy;
  /** Directory of cached real-tile features (InceptionV3, MobileNetV2); null = no cache. */
  featureCache: string | null;
  /** Positive class name (default MSIH when present, else the first class). */
  positive?: string;
  /** Use at most this many real tiles per class and folder (seeded subset), for quick runs. */
  maxRealPerClass?: number;
  kidSubsets: number;
  /** t-SNE points per (real|synthetic, class) group. */
  tsnePerGroup: number;
  tsneIterations: number;
  /** Bootstrap resamples of the membership audit's AUC intervals. */
  membershipBootstrap: number;
  seed: number;
  log?: (line: string) => void;
}

export const DEFAULT_OPTIONS: Omit<EvaluateOptions, 'checkpoint' | 'realTrain' | 'realTest' | 'perClass' | 'out'> = {
  features: 'inception',
  featureEngine: 'auto',
  featureWorkers: Math.max(1, Math.min(2, availableParallelism())),
  classifierChannels: 8,
  classifierWorkers: Math.max(1, Math.min(2, availableParallelism())),
  epochs: 10,
  batchSize: 32,
  learningRate: 2e-3,
  seeds: [1, 2, 3, 4, 5],
  linearProbe: true,
  featureCache: defaultFeatureCache(),
  kidSubsets: 100,
  tsnePerGroup: 150,
  tsneIterations: 500,
  membershipBootstrap: 1000,
  seed: 7,
};

/** `$XDG_CACHE_HOME/fedgan/features`, else `~/.cache/fedgan/features`. */
export function defaultFeatureCache(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'fedgan', 'features');
}

export const FID_LABEL = 'FID (InceptionV3 from nsfwjs, fine-tuned weights: compare within this project only)';

export interface EvaluateResult {
  report: QualityReport;
  details: ReportDetails;
  files: { json: string; details: string; html: string; samples: string };
}

function perClassCounts(set: RealTileSet, classes: readonly string[]): Record<string, number> {
  return Object.fromEntries(classes.map((c, i) => [c, set.tiles.filter((t) => t.label === i).length]));
}

async function withBackend<T>(name: 'wasm' | 'compute', fn: () => Promise<T>): Promise<{ value: T; backend: string }> {
  const previous = tf.getBackend();
  if (name === 'wasm' && previous !== 'wasm') {
    await import('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend failed to initialise');
    await tf.ready();
  }
  try {
    return { value: await fn(), backend: tf.getBackend() };
  } finally {
    if (tf.getBackend() !== previous) await tf.setBackend(previous);
  }
}

function fidLabelFor(extractor: FeatureExtractor): string {
  return extractor.name === 'inception-v3' ? FID_LABEL : `FID (${extractor.description})`;
}

function hospitalSection(h: HospitalDownstream, split: NonNullable<EvaluateOptions['hospitals']>, classes: readonly string[]): HospitalSection {
  return {
    partition: formatPartitionSpec(split.partition),
    clients: split.clients,
    seed: split.seed,
    hospitals: h.hospitals.map((x) => ({ ...x, perClass: Object.fromEntries(classes.map((c, i) => [c, x.perClass[i]])) })),
    meanOverHospitals: h.meanOverHospitals,
  };
}

export async function evaluate(opts: EvaluateOptions): Promise<EvaluateResult> {
  const log = opts.log ?? (() => {});
  const timings: Record<string, number> = {};
  const backends: Record<string, string> = {};
  const timed = async <T>(label: string, fn: () => Promise<T> | T): Promise<T> => {
    const t0 = performance.now();
    const v = await fn();
    timings[label] = (performance.now() - t0) / 1000;
    log(`${label}: ${timings[label].toFixed(1)} s`);
    return v;
  };
  /** A progress logger that prints at most every 30 s (and at the end). */
  const progress = (label: string) => {
    let last = performance.now();
    return (done: number, total: number) => {
      const now = performance.now();
      if (done === total || now - last > 30_000) {
        last = now;
        log(`${label}: ${done}/${total}`);
      }
    };
  };
  if (!Number.isInteger(opts.perClass) || opts.perClass < 2) throw new EvalError(`--per-class must be an integer ≥ 2, got ${opts.perClass}`);
  const out = resolve(opts.out);
  mkdirSync(out, { recursive: true });

  // 1. The generator, on the compute backend (cpu with fast kernels, or WebGPU via Dawn).
  const choice = await initNodeBackend();
  backends.generator = choice.backend;
  backends.classifier = choice.backend;
  const ckpt = loadCheckpoint(opts.checkpoint, { fedConfig: opts.fedConfig, log });
  const { config } = ckpt;
  const classes = config.classes;
  const size = config.imageSize;
  const positiveName = opts.positive ?? (classes.includes('MSIH') ? 'MSIH' : classes[0]);
  const positive = classes.indexOf(positiveName);
  if (positive < 0) {
    ckpt.gan.dispose();
    throw new EvalError(`positive class "${positiveName}" is not among the checkpoint's classes (${classes.join(', ')})`);
  }
  log(`checkpoint: ${config.gan}, ${size}×${size} px, classes ${classes.join(', ')}${ckpt.meta.round !== undefined ? `, round ${String(ckpt.meta.round)}` : ''}`);

  // 2. Real tiles at the generator's size.
  let train: RealTileSet;
  let test: RealTileSet;
  try {
    train = await timed('read real training tiles', () =>
      readRealTiles(opts.realTrain, { classes, size, flag: '--real-train', role: 'training set', maxPerClass: opts.maxRealPerClass, seed: opts.seed }),
    );
    test = await timed('read real test tiles', () => readRealTiles(opts.realTest, { classes, size, flag: '--real-test', role: 'test set', maxPerClass: opts.maxRealPerClass, seed: opts.seed + 1 }));
  } catch (e) {
    ckpt.gan.dispose();
    throw e;
  }
  if (train.sourceSize !== test.sourceSize) {
    ckpt.gan.dispose();
    throw new EvalError(`image size mismatch: --real-train tiles are ${train.sourceSize}×${train.sourceSize} px but --real-test tiles are ${test.sourceSize}×${test.sourceSize}`);
  }

  // The federation's hospitals (when asked for): the same split the simulation made of the same folder,
  // made now so that a split the tiles cannot take fails before the long steps.
  let split: { name: string; indices: number[] }[] | null = null;
  if (opts.hospitals) {
    const { partition, clients, seed } = opts.hospitals;
    try {
      const p = partitionTiles(train.tiles, partition, clients, seed);
      split = p.indices.map((indices, i) => ({ name: p.names[i], indices }));
    } catch (e) {
      ckpt.gan.dispose();
      throw new EvalError(`cannot split --real-train into hospitals: ${e instanceof Error ? e.message : String(e)}`);
    }
    log(`hospitals (--partition): ${split.map((h) => `${h.name} ${h.indices.length} tiles`).join(', ')}`);
    if (opts.maxRealPerClass !== undefined && partition.kind !== 'site') {
      log(`  note: --max-real-per-class ${opts.maxRealPerClass} made this split of a subset, so its hospitals are not the simulation's`);
    }
  }

  // 3. Synthetic tiles.
  const synthetic = await timed('generate synthetic tiles', () => generateTiles(ckpt.gan, opts.perClass, { seed: opts.seed }));
  // 3b. The discriminator's output on every real tile (LOGAN, for the membership audit), while the model is
  // loaded; and the same audit's inputs from an untrained model of the same architecture, the control.
  const loganOf = async (gan: Gan) => ({
    train: await discriminatorScores(gan, train.tiles.map((t) => t.pixels), train.tiles.map((t) => t.label)),
    test: await discriminatorScores(gan, test.tiles.map((t) => t.pixels), test.tiles.map((t) => t.label)),
  });
  let logan: { train: Float64Array; test: Float64Array };
  try {
    logan = await timed('membership audit: discriminator scores of the real tiles', () => loganOf(ckpt.gan));
  } finally {
    ckpt.gan.dispose();
  }
  const untrained = createGan(config);
  let control: { logan: { train: Float64Array; test: Float64Array }; synthetic: { pixels: Uint8Array[]; labels: number[] } };
  try {
    control = await timed('membership audit: the untrained control model', async () => ({
      logan: await loganOf(untrained),
      synthetic: await generateTiles(untrained, opts.perClass, { seed: opts.seed }),
    }));
  } finally {
    untrained.dispose();
  }

  // 4. Features (InceptionV3 on ONNX Runtime or wasm, or the tiny projection).
  const nsfwjs = (network: 'inception-v3' | 'mobilenet-v2') =>
    createNodeNsfwjsExtractor(network, { engine: opts.featureEngine, threads: opts.featureWorkers, onFallback: (reason) => log(`  features: ${reason}`) });
  let featureEngine = 'none (plain JS)';
  const featureRun = await withBackend(opts.features === 'inception' ? 'wasm' : 'compute', async () => {
    const extractor: FeatureExtractor | EngineExtractor =
      opts.features === 'inception'
        ? await timed('load InceptionV3 (nsfwjs)', async () => {
            const ex = await nsfwjs('inception-v3');
            featureEngine = ex.engine;
            log(`  features: InceptionV3 on ${ex.engine}`);
            return ex;
          })
        : createTinyExtractor();
    try {
      // Real tiles are the same from one report to the next: their features come from the cache when it has them.
      const cached = opts.featureCache && opts.features === 'inception' ? withFeatureCache(extractor, opts.featureCache) : null;
      const extract = async (tiles: Uint8Array[], what: string, real: boolean) => {
        const ex = real && cached ? cached : extractor;
        const f = await timed(`features: ${what} (${tiles.length} tiles)`, () => ex.extract(tiles, size, { onProgress: progress(`  features: ${what}`) }));
        if (ex === cached) log(`  features: ${what}: ${cached.lastStats.hits} of ${tiles.length} from the cache (${opts.featureCache})`);
        return f;
      };
      const realF = await extract(train.tiles.map((t) => t.pixels), 'real training', true);
      const synthF = await extract(synthetic.pixels, 'synthetic', false);
      const controlF = await extract(control.synthetic.pixels, 'untrained model (membership control)', false);
      const testF = await extract(test.tiles.map((t) => t.pixels), 'real test', true);
      return { extractor: { name: extractor.name, description: extractor.description, dim: extractor.dim, fidLabel: fidLabelFor(extractor) }, realF, synthF, testF, controlF };
    } finally {
      extractor.dispose();
    }
  });
  backends.features = featureEngine;
  const { realF, synthF, testF, controlF, extractor } = featureRun.value;

  // 5. Feature-space metrics.
  const quality = await timed('FID, KID, memorization, diversity', () =>
    computeQuality({
      real: realF,
      realLabels: train.tiles.map((t) => t.label),
      synthetic: synthF,
      syntheticLabels: synthetic.labels,
      classes,
      control: testF,
      kid: { subsets: opts.kidSubsets, seed: opts.seed },
    }),
  );

  // 5b. The real floor: real test vs real training tiles, and synthetic vs real training tiles, at one sample size.
  const floorRun = await timed('real floor: FID, KID of real test vs training tiles, same sample size', () =>
    realFloor(realF, testF, synthF, { seed: opts.seed, kidSubsets: opts.kidSubsets, full: { fid: quality.fid.fid, kid: { mean: quality.kid.mean, std: quality.kid.std } } }),
  );

  // 5c. Membership inference: training tiles (members) against held-out tiles of the same hospitals.
  const membership = await timed('membership audit: GAN-Leaks and LOGAN AUCs with bootstrap intervals', () =>
    auditMembership({
      classes,
      members: train.tiles,
      memberFeatures: realF,
      memberLogan: logan.train,
      nonMembers: test.tiles,
      nonMemberFeatures: testF,
      nonMemberLogan: logan.test,
      synthetic: synthF,
      syntheticLabels: synthetic.labels,
      featureSpace: extractor.description,
      control: { memberLogan: control.logan.train, nonMemberLogan: control.logan.test, synthetic: controlF, syntheticLabels: control.synthetic.labels },
      bootstrap: opts.membershipBootstrap,
      seed: opts.seed,
    }),
  );

  // 6. t-SNE of real training vs synthetic features.
  const tsnePoints = await timed('t-SNE', () => {
    const rng = new Rng(opts.seed).fork('tsne');
    const pick = (labels: readonly number[], c: number) => rng.shuffle(labels.flatMap((l, i) => (l === c ? [i] : []))).slice(0, opts.tsnePerGroup);
    const groups: { f: Features; rows: number[]; classIndex: number; synthetic: boolean }[] = [];
    classes.forEach((_, c) => {
      groups.push({ f: realF, rows: pick(train.tiles.map((t) => t.label), c), classIndex: c, synthetic: false });
      groups.push({ f: synthF, rows: pick(synthetic.labels, c), classIndex: c, synthetic: true });
    });
    const all = concatRows(
      groups.map((g) => selectRows(g.f, g.rows)),
      realF.dim,
      't-SNE features',
    );
    const y = tsne2d(all, { seed: opts.seed, iterations: opts.tsneIterations });
    const meta = groups.flatMap((g) => g.rows.map(() => ({ classIndex: g.classIndex, synthetic: g.synthetic })));
    return y.map(([x, yy], i) => ({ x, y: yy, ...meta[i] }));
  });

  // 7. Downstream classification: small CNN, 3 regimes × seeds.
  const clfSize = opts.classifierSize ?? Math.min(64, size);
  const clfSettings = {
    classes: classes.length,
    positive,
    size: clfSize,
    epochs: opts.epochs,
    batchSize: opts.batchSize,
    learningRate: opts.learningRate,
    channels: opts.classifierChannels,
    batchNorm: true,
  };
  const clfReal = { pixels: resizeTiles(train.tiles.map((t) => t.pixels), size, clfSize), labels: train.tiles.map((t) => t.label) };
  const clfSynthetic = { pixels: resizeTiles(synthetic.pixels, size, clfSize), labels: synthetic.labels };
  const clfTest = {
    pixels: resizeTiles(test.tiles.map((t) => t.pixels), size, clfSize),
    labels: test.tiles.map((t) => t.label),
    patients: test.hasPatients ? test.tiles.map((t) => t.patient!) : undefined,
  };
  // wasm/cpu run one training per thread; WebGPU trains in process.
  const jobCount = 3 * opts.seeds.length + (split ? 2 * split.length * opts.seeds.length : 0);
  const clfThreads = backends.classifier === 'webgpu' ? 1 : Math.min(opts.classifierWorkers, jobCount);
  if (clfThreads > 1) backends.classifier = `${backends.classifier} × ${clfThreads} worker threads`;
  const runner = clfThreads > 1 ? await createClassifierPool(clfThreads, { real: clfReal, synthetic: clfSynthetic, testPixels: clfTest.pixels }, clfSettings) : undefined;
  let cnn: Awaited<ReturnType<typeof runCnnDownstream>>;
  let hospitals: HospitalDownstream | null = null;
  try {
    cnn = await timed('classifier: small CNN, 3 regimes × seeds', () =>
      runCnnDownstream(clfReal, clfSynthetic, clfTest, {
        ...clfSettings,
        seeds: opts.seeds,
        onProgress: (regime, seed, epoch, loss) => {
          if (epoch === opts.epochs || epoch % 5 === 0) log(`  ${regime} seed ${seed} epoch ${epoch}/${opts.epochs}: loss ${loss.toFixed(3)}`);
        },
      }, runner),
    );
    if (split) {
      hospitals = await timed(`classifier: each of ${split.length} hospitals' own tiles, without and with the synthetic tiles × seeds`, () =>
        runHospitalDownstream(clfReal, clfSynthetic, clfTest, split, { ...clfSettings, seeds: opts.seeds }, runner),
      );
    }
  } finally {
    runner?.close();
  }

  // 7b. Class fidelity: the real-only models applied to the synthetic tiles of each class, and to the real test tiles.
  const fidelityOpts = { classes, positive };
  const fidelity = {
    synthetic: classFidelity(synthetic.labels, cnn.realOnlyScores.map((s) => ({ seed: s.seed, scores: s.synthetic })), { ...fidelityOpts, what: 'synthetic tiles' }),
    realTest: classFidelity(clfTest.labels, cnn.realOnlyScores.map((s) => ({ seed: s.seed, scores: s.test })), { ...fidelityOpts, what: 'real test tiles' }),
  };

  // 8. Optional: pretrained MobileNetV2 features + linear head.
  let linearProbe: DownstreamResult | undefined;
  if (opts.linearProbe) {
    linearProbe = await timed('classifier: MobileNetV2 features + linear head', async () => {
      const run = await withBackend('wasm', async () => {
        const ex = await nsfwjs('mobilenet-v2');
        const realEx = opts.featureCache ? withFeatureCache(ex, opts.featureCache) : ex;
        try {
          return {
            real: await realEx.extract(train.tiles.map((t) => t.pixels), size),
            synth: await ex.extract(synthetic.pixels, size),
            test: await realEx.extract(test.tiles.map((t) => t.pixels), size),
          };
        } finally {
          ex.dispose();
        }
      });
      return runLinearProbeDownstream(
        { features: run.value.real, labels: train.tiles.map((t) => t.label) },
        { features: run.value.synth, labels: synthetic.labels },
        { features: run.value.test, labels: test.tiles.map((t) => t.label), patients: test.hasPatients ? test.tiles.map((t) => t.patient!) : undefined },
        { positive, seeds: opts.seeds },
      );
    });
  }

  // 9. The report.
  const patientsOf = (s: RealTileSet) => (s.hasPatients ? new Set(s.tiles.map((t) => t.patient)).size : null);
  const patientsPerClassOf = (s: RealTileSet) =>
    s.hasPatients ? Object.fromEntries(classes.map((c, i) => [c, new Set(s.tiles.filter((t) => t.label === i).map((t) => t.patient)).size])) : null;
  const memorization = { syntheticToTrain: quality.memorization.syntheticToTrain, testToTrain: quality.memorization.testToTrain! };
  const classFidelitySummary = { synthetic: fidelity.synthetic.summary, realTest: fidelity.realTest.summary };
  const goals = judgeGoals({
    floor: floorRun.floor,
    classification: cnn.results,
    classFidelity: classFidelitySummary,
    memorization,
    diversity: quality.diversity,
    positiveClass: positiveName,
    testPatients: patientsOf(test),
    seeds: opts.seeds.length,
  });
  const report: QualityReport = {
    fid: quality.fid.fid,
    kid: { mean: quality.kid.mean, std: quality.kid.std },
    floor: floorRun.floor,
    classification: cnn.results,
    classFidelity: classFidelitySummary,
    memorization,
    diversity: quality.diversity,
    membership: membership.section,
    goals,
    hospitals: hospitals && opts.hospitals ? hospitalSection(hospitals, opts.hospitals, classes) : null,
    config: {
      checkpoint: resolve(opts.checkpoint),
      checkpointMeta: { round: ckpt.meta.round, source: ckpt.meta.source, createdAt: ckpt.meta.createdAt, batchNorm: ckpt.meta.batchNorm, batchNormRecalibrated: ckpt.recalibrated !== null },
      gan: config as unknown as Record<string, unknown>,
      classes: [...classes],
      positiveClass: positiveName,
      imageSize: size,
      perClass: opts.perClass,
      realTrain: {
        dir: resolve(opts.realTrain),
        tiles: train.tiles.length,
        perClass: perClassCounts(train, classes),
        sourceSize: train.sourceSize,
        patients: patientsOf(train),
        patientsPerClass: patientsPerClassOf(train),
      },
      realTest: { dir: resolve(opts.realTest), tiles: test.tiles.length, perClass: perClassCounts(test, classes), sourceSize: test.sourceSize, patients: patientsOf(test), patientsPerClass: patientsPerClassOf(test) },
      features: { extractor: extractor.description, dim: extractor.dim, fidLabel: extractor.fidLabel },
      kid: { subsets: quality.kid.subsets, subsetSize: quality.kid.subsetSize },
      classifier: {
        model: 'small CNN from scratch (conv 3×3 + batch norm + ReLU ×4, stride-2 downsampling, global average pooling, dropout, dense)',
        size: clfSize,
        channels: opts.classifierChannels,
        epochs: opts.epochs,
        batchSize: opts.batchSize,
        learningRate: opts.learningRate,
        seeds: [...opts.seeds],
        augmentation: 'random crop (80–100 %), horizontal/vertical flips, rotation up to ±45°, reflected borders; real and synthetic alike',
      },
      linearProbe: opts.linearProbe,
      privacy: opts.privacy ?? null,
      seed: opts.seed,
      createdAt: new Date().toISOString(),
    },
  };
  const closest = quality.memorization.closest.map((p) => ({
    synthetic: p.query,
    syntheticClass: classes[synthetic.labels[p.query]],
    realFile: train.tiles[p.reference].file,
    distance: p.distance,
  }));
  const details: ReportDetails = {
    fidParts: { meanTerm: quality.fid.meanTerm, traceCov1: quality.fid.traceCov1, traceCov2: quality.fid.traceCov2, traceSqrtProduct: quality.fid.traceSqrtProduct },
    floorRows: floorRun.rows,
    classificationPerSeed: cnn.details,
    ...(hospitals ? { hospitalsPerSeed: hospitals.details } : {}),
    classFidelityPerSeed: { synthetic: fidelity.synthetic.perSeed, realTest: fidelity.realTest.perSeed },
    realOnlyScores: {
      syntheticLabels: [...synthetic.labels],
      testLabels: [...clfTest.labels],
      perSeed: cnn.realOnlyScores.map((s) => ({ seed: s.seed, synthetic: Array.from(s.synthetic), test: Array.from(s.test) })),
    },
    ...(linearProbe ? { linearProbe } : {}),
    closestPairs: closest,
    membershipScores: membership.rows,
    tsne: tsnePoints,
    timingsSeconds: timings,
    backends,
  };
  const perRow = Math.min(12, opts.perClass);
  const byClass = classes.map((_, c) => synthetic.pixels.filter((_, i) => synthetic.labels[i] === c).slice(0, perRow));
  const samplesPng = classGridPng(byClass, size, perRow);
  const html = renderReportHtml(report, details, {
    samples: pngDataUrl(samplesPng),
    pairs: quality.memorization.closest.map((p, i) => ({
      synthetic: pngDataUrl(tilePng(synthetic.pixels[p.query], size)),
      real: pngDataUrl(tilePng(train.tiles[p.reference].pixels, size)),
      distance: p.distance,
      syntheticClass: closest[i].syntheticClass,
      realFile: closest[i].realFile,
    })),
    tsneSvg: tsneSvg(tsnePoints, classes),
  });
  const files = { json: join(out, 'report.json'), details: join(out, 'report-details.json'), html: join(out, 'report.html'), samples: join(out, 'samples.png') };
  writeFileSync(files.json, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(files.details, JSON.stringify(details, null, 2) + '\n');
  writeFileSync(files.html, html);
  writeFileSync(files.samples, samplesPng);
  return { report, details, files };
}
