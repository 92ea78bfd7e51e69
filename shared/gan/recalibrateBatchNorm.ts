import * as tf from '@tensorflow/tfjs-core';
import { EMA_PREFIX } from './ema.ts';
import { samplingGenerator, type Gan } from './gan.ts';
import { createGenerator } from './generator.ts';

/**
 * Data-free recalibration of the generator's batch-norm running statistics.
 *
 * Under FedBN (`batchNorm: 'local'`, design D1) batch-norm tensors never leave a hospital, so the global
 * model's generator keeps the running means and variances of round 0 while every other weight trains;
 * generating from it in inference mode would normalise with statistics that belong to no trained model.
 * This replaces them with statistics of the generator's own activations, no tiles needed:
 *
 * - `batches` forward passes of `batchSize` latents z ~ N(0, 1) drawn with a fixed seed
 *   (batch b: `tf.randomNormal([batchSize, latentDim], 0, 1, 'float32', seed * 1_000_003 + b)`), labels
 *   cycling through the classes (sample i of batch b has class (b·batchSize + i) mod classes);
 * - every batch-norm layer in training mode, i.e. it normalises with the statistics of the batch it sees
 *   (as the generator did while training), and dropout off, as when generating (so the statistics are
 *   those of the activations that generation produces, and the result is deterministic);
 * - each layer's new moving mean / moving variance = the average over the batches of its batch mean /
 *   batch (biased) variance.
 *
 * The generator recalibrated is the one `generate` samples from (`samplingGenerator`): the moving average
 * of the generator's weights when the config has `ema` (its statistics are FedBN-local too: `ema/g/bn…`),
 * else the generator. Only its `movingMean` / `movingVariance` change; gamma, beta and every other weight
 * stay. Runs on a scratch copy of that generator, so the model's own momentum plays no part.
 */

export interface RecalibrateOptions {
  /** Seed of the latent draws (default RECALIBRATION_DEFAULTS.seed). */
  seed?: number;
  /** Forward passes (default 8). */
  batches?: number;
  /** Latents per pass (default 64). */
  batchSize?: number;
}

export const RECALIBRATION_DEFAULTS = { seed: 20_251, batches: 8, batchSize: 64 } as const;

export interface RecalibrationSummary {
  /** The recalibrated weights as named in the weight set, e.g. `g/bn1/movingMean` (or `ema/g/bn1/movingMean`). */
  tensors: string[];
  batches: number;
  batchSize: number;
  seed: number;
}

const MOVING_STAT = /(^|\/)bn\d*\/moving(Mean|Variance)$/;

export function recalibrateGeneratorBatchNorm(gan: Gan, opts: RecalibrateOptions = {}): RecalibrationSummary {
  const seed = opts.seed ?? RECALIBRATION_DEFAULTS.seed;
  const batches = opts.batches ?? RECALIBRATION_DEFAULTS.batches;
  const batchSize = opts.batchSize ?? RECALIBRATION_DEFAULTS.batchSize;
  if (!Number.isInteger(batches) || batches < 1) throw new RangeError(`batch-norm recalibration needs batches ≥ 1, got ${batches}`);
  if (!Number.isInteger(batchSize) || batchSize < 2) throw new RangeError(`batch-norm recalibration needs batchSize ≥ 2 (a batch variance), got ${batchSize}`);
  const cfg = gan.cfg;
  // Momentum 0: after a training-mode pass each moving statistic holds exactly that batch's statistic.
  const scratch = createGenerator({ ...cfg, generator: { ...cfg.generator, momentum: 0, dropout: 0 } });
  const sums = new Map<string, tf.Tensor>();
  try {
    const target = samplingGenerator(gan).params.all();
    const copy = scratch.params.all();
    if (copy.length !== target.length || copy.some((e, i) => e.name !== target[i].name)) {
      throw new Error('batch-norm recalibration: the scratch generator does not match the model (architecture changed?)');
    }
    copy.forEach((e, i) => e.variable.assign(target[i].variable));
    const stats = copy.filter((e) => MOVING_STAT.test(e.name));
    for (let b = 0; b < batches; b++) {
      tf.tidy(() => {
        const z = tf.randomNormal([batchSize, cfg.latentDim], 0, 1, 'float32', seed * 1_000_003 + b) as tf.Tensor2D;
        const labels = tf.tensor1d(
          Array.from({ length: batchSize }, (_, i) => (b * batchSize + i) % cfg.classes.length),
          'int32',
        );
        scratch.apply(z, labels, true, { updateStats: true });
      });
      for (const e of stats) {
        const prev = sums.get(e.name);
        sums.set(e.name, prev ? tf.tidy(() => tf.add(prev, e.variable)) : tf.clone(e.variable));
        prev?.dispose();
      }
    }
    for (const e of target) {
      const sum = sums.get(e.name);
      if (sum) tf.tidy(() => e.variable.assign(tf.div(sum, batches)));
    }
    const prefix = gan.ema ? EMA_PREFIX : '';
    return { tensors: stats.map((e) => prefix + e.name), batches, batchSize, seed };
  } finally {
    for (const t of sums.values()) t.dispose();
    scratch.params.dispose();
  }
}
