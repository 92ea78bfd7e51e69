import * as tf from '@tensorflow/tfjs-core';
import type { Dataset } from '../data/dataset.ts';
import type { GanTrainer } from './trainer.ts';

export interface LocalProgress {
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  /** Mean losses of the last finished epoch (absent until one finishes). */
  dLoss?: number;
  gLoss?: number;
}

export interface LocalResult {
  examples: number;
  steps: number;
  /** Mean losses over the last epoch. */
  dLoss: number;
  gLoss: number;
  seconds: number;
}

export interface LocalOptions {
  epochs: number;
  batchSize: number;
  seed: number;
  onProgress?: (p: LocalProgress) => void;
  /** Checked between steps; return true to stop early (the result covers the steps done). */
  shouldStop?: () => boolean;
  /** Yield to the event loop every n steps so messages and cancellation get through (default 1). */
  yieldEvery?: number;
  /**
   * Awaited before each step. A GPU host can use it to bound how far the loop runs ahead of the device
   * (e.g. wait until the losses of step k − 2 are read back), so progress and cancellation follow the
   * work the device has really done.
   */
  beforeStep?: () => Promise<void> | void;
}

/** Seeded permutation (xorshift32 Fisher–Yates); kept here so shuffling is reproducible everywhere. */
function permutation(n: number, seed: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  let s = seed >>> 0 || 0x9e3779b9;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const j = s % (i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

const tick = () => new Promise<void>((r) => setTimeout(r, 0));

/**
 * Train for `epochs` passes over the local data. Losses stay on the device and are read once per
 * epoch, so the loop never stalls the GPU on a readback between steps.
 */
export async function trainLocal(trainer: GanTrainer, data: Dataset, opts: LocalOptions): Promise<LocalResult> {
  const t0 = Date.now();
  const batch = Math.min(opts.batchSize, data.count);
  const stepsPerEpoch = Math.max(1, Math.floor(data.count / batch));
  let steps = 0;
  let last = { dLoss: NaN, gLoss: NaN };
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    const perm = permutation(data.count, opts.seed * 31 + epoch);
    let dSum: tf.Scalar = tf.scalar(0);
    let gSum: tf.Scalar = tf.scalar(0);
    let done = 0;
    for (let s = 0; s < stepsPerEpoch; s++) {
      if (opts.shouldStop?.()) break;
      if (opts.beforeStep) {
        await opts.beforeStep();
        if (opts.shouldStop?.()) break;
      }
      const idx = tf.tensor1d(perm.subarray(s * batch, (s + 1) * batch), 'int32');
      const images = tf.gather(data.images, idx) as tf.Tensor4D;
      const labels = tf.gather(data.labels, idx) as tf.Tensor1D;
      const { dLoss, gLoss } = trainer.step({ images, labels });
      const nd = tf.add(dSum, dLoss) as tf.Scalar;
      const ng = tf.add(gSum, gLoss) as tf.Scalar;
      tf.dispose([idx, images, labels, dLoss, gLoss, dSum, gSum]);
      dSum = nd;
      gSum = ng;
      done++;
      steps++;
      opts.onProgress?.({ epoch, epochs: opts.epochs, step: s + 1, stepsPerEpoch, ...(epoch > 0 ? last : {}) });
      if (s % (opts.yieldEvery ?? 1) === 0) await tick();
    }
    const [d, g] = await Promise.all([dSum.data(), gSum.data()]);
    tf.dispose([dSum, gSum]);
    if (done > 0) last = { dLoss: d[0] / done, gLoss: g[0] / done };
    opts.onProgress?.({ epoch, epochs: opts.epochs, step: stepsPerEpoch, stepsPerEpoch, ...last });
    if (opts.shouldStop?.()) break;
  }
  return { examples: data.count, steps, dLoss: last.dLoss, gLoss: last.gLoss, seconds: (Date.now() - t0) / 1000 };
}
