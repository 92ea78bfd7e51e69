import * as tf from '@tensorflow/tfjs-core';
import type { Dataset } from '../data/dataset.ts';
import { Rng } from '../rng.ts';
import type { StepLosses } from './step.ts';
import type { GanTrainer } from './trainer.ts';

/**
 * A hospital's local training loop: shuffled mini-batches over its tiles (Poisson-sampled ones under
 * differential privacy: LocalOptions.sampling), one GAN step each.
 *
 * A round's budget is a number of **steps** (RoundConfig.localSteps). One step is one mini-batch of real
 * tiles and ends with exactly one generator update: ACGAN and CGAN update the discriminator once and then
 * the generator; WGAN-GP updates the critic `nCritic` times on that batch (fresh noise each time) and then
 * the generator. So "steps" always counts generator steps, whatever the GAN type.
 *
 * The steps walk through the tiles in passes (epochs): each pass is a fresh shuffle, seeded from the round's
 * seed and the pass number, and takes `stepsPerEpoch` full batches. A budget of more steps than one pass
 * starts as many passes as it needs; the last one may stop part-way. `planLocalTraining` alone turns the
 * budget into a `LocalPlan`; the loop runs `plan.totalSteps` steps and derives the pass of each step from
 * `plan.stepsPerEpoch`.
 */

/**
 * Steps in one epoch over `examples` tiles with mini-batches of `batchSize`: `floor(examples / min(batchSize,
 * examples))`. Every step takes a full batch, so the last `examples mod batch` tiles of each shuffle are left
 * out of that epoch; a hospital with fewer tiles than a batch trains one step on all of them. The one
 * definition of an epoch for every host (progress reports use it too).
 */
export function stepsPerEpoch(examples: number, batchSize: number): number {
  if (!Number.isSafeInteger(examples) || examples < 1) throw new RangeError(`local training needs at least one example, got ${examples}`);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`the batch size must be a whole number ≥ 1, got ${batchSize}`);
  return Math.floor(examples / Math.min(batchSize, examples));
}

/** The work of one local round. */
export interface LocalPlan {
  examples: number;
  /** Tiles per step: the configured batch size, or all tiles when there are fewer. */
  batch: number;
  /** Steps in one pass over the (shuffled) tiles. */
  stepsPerEpoch: number;
  /** Passes started: ⌈totalSteps / stepsPerEpoch⌉ (the last one is partial when the steps do not fill it). */
  epochs: number;
  /** Generator steps of the round: the budget. */
  totalSteps: number;
}

/** The round's budget of local work: generator steps (RoundConfig.localSteps; see the top of this file). */
export interface LocalBudget {
  steps: number;
}

export function planLocalTraining(examples: number, batchSize: number, budget: LocalBudget): LocalPlan {
  const spe = stepsPerEpoch(examples, batchSize);
  if (!Number.isSafeInteger(budget.steps) || budget.steps < 1) throw new RangeError(`local steps must be a whole number ≥ 1, got ${budget.steps}`);
  return { examples, batch: Math.min(batchSize, examples), stepsPerEpoch: spe, epochs: Math.ceil(budget.steps / spe), totalSteps: budget.steps };
}

/** Where a round stands after `done` steps. */
export interface LocalProgress {
  /** Steps done and planned. */
  done: number;
  total: number;
  /** 0-based pass (epoch) of the last step done (0 before the first). */
  epoch: number;
  epochs: number;
  /** Steps done within that pass, 1…stepsPerEpoch (0 before the first step). */
  step: number;
  stepsPerEpoch: number;
  /** done / total. */
  fraction: number;
  /** Mean losses of the last complete pass (absent until one finishes; see LocalResult). */
  dLoss?: number;
  gLoss?: number;
}

/** Progress after `done` of the plan's steps (the one mapping from steps to epochs and fractions). */
export function progressAt(done: number, plan: LocalPlan): LocalProgress {
  const d = Math.min(Math.max(0, Math.floor(done)), plan.totalSteps);
  const epoch = Math.min(plan.epochs - 1, Math.floor(Math.max(0, d - 1) / plan.stepsPerEpoch));
  const step = d === 0 ? 0 : d - epoch * plan.stepsPerEpoch;
  return { done: d, total: plan.totalSteps, epoch, epochs: plan.epochs, step, stepsPerEpoch: plan.stepsPerEpoch, fraction: d / plan.totalSteps };
}

export interface LocalResult {
  examples: number;
  steps: number;
  /**
   * Mean losses over the last complete pass over the tiles. A final partial pass (a budget that is not a
   * whole number of passes, or a stop between steps) does not count unless no pass was completed: then they
   * are the means over all the steps done.
   */
  dLoss: number;
  gLoss: number;
  seconds: number;
}

export interface LocalOptions {
  plan: LocalPlan;
  /** Seed of the shuffles (pass e shuffles with a seed derived from `seed` and e). */
  seed: number;
  /** After each step (and once before the first, done = 0, and at the end of each pass with the mean losses). */
  onProgress?: (p: LocalProgress) => void;
  /**
   * Right after step `done` was dispatched, with its loss scalars. The tensors belong to the loop and are
   * disposed when the call returns: clone or stack them to keep them (e.g. to read them back asynchronously).
   */
  onStep?: (done: number, losses: StepLosses) => void;
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
  /**
   * How each step's tiles are drawn. 'shuffle' (default): the passes above, full batches. 'poisson', for
   * differentially private training (the privacy accountant assumes it, shared/privacy/accountant.ts):
   * every step takes each tile independently with probability q = batch / examples (1 when there are
   * fewer tiles than a batch), from a seeded stream (`poissonSample`), so a step's batch holds q·examples
   * tiles on average, possibly none; the batch carries that expected size (Batch.expectedSize) for the DP
   * step. Passes and progress count steps as with 'shuffle'.
   */
  sampling?: 'shuffle' | 'poisson';
  /**
   * Seed of the Poisson draws (default `seed`). Privacy amplification by sampling holds only if nobody
   * outside the hospital can tell which tiles a step took, so a hospital passes a secret seed here (drawn
   * from a cryptographic source, never sent), not the round's seed, which the server knows.
   */
  samplingSeed?: number;
}

/**
 * The tiles of step `step` under Poisson sampling: each of `examples` indices independently with
 * probability `rate`, from a stream seeded by (`seed`, `step`) alone, so a step's draw does not depend on
 * the steps before it. In increasing order.
 */
export function poissonSample(examples: number, rate: number, seed: number, step: number): Int32Array {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`the sampling rate must be in [0, 1], got ${rate}`);
  const rng = new Rng(seed).fork(`poisson:${step}`);
  const picked: number[] = [];
  for (let i = 0; i < examples; i++) if (rng.next() < rate) picked.push(i);
  return Int32Array.from(picked);
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
 * Run the plan's steps over the local data. Losses stay on the device and are summed there; the sums are
 * read once per pass, so the loop never stalls the GPU on a readback between steps.
 */
export async function trainLocal(trainer: GanTrainer, data: Dataset, opts: LocalOptions): Promise<LocalResult> {
  const t0 = Date.now();
  const { plan } = opts;
  if (plan.examples !== data.count) throw new RangeError(`the plan is for ${plan.examples} examples but the data holds ${data.count}`);
  const { batch, stepsPerEpoch: spe } = plan;
  let last = { dLoss: NaN, gLoss: NaN };
  let perm: Int32Array = new Int32Array(0);
  let sums: { d: tf.Scalar; g: tf.Scalar; steps: number; epoch: number } | null = null;
  let passCompleted = false;
  /** Read the pass's sums; a complete pass (or a partial one when none completed) sets the reported means. */
  const closeEpoch = async (complete: boolean) => {
    if (!sums) return;
    const s = sums;
    sums = null;
    const [d, g] = await Promise.all([s.d.data(), s.g.data()]);
    tf.dispose([s.d, s.g]);
    if (s.steps > 0 && (complete || !passCompleted)) last = { dLoss: d[0] / s.steps, gLoss: g[0] / s.steps };
    if (complete) passCompleted = true;
    opts.onProgress?.({ ...progressAt(steps, plan), ...last });
  };
  let steps = 0;
  opts.onProgress?.(progressAt(0, plan));
  try {
    for (let k = 0; k < plan.totalSteps; k++) {
      const epoch = Math.floor(k / spe);
      const s = k - epoch * spe;
      if (opts.shouldStop?.()) break;
      if (opts.beforeStep) {
        await opts.beforeStep();
        if (opts.shouldStop?.()) break;
      }
      if (s === 0) {
        perm = permutation(data.count, opts.seed * 31 + epoch);
        sums = { d: tf.scalar(0), g: tf.scalar(0), steps: 0, epoch };
      }
      const acc = sums!;
      const poisson = opts.sampling === 'poisson';
      const picked = poisson ? poissonSample(data.count, batch / data.count, opts.samplingSeed ?? opts.seed, k) : perm.subarray(s * batch, (s + 1) * batch);
      const batchTensors = tf.tidy(() => {
        const idx = tf.tensor1d(picked, 'int32');
        return { images: tf.gather(data.images, idx) as tf.Tensor4D, labels: tf.gather(data.labels, idx) as tf.Tensor1D, ...(poisson ? { expectedSize: batch } : {}) };
      });
      let losses: StepLosses;
      try {
        losses = trainer.step(batchTensors);
      } finally {
        tf.dispose([batchTensors.images, batchTensors.labels]);
      }
      try {
        opts.onStep?.(k + 1, losses);
      } finally {
        const nd = tf.add(acc.d, losses.dLoss) as tf.Scalar;
        const ng = tf.add(acc.g, losses.gLoss) as tf.Scalar;
        tf.dispose([losses.dLoss, losses.gLoss, acc.d, acc.g]);
        acc.d = nd;
        acc.g = ng;
        acc.steps++;
        steps++;
      }
      opts.onProgress?.({ ...progressAt(steps, plan), ...(acc.epoch > 0 ? last : {}) });
      if (s === spe - 1) await closeEpoch(true);
      if (k % (opts.yieldEvery ?? 1) === 0) await tick();
    }
    await closeEpoch(false);
  } finally {
    const s = sums as { d: tf.Scalar; g: tf.Scalar } | null;
    if (s) tf.dispose([s.d, s.g]);
  }
  return { examples: data.count, steps, dLoss: last.dLoss, gLoss: last.gLoss, seconds: (Date.now() - t0) / 1000 };
}
