/**
 * The paper's downstream test (its Tables 3–5): train the same classifier on real tiles only, on real
 * plus synthetic tiles, and on synthetic tiles only, then score it on the real test set, at tile
 * level and (when patients are known) at patient level, over several seeds.
 */
import { binaryMetrics } from '../shared/metrics/classification.ts';
import type { Features } from '../shared/metrics/features.ts';
import { aggregateByPatient } from '../shared/metrics/patients.ts';
import { meanSd, type MeanSd } from '../shared/metrics/summary.ts';
import { resizeToRGB } from '../shared/image/resize.ts';
import { trainLinearProbe } from './classifier/linearProbe.ts';
import { scoreTiles, trainTileClassifier, type LabelledTiles } from './classifier/train.ts';

export const REGIMES = ['realOnly', 'realPlusSynthetic', 'syntheticOnly'] as const;
export type Regime = (typeof REGIMES)[number];

const METRICS = ['accuracy', 'f1', 'balancedAccuracy', 'auroc'] as const;
type MetricName = (typeof METRICS)[number];

export type MetricValues = Record<MetricName, number>;
export type MetricSummary = Record<MetricName, { mean: number; sd: number }>;

export interface RegimeResult extends MetricSummary {
  patientLevel?: MetricSummary;
}

export interface RegimeDetails {
  perSeed: { seed: number; tile: MetricValues; patient?: MetricValues; trainTiles: number }[];
}

export interface DownstreamResult {
  results: Record<Regime, RegimeResult>;
  details: Record<Regime, RegimeDetails>;
}

export interface TestSet extends LabelledTiles {
  /** Patient of each test tile, when known. */
  patients?: readonly string[];
}

function values(labels: readonly boolean[], scores: ArrayLike<number>): MetricValues {
  const m = binaryMetrics(labels, scores);
  return { accuracy: m.accuracy, f1: m.f1, balancedAccuracy: m.balancedAccuracy, auroc: m.auroc };
}

function summarise(runs: MetricValues[]): MetricSummary {
  const out = {} as MetricSummary;
  for (const k of METRICS) {
    const s: MeanSd = meanSd(runs.map((r) => r[k]));
    out[k] = { mean: s.mean, sd: s.sd };
  }
  return out;
}

function scoreSet(test: TestSet, positive: number, scores: ArrayLike<number>): { tile: MetricValues; patient?: MetricValues } {
  const labels = test.labels.map((l) => l === positive);
  const tile = values(labels, scores);
  if (!test.patients) return { tile };
  const agg = aggregateByPatient(test.patients, labels, scores);
  return { tile, patient: values(agg.labels, agg.scores) };
}

function collect(perSeed: RegimeDetails['perSeed']): RegimeResult {
  const r: RegimeResult = summarise(perSeed.map((p) => p.tile));
  if (perSeed.every((p) => p.patient)) r.patientLevel = summarise(perSeed.map((p) => p.patient!));
  return r;
}

function trainingSet(regime: Regime, real: LabelledTiles, synthetic: LabelledTiles): LabelledTiles {
  if (regime === 'realOnly') return real;
  if (regime === 'syntheticOnly') return synthetic;
  return { pixels: [...real.pixels, ...synthetic.pixels], labels: [...real.labels, ...synthetic.labels] };
}

export function resizeTiles(pixels: readonly Uint8Array[], from: number, to: number): Uint8Array[] {
  return from === to ? pixels.slice() : pixels.map((p) => resizeToRGB(p, from, from, 3, to));
}

export interface CnnOptions {
  classes: number;
  positive: number;
  size: number;
  seeds: readonly number[];
  epochs: number;
  batchSize: number;
  learningRate: number;
  channels: number;
  onProgress?: (regime: Regime, seed: number, epoch: number, loss: number) => void;
}

/** The small CNN from scratch, with augmentation, each regime × seed. Tiles must already be at `size`. */
export async function runCnnDownstream(real: LabelledTiles, synthetic: LabelledTiles, test: TestSet, opts: CnnOptions): Promise<DownstreamResult> {
  const results = {} as Record<Regime, RegimeResult>;
  const details = {} as Record<Regime, RegimeDetails>;
  for (const regime of REGIMES) {
    const train = trainingSet(regime, real, synthetic);
    const perSeed: RegimeDetails['perSeed'] = [];
    for (const seed of opts.seeds) {
      const model = await trainTileClassifier(train, {
        size: opts.size,
        classes: opts.classes,
        epochs: opts.epochs,
        batchSize: opts.batchSize,
        learningRate: opts.learningRate,
        channels: opts.channels,
        seed,
        augment: true,
        onEpoch: (e, loss) => opts.onProgress?.(regime, seed, e, loss),
      });
      const scores = await scoreTiles(model, test.pixels, opts.positive);
      model.dispose();
      perSeed.push({ seed, trainTiles: train.pixels.length, ...scoreSet(test, opts.positive, scores) });
    }
    results[regime] = collect(perSeed);
    details[regime] = { perSeed };
  }
  return { results, details };
}

function concatFeatures(a: Features, b: Features): Features {
  const data = new Float64Array((a.rows + b.rows) * a.dim);
  data.set(a.data);
  data.set(b.data, a.data.length);
  return { rows: a.rows + b.rows, dim: a.dim, data };
}

/** A linear head on frozen pretrained features (no augmentation: the features are computed once). */
export function runLinearProbeDownstream(
  real: { features: Features; labels: readonly number[] },
  synthetic: { features: Features; labels: readonly number[] },
  test: { features: Features; labels: readonly number[]; patients?: readonly string[] },
  opts: { positive: number; seeds: readonly number[] },
): DownstreamResult {
  const results = {} as Record<Regime, RegimeResult>;
  const details = {} as Record<Regime, RegimeDetails>;
  const testSet: TestSet = { pixels: [], labels: test.labels, patients: test.patients };
  for (const regime of REGIMES) {
    const f = regime === 'realOnly' ? real.features : regime === 'syntheticOnly' ? synthetic.features : concatFeatures(real.features, synthetic.features);
    const labels = regime === 'realOnly' ? real.labels : regime === 'syntheticOnly' ? synthetic.labels : [...real.labels, ...synthetic.labels];
    const perSeed: RegimeDetails['perSeed'] = opts.seeds.map((seed) => {
      const probe = trainLinearProbe(f, labels.map((l) => l === opts.positive), { seed });
      return { seed, trainTiles: f.rows, ...scoreSet(testSet, opts.positive, probe.predict(test.features)) };
    });
    results[regime] = collect(perSeed);
    details[regime] = { perSeed };
  }
  return { results, details };
}
