/**
 * One downstream-classifier job: train the small CNN on one regime's tiles with one seed, then score
 * the real test tiles (and, for a real-only model, the synthetic tiles too: class fidelity). The same
 * function runs in process and in the worker threads of classifierPool.ts, so both give the same
 * numbers for the same seed.
 */
import { scoreTiles, trainTileClassifier, type LabelledTiles } from './train.ts';

export const REGIMES = ['realOnly', 'realPlusSynthetic', 'syntheticOnly'] as const;
export type Regime = (typeof REGIMES)[number];

/** Everything the jobs share: the three tile sets (already at the classifier's size). */
export interface CnnJobData {
  real: LabelledTiles;
  synthetic: LabelledTiles;
  testPixels: readonly Uint8Array[];
}

export interface CnnJobSettings {
  classes: number;
  positive: number;
  size: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  channels: number;
  batchNorm: boolean;
}

/**
 * The tiles a regime trains on. `realSubset` (indices into `data.real`) stands for one hospital's own
 * tiles: the regimes then mean "its tiles only" and "its tiles + the synthetic tiles".
 */
export function trainingSet(regime: Regime, data: Pick<CnnJobData, 'real' | 'synthetic'>, realSubset?: readonly number[]): LabelledTiles {
  const { synthetic } = data;
  const real = realSubset ? subsetOf(data.real, realSubset) : data.real;
  if (regime === 'realOnly') return real;
  if (regime === 'syntheticOnly') return synthetic;
  return { pixels: [...real.pixels, ...synthetic.pixels], labels: [...real.labels, ...synthetic.labels] };
}

function subsetOf(tiles: LabelledTiles, indices: readonly number[]): LabelledTiles {
  if (indices.length === 0) throw new Error('a hospital with no tiles has nothing to train a classifier on');
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= tiles.pixels.length) throw new Error(`real tile index ${i} is out of range (0–${tiles.pixels.length - 1})`);
  }
  return { pixels: indices.map((i) => tiles.pixels[i]), labels: indices.map((i) => tiles.labels[i]) };
}

/** What one job returns: positive-class probabilities. */
export interface CnnJobScores {
  /** Of every real test tile, in order. */
  test: Float32Array;
  /**
   * Of every synthetic tile, in order: only for a real-only model (a classifier that never saw a
   * synthetic tile, applied to them: does it find the class the generator was asked for?).
   */
  synthetic?: Float32Array;
}

/**
 * Train with augmentation and return the positive-class probability of every test tile and, for the
 * real-only regime on all real tiles, of every synthetic tile. With `realSubset`, only those real
 * tiles (one hospital's) take part.
 */
export async function runCnnJob(
  data: CnnJobData,
  settings: CnnJobSettings,
  regime: Regime,
  seed: number,
  onEpoch?: (epoch: number, loss: number) => void,
  realSubset?: readonly number[],
): Promise<CnnJobScores> {
  const model = await trainTileClassifier(trainingSet(regime, data, realSubset), {
    size: settings.size,
    classes: settings.classes,
    epochs: settings.epochs,
    batchSize: settings.batchSize,
    learningRate: settings.learningRate,
    channels: settings.channels,
    batchNorm: settings.batchNorm,
    seed,
    augment: true,
    onEpoch,
  });
  try {
    const test = await scoreTiles(model, data.testPixels, settings.positive);
    if (regime !== 'realOnly' || realSubset) return { test };
    return { test, synthetic: await scoreTiles(model, data.synthetic.pixels, settings.positive) };
  } finally {
    model.dispose();
  }
}
