import * as tf from '@tensorflow/tfjs-core';
import { softmaxCrossEntropy } from './losses.ts';
import { discriminatorTerms, generatorTerm, r1Penalty, saturatingLoss } from './objectives.ts';
import { realFakePass } from './realFakePass.ts';
import { generatorUpdate, sampleLatent, stepAugment, stepDropoutSeed, type GanStep, type StepContext } from './step.ts';

/**
 * ACGAN (Odena et al. 2017). The discriminator predicts real/fake and the class;
 * D: BCE(real→1) + BCE(fake→0) + CE(class|real) + CE(class|fake); G: BCE(fake→1) + CE(class|fake).
 * With `adversarialLoss: 'hinge'` the two BCE terms of D and the one of G are the hinge loss's
 * (objectives.ts); with `r1`, D's loss adds γ/2·E‖∇ₓD(x)‖² on the reals. Every discriminator input, reals
 * and fakes, goes through the config's augmentation (augment.ts). Every dropout mask takes its seed from
 * the context's dropout stream (stepDropoutSeed).
 */
export function acganStep(ctx: StepContext): GanStep {
  const { gan, optD, nextSeed } = ctx;
  const { G, D, cfg } = gan;
  const augment = stepAugment(ctx);
  const dropoutSeed = stepDropoutSeed(ctx);
  const loss = saturatingLoss(cfg.adversarialLoss);
  const dVars = D.params.trainableVariables();
  return ({ images, labels }) =>
    tf.tidy(() => {
      const b = images.shape[0];
      const { z, labels: fakeLabels } = sampleLatent(cfg, b, nextSeed);
      const fake = G.apply(z, fakeLabels, true, { dropoutSeed });
      const dLoss = optD.minimize(
        () => {
          const { real: r, fake: f } = realFakePass(D, images, labels, fake, fakeLabels, true, augment, dropoutSeed);
          const terms = [...discriminatorTerms(loss, r.score, f.score), softmaxCrossEntropy(r.classLogits!, labels), softmaxCrossEntropy(f.classLogits!, fakeLabels)];
          if (cfg.r1) terms.push(r1Penalty((x) => D.apply(augment(x), labels, true, dropoutSeed).score, images, cfg.r1.gamma));
          return tf.addN(terms) as tf.Scalar;
        },
        true,
        dVars,
      )!;
      const gLoss = acganGeneratorUpdate(ctx, z, fakeLabels);
      return { dLoss, gLoss };
    });
}

/** ACGAN's generator update on latents z with labels: BCE(fake→1) (or hinge) + CE(class|fake). Returns its loss. */
export function acganGeneratorUpdate(ctx: StepContext, z: tf.Tensor2D, fakeLabels: tf.Tensor1D): tf.Scalar {
  const loss = saturatingLoss(ctx.gan.cfg.adversarialLoss);
  return generatorUpdate(ctx, z, fakeLabels, (f) => tf.add(generatorTerm(loss, f.score), softmaxCrossEntropy(f.classLogits!, fakeLabels)) as tf.Scalar);
}
