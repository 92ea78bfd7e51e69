import type { GanType } from '../config/ganConfig.ts';
import { acganStep } from './acgan.ts';
import { cganStep } from './cgan.ts';
import { dpStep } from './dpSteps.ts';
import type { Gan } from './gan.ts';
import type { GanStep, StepContext } from './step.ts';
import { createAdam } from '../nn/optimizer.ts';
import type { SeedSource } from '../nn/random.ts';
import { checkDpOptions, dpNoiseSeeds, type DpOptions } from '../privacy/dpSgd.ts';
import { Rng } from '../rng.ts';
import { wganGpStep } from './wgangp.ts';

const STEPS: Record<GanType, (ctx: StepContext) => GanStep> = {
  acgan: acganStep,
  cgan: cganStep,
  'wgan-gp': wganGpStep,
};

/**
 * The config's step for this GAN, preceded, when the discriminator is spectrally normalised
 * (cfg.discriminator.spectralNorm), by one power iteration of its σ estimates, and followed, when the GAN
 * keeps an EMA of its generator (cfg.ema), by the average's update: every step ends with exactly one
 * generator update, so the EMA moves once per generator step.
 */
function configuredStep(ctx: StepContext): GanStep {
  const step = ctx.dp ? dpStep(ctx) : STEPS[ctx.gan.cfg.gan](ctx);
  const ema = ctx.gan.ema;
  const spectral = ctx.gan.D.spectralNorm;
  if (!ema && !spectral) return step;
  return (batch) => {
    spectral?.powerIteration();
    const losses = step(batch);
    ema?.update();
    return losses;
  };
}

/** A GAN with its optimizers and its training step, as the config asks. */
export interface GanTrainer {
  readonly gan: Gan;
  /** One GAN step (GAN type, loss, augmentation and R1 from the config), after the spectral norm's power iteration and before the EMA update, where the config has them. */
  readonly step: GanStep;
  /** Drop optimizer state (Adam moments), e.g. at the start of a federated round. */
  resetOptimizers(): void;
  dispose(): void;
}

/**
 * The seeds of a trainer's dropout masks: a stream of its own (`Rng(seed).fork('dropout')`, 31-bit
 * seeds), apart from the counter of its other draws, so that dropout on or off leaves the latents, labels,
 * penalty weights and augmentation of a run as they were.
 */
export function dropoutSeeds(seed: number): SeedSource {
  const rng = new Rng(seed).fork('dropout');
  return () => rng.nextUint32() >>> 1;
}

/**
 * A trainer whose every random draw is seeded from `seed` (default: the config's): latents, labels,
 * penalty weights and augmentation from one counter, dropout masks from `dropoutSeeds(seed)`, each mask
 * with its seed passed explicitly down to the layer (StepContext.dropoutSeed → G.apply / D.apply →
 * shared/nn/layers.ts dropout). A training run is then reproducible from the weights, the batches and the
 * seed on every backend (the DP noise, `opts.dp`, from the same counter): tfjs's random ops and the WebGPU fast path's (which would otherwise answer an
 * unseeded mask from one stream per page, the same in every browser), and two trainers with different
 * seeds draw different masks.
 */
export interface TrainerOptions {
  /**
   * Differential privacy for the discriminator (DP-SGD: shared/privacy/dpSgd.ts, shared/gan/dpSteps.ts).
   * Refused, with the reason, for a discriminator with batch norm. The DP noise is drawn from the stream of
   * `dp.noiseSeed` (dpNoiseSeeds), which a hospital keeps secret; without one, from the same seeded counter
   * as the latents (replayable from `seed`: tests and benchmarks only).
   */
  dp?: DpOptions;
}

export function createTrainer(gan: Gan, seed = gan.cfg.seed, opts: TrainerOptions = {}): GanTrainer {
  const { optimizerG: og, optimizerD: od } = gan.cfg;
  const dp = opts.dp;
  if (dp) checkDpOptions(dp);
  const dpNoiseSeed = dp?.noiseSeed !== undefined ? dpNoiseSeeds(dp.noiseSeed) : undefined;
  let counter = seed * 1_000_003;
  const nextSeed = () => (counter = (counter + 1) % 2147483647);
  const dropoutSeed = dropoutSeeds(seed);
  let optG = createAdam(og.learningRate, og.beta1, og.beta2);
  let optD = createAdam(od.learningRate, od.beta1, od.beta2);
  let step = configuredStep({ gan, optG, optD, nextSeed, dropoutSeed, dp, dpNoiseSeed });
  return {
    gan,
    get step() {
      return step;
    },
    resetOptimizers() {
      optG.dispose();
      optD.dispose();
      optG = createAdam(og.learningRate, og.beta1, og.beta2);
      optD = createAdam(od.learningRate, od.beta1, od.beta2);
      step = configuredStep({ gan, optG, optD, nextSeed, dropoutSeed, dp, dpNoiseSeed });
    },
    dispose() {
      optG.dispose();
      optD.dispose();
    },
  };
}
