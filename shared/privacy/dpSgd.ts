import * as tf from '@tensorflow/tfjs-core';
import { dpRefusal, type GanConfig } from '../config/ganConfig.ts';
import { withPerExampleWeights } from '../nn/perExample.ts';
import { randomOps, type SeedSource } from '../nn/random.ts';
import { Rng } from '../rng.ts';

/** A stream of 31-bit seeds for the DP noise from a (secret) seed, apart from every other stream. */
export function dpNoiseSeeds(seed: number): SeedSource {
  const rng = new Rng(seed).fork('dp-noise');
  return () => rng.nextUint32() >>> 1;
}

/**
 * DP-SGD (Abadi et al. 2016) for the discriminator: each example's gradient is clipped to norm C, the
 * clipped gradients are summed, Gaussian noise N(0, σ²C²) is added to the sum, and the result is divided
 * by the expected batch size. One "example" is one real tile together with everything of the
 * discriminator's loss that is paired with it: the fake scored next to it, and for WGAN-GP the gradient
 * penalty's interpolate between the two (shared/gan/dpLosses.ts). The generator never reads a tile, only
 * the discriminator, so its update is private by post-processing.
 *
 * Per-example gradients come from one backward pass, not B: the discriminator runs with a per-example
 * copy of every weight (shared/nn/perExample.ts), so the gradient of Σ_b ℓ_b with respect to copy b is
 * ∇ℓ_b. That is exact for any loss the layers can express, second-order ones included (WGAN-GP's penalty,
 * R1), at the price of memory for B copies of the discriminator's weights and their gradients. For a
 * first-order loss (ACGAN, CGAN without R1) dense and conv layers keep their own forward kernels (the
 * WebGPU fast path's fused ones included) and only their weight gradients are formed per example; a
 * second-order loss runs every layer on the copies (convolutions as batched matrix products over unfolded
 * patches), which costs more time and memory.
 */
export interface DpOptions {
  /** σ: the noise's standard deviation as a multiple of the clip norm. */
  noiseMultiplier: number;
  /** C: each example's gradient is scaled down to at most this L2 norm. */
  clipNorm: number;
  /**
   * Seed of the noise, which must stay at the hospital: noise that can be replayed can be subtracted. A
   * hospital draws one per round from a cryptographic source (crypto.getRandomValues) and never sends it.
   * Default (tests, benchmarks): the trainer's seed, i.e. replayable by whoever knows the round's seed.
   */
  noiseSeed?: number;
}

/** Throws a clear error when the DP options are unusable. */
export function checkDpOptions(dp: DpOptions): void {
  if (!Number.isFinite(dp.noiseMultiplier) || dp.noiseMultiplier < 0) throw new RangeError(`privacy.dp.noiseMultiplier must be a number ≥ 0, got ${dp.noiseMultiplier}`);
  if (!Number.isFinite(dp.clipNorm) || !(dp.clipNorm > 0)) throw new RangeError(`privacy.dp.clipNorm must be a number > 0, got ${dp.clipNorm}`);
  if (dp.noiseSeed !== undefined && !Number.isFinite(dp.noiseSeed)) throw new RangeError(`the DP noise seed must be a finite number, got ${dp.noiseSeed}`);
}

/**
 * The training step's guard: DP needs a discriminator without batch norm (`perSample`) and without spectral
 * normalisation, refused with the config check's reason (dpRefusal, shared/config/ganConfig.ts) or, for a
 * discriminator that check does not know, a generic one.
 */
export function checkDpDiscriminator(perSample: boolean, cfg: GanConfig): void {
  const refusal = dpRefusal(cfg);
  if (refusal) throw new Error(refusal.message);
  if (perSample) return;
  throw new Error(`differential privacy needs a discriminator without batch norm: the ${cfg.discriminator.type} discriminator mixes the tiles of a batch, so no tile's gradient is its own to clip`);
}

/**
 * The noise multiplier the accountant must use per generator step. WGAN-GP makes `nCritic` critic updates
 * on the same sampled batch, each clipped to C with fresh noise σC: together one Gaussian mechanism with
 * sensitivity C·√nCritic and noise σC, i.e. σ/√nCritic (Gaussian mechanisms compose exactly, adaptively
 * too). ACGAN and CGAN update the discriminator once per step: σ.
 */
export function effectiveNoiseMultiplier(cfg: GanConfig, dp: DpOptions): number {
  return cfg.gan === 'wgan-gp' ? dp.noiseMultiplier / Math.sqrt(cfg.nCritic) : dp.noiseMultiplier;
}

/**
 * Per-example gradients [B, ...variable.shape] of the loss vector [B] that `loss` computes, and its sum.
 * `firstOrder`: the loss differentiates nothing itself (no gradient penalty, no R1), which allows the
 * faster layer path (withPerExampleWeights); a second-order loss must pass false.
 */
export function perExampleGradients(vars: readonly tf.Variable[], batch: number, loss: () => tf.Tensor1D, firstOrder = false): { sum: tf.Scalar; grads: tf.Tensor[] } {
  // A broadcast add of rank 2 (then a free reshape): cheaper than tile, which some backends run in plain
  // JavaScript, and within every backend's rank limits (a conv filter's copies are rank 5).
  const copies = vars.map((v) => tf.reshape(tf.add(tf.zeros([batch, 1]), tf.reshape(v, [1, -1])), [batch, ...v.shape]));
  const weights = new Map(vars.map((v, i) => [v, copies[i]]));
  const { value, grads } = tf.engine().gradients(
    () =>
      withPerExampleWeights(batch, weights, () => {
        const l = loss();
        if (l.rank !== 1 || l.shape[0] !== batch) throw new Error(`a per-example loss must have shape [${batch}], got [${l.shape}]`);
        return tf.sum(l) as tf.Scalar;
      }, firstOrder),
    copies,
    undefined,
    true,
  );
  const missing = vars.filter((_, i) => !grads[i]).map((v) => v.name);
  tf.dispose(copies);
  if (missing.length) {
    tf.dispose([value, ...grads.filter(Boolean)]);
    throw new Error(`no per-example gradient reached ${missing.join(', ')}: the layer using it is not wired for per-example weights (shared/nn/perExample.ts)`);
  }
  return { sum: value as tf.Scalar, grads };
}

/**
 * Each example's gradient norm over all the variables: [B]. The squared norms are summed two at a time:
 * one AddN over every variable would bind more storage buffers than WebGPU allows a shader (8 by default).
 */
export function perExampleNorms(grads: readonly tf.Tensor[]): tf.Tensor1D {
  return tf.tidy(() => {
    const squares = grads.map((g) => tf.sum(tf.square(tf.reshape(g, [g.shape[0], -1])), 1));
    return tf.sqrt(squares.reduce((a, b) => tf.add(a, b))) as tf.Tensor1D;
  });
}

/** Clip factors min(1, C/‖g_b‖): [B]. */
export function clipFactors(norms: tf.Tensor1D, clipNorm: number): tf.Tensor1D {
  return tf.tidy(() => tf.div(clipNorm, tf.maximum(norms, clipNorm)) as tf.Tensor1D);
}

/** Σ_b c_b·g_b for each variable: the clipped sum, shaped like the variable. */
export function clippedSum(grads: readonly tf.Tensor[], factors: tf.Tensor1D): tf.Tensor[] {
  return grads.map((g) =>
    tf.tidy(() => {
      const b = g.shape[0];
      const flat = tf.matMul(tf.reshape(factors, [1, b]), tf.reshape(g, [b, -1]) as tf.Tensor2D);
      return tf.reshape(flat, g.shape.slice(1));
    }),
  );
}

/**
 * One DP-SGD discriminator update: per-example gradients of `loss` (a [b] vector, one term per example,
 * computed with the discriminator's per-example weights), each clipped to `clipNorm`, summed, plus noise
 * N(0, σ²C²) drawn from `nextSeed` (one seed per variable, from the trainer's seeded stream), divided by
 * `expectedBatch` and applied by `opt`. `b` may be 0 (an empty Poisson draw): the update is then noise
 * alone. `firstOrder` as for perExampleGradients. Returns the mean per-example loss (0 for an empty batch).
 */
export function dpUpdate(
  opt: tf.Optimizer,
  vars: readonly tf.Variable[],
  b: number,
  expectedBatch: number,
  loss: () => tf.Tensor1D,
  dp: DpOptions,
  nextSeed: SeedSource,
  firstOrder = false,
): tf.Scalar {
  checkDpOptions(dp);
  if (!(expectedBatch > 0)) throw new RangeError(`the expected batch size must be > 0, got ${expectedBatch}`);
  return tf.tidy(() => {
    let sums: tf.Tensor[];
    let mean: tf.Scalar;
    if (b > 0) {
      const { sum, grads } = perExampleGradients(vars, b, loss, firstOrder);
      sums = clippedSum(grads, clipFactors(perExampleNorms(grads), dp.clipNorm));
      mean = tf.div(sum, b);
    } else {
      sums = vars.map((v) => tf.zerosLike(v));
      mean = tf.scalar(0);
    }
    const std = dp.noiseMultiplier * dp.clipNorm;
    const update = sums.map((s, i) => {
      const noisy = std > 0 ? tf.add(s, randomOps().normal(vars[i].shape, 0, std, nextSeed())) : s;
      return { name: vars[i].name, tensor: tf.div(noisy, expectedBatch) };
    });
    opt.applyGradients(update);
    return mean;
  });
}
