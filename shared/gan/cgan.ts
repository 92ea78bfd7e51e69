import * as tf from '@tensorflow/tfjs-core';
import { discriminatorTerms, generatorTerm, r1Penalty, saturatingLoss } from './objectives.ts';
import { realFakePass } from './realFakePass.ts';
import { generatorUpdate, sampleLatent, stepAugment, stepDropoutSeed, type GanStep, type StepContext } from './step.ts';

/**
 * Conditional GAN (Mirza & Osindero 2014) with a projection discriminator D(x, y) and the
 * non-saturating loss: D: BCE(D(x,y)→1) + BCE(D(G(z,ỹ),ỹ)→0); G: BCE(D(G(z,ỹ),ỹ)→1).
 * With `adversarialLoss: 'hinge'`, the hinge loss instead (objectives.ts); with `r1`, D's loss adds
 * γ/2·E‖∇ₓD(x,y)‖² on the reals. Every discriminator input goes through the config's augmentation. Every
 * dropout mask takes its seed from the context's dropout stream (stepDropoutSeed).
 */
export function cganStep(ctx: StepContext): GanStep {
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
          const { real, fake: f } = realFakePass(D, images, labels, fake, fakeLabels, true, augment, dropoutSeed);
          const [onReal, onFake] = discriminatorTerms(loss, real.score, f.score);
          const adversarial = tf.add(onReal, onFake) as tf.Scalar;
          return cfg.r1 ? (tf.add(adversarial, r1Penalty((x) => D.apply(augment(x), labels, true, dropoutSeed).score, images, cfg.r1.gamma)) as tf.Scalar) : adversarial;
        },
        true,
        dVars,
      )!;
      const gLoss = cganGeneratorUpdate(ctx, z, fakeLabels);
      return { dLoss, gLoss };
    });
}

/** CGAN's generator update on latents z with labels: BCE(D(G(z,ỹ),ỹ)→1) (or hinge). Returns its loss. */
export function cganGeneratorUpdate(ctx: StepContext, z: tf.Tensor2D, fakeLabels: tf.Tensor1D): tf.Scalar {
  const loss = saturatingLoss(ctx.gan.cfg.adversarialLoss);
  return generatorUpdate(ctx, z, fakeLabels, (f) => generatorTerm(loss, f.score));
}
