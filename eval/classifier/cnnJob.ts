/**
 * One downstream-classifier job: train the small CNN on one regime's tiles with one seed, then score
 * the real test tiles. The same function runs in process and in the worker threads of
 * classifierPool.ts, so both give the same numbers for the same seed.
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

export function trainingSet(regime: Regime, data: Pick<CnnJobData, 'real' | 'synthetic'>): LabelledTiles {
  const { real, synthetic } = data;
  if (regime === 'realOnly') return real;
  if (regime === 'syntheticOnly') return synthetic;
  return { pixels: [...real.pixels, ...synthetic.pixels], labels: [...real.labels, ...synthetic.labels] };
}

/** Train with augmentation and return the positive-class probability of every test tile. */
export async function runCnnJob(
  data: CnnJobData,
  settings: CnnJobSettings,
  regime: Regime,
  seed: number,
  onEpoch?: (epoch: number, loss: number) => void,
): Promise<Float32Array> {
  const model = await trainTileClassifier(trainingSet(regime, data), {
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
    return await scoreTiles(model, data.testPixels, settings.positive);
  } finally {
    model.dispose();
  }
}
