import * as tf from '@tensorflow/tfjs-core';
import { gradientPenalty } from './losses.ts';
import { realFakePass } from './realFakePass.ts';
import { generatorUpdate, sampleLatent, stepAugment, stepDropoutSeed, type GanStep, type StepContext } from './step.ts';
import { randomOps } from '../nn/random.ts';

/**
 * Conditional WGAN-GP (Gulrajani et al. 2017) with a projection critic.
 * Per batch: `nCritic` critic updates (fresh noise each, on the same real batch, as in the Keras WGAN-GP
 * example), then one generator update.
 * Critic: E[D(x̃,y)] − E[D(x,y)] + λ·GP;  generator: −E[D(G(z,ỹ),ỹ)].
 * Fakes for the critic use the real labels so x̂ interpolates within a class.
 * Every critic input goes through the config's augmentation T (augment.ts), the penalty's too: it is
 * λ·E[(‖∇_x̂ D(T(x̂))‖₂ − 1)²], the gradient taken with respect to the un-augmented interpolates.
 * Every dropout mask (the generator's; critics have none) takes its seed from the context's dropout
 * stream (stepDropoutSeed).
 */
export function wganGpStep(ctx: StepContext): GanStep {
  const { gan, optD, nextSeed } = ctx;
  const { G, D, cfg } = gan;
  const augment = stepAugment(ctx);
  const dropoutSeed = stepDropoutSeed(ctx);
  const dVars = D.params.trainableVariables();
  return ({ images, labels }) => {
    const b = images.shape[0];
    let dLoss: tf.Scalar | null = null;
    for (let i = 0; i < cfg.nCritic; i++) {
      const loss = tf.tidy(() => {
        const z = randomOps().normal([b, cfg.latentDim], 0, 1, nextSeed()) as tf.Tensor2D;
        const fake = G.apply(z, labels, true, { dropoutSeed });
        const { value, grads } = tf.variableGrads(() => {
          const critic = (x: tf.Tensor4D) => D.apply(augment(x), labels, true, dropoutSeed).score;
          // Every critic is per sample (layer norm, no dropout), so reals and fakes share one pass.
          const scores = realFakePass(D, images, labels, fake, labels, true, augment, dropoutSeed);
          const wasserstein = tf.sub(tf.mean(scores.fake.score), tf.mean(scores.real.score));
          return tf.add(wasserstein, gradientPenalty(critic, images, fake, cfg.gpLambda, nextSeed())) as tf.Scalar;
        }, dVars);
        optD.applyGradients(grads);
        return value;
      });
      dLoss?.dispose();
      dLoss = loss;
    }
    const gLoss = wganGpGeneratorUpdate(ctx, b);
    return { dLoss: dLoss!, gLoss };
  };
}

/** WGAN-GP's generator update on `b` fresh latents and labels: −E[D(G(z,ỹ),ỹ)]. Returns its loss. */
export function wganGpGeneratorUpdate(ctx: StepContext, b: number): tf.Scalar {
  return tf.tidy(() => {
    const { z, labels: fakeLabels } = sampleLatent(ctx.gan.cfg, b, ctx.nextSeed);
    return generatorUpdate(ctx, z, fakeLabels, (f) => tf.neg(tf.mean(f.score)));
  });
}
