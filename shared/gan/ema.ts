import * as tf from '@tensorflow/tfjs-core';
import type { GanConfig } from '../config/ganConfig.ts';
import { movingAverage } from '../nn/movingAverage.ts';
import { createGenerator, type Generator } from './generator.ts';

/**
 * An exponential moving average of the generator's weights (Karras et al. 2018, Yazıcı et al. 2019):
 * after every generator step, ema ← decay·ema + (1 − decay)·G for every generator tensor (trainable
 * weights and batch-norm moving statistics alike). Sampling from the average gives smoother, better
 * images than the last iterate of an oscillating GAN.
 *
 * The average is a second generator of the same architecture whose variables hold the average. In the
 * weight set its tensors follow the generator's and discriminator's, named `ema/<generator tensor name>`
 * (`ema/g/conv1/kernel`, `ema/g/bn1/gamma`: FedBN's batch-norm test still recognises the latter), so the
 * federation averages them like every other weight: FedAvg is linear, so the average of the hospitals'
 * averages is the average of their trajectories. See docs/recipe.md.
 */
export const EMA_PREFIX = 'ema/';

export interface GeneratorEma {
  readonly decay: number;
  /** The averaged generator: same architecture, its variables hold the average. */
  readonly generator: Generator;
  /** ema ← decay·ema + (1 − decay)·G, for every generator tensor (one moving-average op each). */
  update(): void;
}

/** The average of `source`'s weights, starting equal to them. */
export function createGeneratorEma(cfg: GanConfig, source: Generator, decay: number): GeneratorEma {
  if (!(decay >= 0 && decay < 1)) throw new Error(`EMA decay must be in [0, 1), got ${decay}`);
  const generator = createGenerator(cfg);
  const pairs = generator.params.all().map((e, i) => {
    const g = source.params.all()[i];
    if (!g || g.name !== e.name) throw new Error(`EMA generator tensor ${e.name} has no counterpart in the generator`);
    return { ema: e.variable, g: g.variable };
  });
  // A copy computed on the device (never the generator's own buffers, which Adam may update in place).
  tf.tidy(() => pairs.forEach(({ ema, g }) => ema.assign(tf.add(g, 0))));
  return {
    decay,
    generator,
    update() {
      tf.tidy(() => pairs.forEach(({ ema, g }) => ema.assign(movingAverage(ema, g, decay))));
    },
  };
}
