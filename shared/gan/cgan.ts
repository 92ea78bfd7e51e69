import * as tf from '@tensorflow/tfjs-core';
import { bceWithLogits } from './losses.ts';
import { realFakePass } from './realFakePass.ts';
import { sampleLatent, type GanStep, type StepContext } from './step.ts';

/**
 * Conditional GAN (Mirza & Osindero 2014) with a projection discriminator D(x, y) and the
 * non-saturating loss: D: BCE(D(x,y)→1) + BCE(D(G(z,ỹ),ỹ)→0); G: BCE(D(G(z,ỹ),ỹ)→1).
 */
export function cganStep({ gan, optG, optD, nextSeed }: StepContext): GanStep {
  const { G, D, cfg } = gan;
  const dVars = D.params.trainableVariables();
  const gVars = G.params.trainableVariables();
  return ({ images, labels }) =>
    tf.tidy(() => {
      const b = images.shape[0];
      const { z, labels: fakeLabels } = sampleLatent(cfg, b, nextSeed);
      const fake = G.apply(z, fakeLabels, true);
      const dLoss = optD.minimize(
        () => {
          const { real, fake: f } = realFakePass(D, images, labels, fake, fakeLabels, true);
          return tf.add(bceWithLogits(real.score, 1), bceWithLogits(f.score, 0)) as tf.Scalar;
        },
        true,
        dVars,
      )!;
      // The one pass per step that moves G's batch-norm statistics (generator.ts says why).
      const gLoss = optG.minimize(() => bceWithLogits(D.apply(G.apply(z, fakeLabels, true, { updateStats: true }), fakeLabels, true).score, 1), true, gVars)!;
      return { dLoss, gLoss };
    });
}
