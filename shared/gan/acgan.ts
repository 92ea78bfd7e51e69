import * as tf from '@tensorflow/tfjs-core';
import { bceWithLogits, softmaxCrossEntropy } from './losses.ts';
import { realFakePass } from './realFakePass.ts';
import { sampleLatent, type GanStep, type StepContext } from './step.ts';

/**
 * ACGAN (Odena et al. 2017). The discriminator predicts real/fake and the class;
 * D: BCE(real→1) + BCE(fake→0) + CE(class|real) + CE(class|fake); G: BCE(fake→1) + CE(class|fake).
 */
export function acganStep({ gan, optG, optD, nextSeed }: StepContext): GanStep {
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
          const { real: r, fake: f } = realFakePass(D, images, labels, fake, fakeLabels, true);
          return tf.addN([
            bceWithLogits(r.score, 1),
            bceWithLogits(f.score, 0),
            softmaxCrossEntropy(r.classLogits!, labels),
            softmaxCrossEntropy(f.classLogits!, fakeLabels),
          ]) as tf.Scalar;
        },
        true,
        dVars,
      )!;
      const gLoss = optG.minimize(
        () => {
          // The one pass per step that moves G's batch-norm statistics (generator.ts says why).
          const f = D.apply(G.apply(z, fakeLabels, true, { updateStats: true }), fakeLabels, true);
          return tf.add(bceWithLogits(f.score, 1), softmaxCrossEntropy(f.classLogits!, fakeLabels)) as tf.Scalar;
        },
        true,
        gVars,
      )!;
      return { dLoss, gLoss };
    });
}
