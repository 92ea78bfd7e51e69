import type { GanType } from '../config/ganConfig.ts';
import { acganStep } from './acgan.ts';
import { cganStep } from './cgan.ts';
import type { Gan } from './gan.ts';
import type { GanStep, StepContext } from './step.ts';
import { createAdam } from '../nn/optimizer.ts';
import { wganGpStep } from './wgangp.ts';

const STEPS: Record<GanType, (ctx: StepContext) => GanStep> = {
  acgan: acganStep,
  cgan: cganStep,
  'wgan-gp': wganGpStep,
};

/** A GAN with its optimizers and its training step, as the config asks. */
export interface GanTrainer {
  readonly gan: Gan;
  readonly step: GanStep;
  /** Drop optimizer state (Adam moments), e.g. at the start of a federated round. */
  resetOptimizers(): void;
  dispose(): void;
}

export function createTrainer(gan: Gan, seed = gan.cfg.seed): GanTrainer {
  const { optimizerG: og, optimizerD: od } = gan.cfg;
  let counter = seed * 1_000_003;
  const nextSeed = () => (counter = (counter + 1) % 2147483647);
  let optG = createAdam(og.learningRate, og.beta1, og.beta2);
  let optD = createAdam(od.learningRate, od.beta1, od.beta2);
  let step = STEPS[gan.cfg.gan]({ gan, optG, optD, nextSeed });
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
      step = STEPS[gan.cfg.gan]({ gan, optG, optD, nextSeed });
    },
    dispose() {
      optG.dispose();
      optD.dispose();
    },
  };
}
