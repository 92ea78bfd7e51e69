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
import { gainOver } from './report/goals.ts';
import type { CnnJobRunner } from './classifier/classifierPool.ts';
import { REGIMES, runCnnJob, trainingSet, type CnnJobData, type CnnJobSettings, type Regime } from './classifier/cnnJob.ts';
import type { LabelledTiles } from './classifier/train.ts';

export { REGIMES, type Regime };

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

/** Results per regime; `R` narrows it when only some regimes were run. */
export interface DownstreamResult<R extends Regime = Regime> {
  results: Record<R, RegimeResult>;
  details: Record<R, RegimeDetails>;
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

export function resizeTiles(pixels: readonly Uint8Array[], from: number, to: number): Uint8Array[] {
  return from === to ? pixels.slice() : pixels.map((p) => resizeToRGB(p, from, from, 3, to));
}

export interface CnnOptions extends CnnJobSettings {
  seeds: readonly number[];
  onProgress?: (regime: Regime, seed: number, epoch: number, loss: number) => void;
}

/** Runs the jobs one after another in this thread (the default; also what WebGPU uses). */
export function inProcessRunner(data: CnnJobData, settings: CnnJobSettings): CnnJobRunner {
  let queue: Promise<unknown> = Promise.resolve();
  return {
    concurrency: 1,
    run(regime, seed, onEpoch, realSubset) {
      const job = queue.then(() => runCnnJob(data, settings, regime, seed, onEpoch, realSubset));
      queue = job.catch(() => {});
      return job;
    },
    close() {},
  };
}

/** The small CNN's results, with the raw scores of its real-only models (class fidelity is computed from them). */
export interface CnnDownstreamResult extends DownstreamResult {
  /** One entry per seed: the real-only model's positive-class probability of every test and every synthetic tile. */
  realOnlyScores: { seed: number; test: Float32Array; synthetic: Float32Array }[];
}

/**
 * The small CNN from scratch, with augmentation, each regime × seed, on `runner` (in process by
 * default, or a worker-thread pool: the same seeds give the same scores either way). Tiles must
 * already be at `size`.
 */
export async function runCnnDownstream(real: LabelledTiles, synthetic: LabelledTiles, test: TestSet, opts: CnnOptions, runner?: CnnJobRunner): Promise<CnnDownstreamResult> {
  const { seeds, onProgress, ...settings } = opts;
  const jobs = runner ?? inProcessRunner({ real, synthetic, testPixels: test.pixels }, settings);
  const scores = await Promise.all(
    REGIMES.map((regime) => Promise.all(seeds.map((seed) => jobs.run(regime, seed, (e, loss) => onProgress?.(regime, seed, e, loss))))),
  );
  const results = {} as Record<Regime, RegimeResult>;
  const details = {} as Record<Regime, RegimeDetails>;
  REGIMES.forEach((regime, r) => {
    const perSeed: RegimeDetails['perSeed'] = seeds.map((seed, k) => ({ seed, trainTiles: trainingSet(regime, { real, synthetic }).labels.length, ...scoreSet(test, opts.positive, scores[r][k].test) }));
    results[regime] = collect(perSeed);
    details[regime] = { perSeed };
  });
  const realOnlyScores = seeds.map((seed, k) => {
    const s = scores[REGIMES.indexOf('realOnly')][k];
    if (!s.synthetic) throw new Error(`real-only classifier (seed ${seed}) returned no scores for the synthetic tiles`);
    return { seed, test: s.test, synthetic: s.synthetic };
  });
  return { results, details, realOnlyScores };
}

/** One hospital's share of the real training tiles, as the federation split them (cli/simulation.ts partitionTiles). */
export interface HospitalSplit {
  name: string;
  /** Indices into the real training tiles. */
  indices: readonly number[];
}

/** A metric compared between two regimes, judged as the goals judge a gain (report/goals.ts gainOver). */
export type Gain = ReturnType<typeof gainOver>;

const GAIN_METRICS = ['balancedAccuracy', 'auroc'] as const;
type GainMetric = (typeof GAIN_METRICS)[number] | 'patientAuroc';

function gains(plus: RegimeResult, own: RegimeResult): Partial<Record<GainMetric, Gain>> {
  const out: Partial<Record<GainMetric, Gain>> = {};
  for (const k of GAIN_METRICS) out[k] = gainOver(plus[k], own[k]);
  if (plus.patientLevel && own.patientLevel) out.patientAuroc = gainOver(plus.patientLevel.auroc, own.patientLevel.auroc);
  return out;
}

export interface HospitalResult {
  name: string;
  /** Its real training tiles, and how many of each class (by class index). */
  tiles: number;
  perClass: number[];
  /** The classifier trained on the hospital's own tiles only. */
  ownOnly: RegimeResult;
  /** The same, on its own tiles + every synthetic tile. */
  ownPlusSynthetic: RegimeResult;
  gain: Partial<Record<GainMetric, Gain>>;
}

export interface HospitalDownstream {
  hospitals: HospitalResult[];
  /**
   * The mean over hospitals: per seed, each regime's metric averaged over the hospitals; then mean ± sd
   * over seeds, and the gain judged as for one hospital.
   */
  meanOverHospitals: { ownOnly: RegimeResult; ownPlusSynthetic: RegimeResult; gain: Partial<Record<GainMetric, Gain>> };
  details: { name: string; ownOnly: RegimeDetails; ownPlusSynthetic: RegimeDetails }[];
}

/**
 * The question a hospital asks of the federation's synthetic tiles: does a classifier trained on my own
 * tiles get better when they are added? For every hospital of the split, the small CNN is trained on its
 * own real tiles, then on them + all synthetic tiles, with each seed, and scored on the real test tiles.
 * Jobs run on `runner` (the same pool as runCnnDownstream's; tiles already at `size`).
 */
export async function runHospitalDownstream(
  real: LabelledTiles,
  synthetic: LabelledTiles,
  test: TestSet,
  hospitals: readonly HospitalSplit[],
  opts: CnnOptions,
  runner?: CnnJobRunner,
): Promise<HospitalDownstream> {
  if (hospitals.length === 0) throw new Error('per-hospital classifiers: the split has no hospital');
  const { seeds, onProgress, ...settings } = opts;
  const jobs = runner ?? inProcessRunner({ real, synthetic, testPixels: test.pixels }, settings);
  const regimes = ['realOnly', 'realPlusSynthetic'] as const;
  const scores = await Promise.all(
    hospitals.map((h) =>
      Promise.all(regimes.map((regime) => Promise.all(seeds.map((seed) => jobs.run(regime, seed, (e, loss) => onProgress?.(regime, seed, e, loss), h.indices))))),
    ),
  );
  const details = hospitals.map((h, i) => {
    const perRegime = regimes.map((regime, r): RegimeDetails => {
      const trainTiles = trainingSet(regime, { real, synthetic }, h.indices).labels.length;
      return { perSeed: seeds.map((seed, k) => ({ seed, trainTiles, ...scoreSet(test, opts.positive, scores[i][r][k].test) })) };
    });
    return { name: h.name, ownOnly: perRegime[0], ownPlusSynthetic: perRegime[1] };
  });
  const results: HospitalResult[] = hospitals.map((h, i) => {
    const ownOnly = collect(details[i].ownOnly.perSeed);
    const ownPlusSynthetic = collect(details[i].ownPlusSynthetic.perSeed);
    const perClass = new Array<number>(settings.classes).fill(0);
    for (const t of h.indices) perClass[real.labels[t]]++;
    return { name: h.name, tiles: h.indices.length, perClass, ownOnly, ownPlusSynthetic, gain: gains(ownPlusSynthetic, ownOnly) };
  });
  // Per seed, the mean over hospitals of each metric; then collect() summarises those over seeds.
  const meanOver = (pick: (d: (typeof details)[number]) => RegimeDetails): RegimeDetails['perSeed'] =>
    seeds.map((seed, k) => {
      const runs = details.map((d) => pick(d).perSeed[k]);
      const avg = (f: (r: (typeof runs)[number]) => MetricValues | undefined): MetricValues | undefined => {
        if (runs.some((r) => !f(r))) return undefined;
        const out = {} as MetricValues;
        for (const m of METRICS) out[m] = runs.reduce((sum, r) => sum + f(r)![m], 0) / runs.length;
        return out;
      };
      const patient = avg((r) => r.patient);
      return { seed, trainTiles: runs.reduce((sum, r) => sum + r.trainTiles, 0) / runs.length, tile: avg((r) => r.tile)!, ...(patient ? { patient } : {}) };
    });
  const ownOnly = collect(meanOver((d) => d.ownOnly));
  const ownPlusSynthetic = collect(meanOver((d) => d.ownPlusSynthetic));
  return { hospitals: results, meanOverHospitals: { ownOnly, ownPlusSynthetic, gain: gains(ownPlusSynthetic, ownOnly) }, details };
}

function concatFeatures(a: Features, b: Features): Features {
  const data = new Float64Array((a.rows + b.rows) * a.dim);
  data.set(a.data);
  data.set(b.data, a.data.length);
  return { rows: a.rows + b.rows, dim: a.dim, data };
}

/**
 * A linear head on frozen pretrained features (no augmentation: the features are computed once).
 * `regimes` runs only those (default all three); `synthetic` may be null when none of them needs it
 * (e.g. a real-only baseline computed once for many generators).
 */
export function runLinearProbeDownstream<R extends Regime = Regime>(
  real: { features: Features; labels: readonly number[] },
  synthetic: { features: Features; labels: readonly number[] } | null,
  test: { features: Features; labels: readonly number[]; patients?: readonly string[] },
  opts: { positive: number; seeds: readonly number[]; regimes?: readonly R[] },
): DownstreamResult<R> {
  const regimes = opts.regimes ?? (REGIMES as readonly Regime[] as readonly R[]);
  const results = {} as Record<R, RegimeResult>;
  const details = {} as Record<R, RegimeDetails>;
  const testSet: TestSet = { pixels: [], labels: test.labels, patients: test.patients };
  for (const regime of regimes) {
    if (regime !== 'realOnly' && !synthetic) throw new Error(`linear probe: regime ${regime} needs synthetic features, none given`);
    const f = regime === 'realOnly' ? real.features : regime === 'syntheticOnly' ? synthetic!.features : concatFeatures(real.features, synthetic!.features);
    const labels = regime === 'realOnly' ? real.labels : regime === 'syntheticOnly' ? synthetic!.labels : [...real.labels, ...synthetic!.labels];
    const perSeed: RegimeDetails['perSeed'] = opts.seeds.map((seed) => {
      const probe = trainLinearProbe(f, labels.map((l) => l === opts.positive), { seed });
      return { seed, trainTiles: f.rows, ...scoreSet(testSet, opts.positive, probe.predict(test.features)) };
    });
    results[regime] = collect(perSeed);
    details[regime] = { perSeed };
  }
  return { results, details };
}
