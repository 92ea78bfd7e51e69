import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { GAN_TYPES, parseGanConfig, type DiscriminatorType, type GanType } from '../config/ganConfig.ts';
import { createGan } from './gan.ts';
import { realFakePass } from './realFakePass.ts';

const B = 3;

function gan(type: DiscriminatorType, ganType: GanType) {
  return createGan(
    parseGanConfig({
      gan: ganType,
      imageSize: 16,
      latentDim: 8,
      generator: { baseChannels: 8 },
      discriminator: { type, baseChannels: 4, patchSize: 4, embedDim: 16, depth: 2, heads: 2, windowSize: 2, dropout: 0 },
      batchSize: B,
      nCritic: 1,
    }),
  );
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  expect(scale).toBeGreaterThan(0);
  return worst / Math.max(1, scale);
}

describe('realFakePass: reals and fakes in one discriminator pass', () => {
  for (const type of ['cnn', 'resnet', 'vit', 'swin'] as const) {
    for (const ganType of GAN_TYPES) {
      it(`${type} / ${ganType}: same outputs and same parameter gradients as two passes`, () => {
        const g = gan(type, ganType);
        // Only batch norm makes a discriminator depend on the rest of its batch: the ResNet outside the critic.
        expect(g.D.perSample).toBe(!(type === 'resnet' && ganType !== 'wgan-gp'));
        tf.tidy(() => {
          const real = tf.randomUniform([B, 16, 16, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
          const fake = tf.randomUniform([B, 16, 16, 3], -1, 1, 'float32', 2) as tf.Tensor4D;
          const realLabels = tf.tensor1d([0, 1, 1], 'int32');
          const fakeLabels = tf.tensor1d([1, 0, 1], 'int32');
          const loss = (o: { real: { score: tf.Tensor1D; classLogits?: tf.Tensor2D }; fake: { score: tf.Tensor1D; classLogits?: tf.Tensor2D } }) => {
            // Weights every output differently, so a swapped or misaligned half would show.
            let l = tf.sub(tf.mean(tf.mul(o.real.score, tf.range(1, B + 1))), tf.mean(tf.square(o.fake.score)));
            if (o.real.classLogits) l = tf.add(l, tf.sub(tf.sum(tf.mul(o.real.classLogits, 0.3)), tf.sum(tf.square(o.fake.classLogits!))));
            return l as tf.Scalar;
          };
          const two = () => ({ real: g.D.apply(real, realLabels, true), fake: g.D.apply(fake, fakeLabels, true) });
          const one = () => realFakePass(g.D, real, realLabels, fake, fakeLabels, true);
          const a = one();
          const b = two();
          expect(a.real.score.shape).toEqual([B]);
          expect(maxRelDiff(a.real.score.dataSync(), b.real.score.dataSync())).toBeLessThan(1e-5);
          expect(maxRelDiff(a.fake.score.dataSync(), b.fake.score.dataSync())).toBeLessThan(1e-5);
          if (ganType === 'acgan') {
            expect(a.fake.classLogits!.shape).toEqual([B, 2]);
            expect(maxRelDiff(a.fake.classLogits!.dataSync(), b.fake.classLogits!.dataSync())).toBeLessThan(1e-5);
          } else expect(a.real.classLogits).toBeUndefined();
          const vars = g.D.params.trainableVariables();
          const g1 = tf.variableGrads(() => loss(one()), vars).grads;
          const g2 = tf.variableGrads(() => loss(two()), vars).grads;
          expect(Object.keys(g1).sort()).toEqual(Object.keys(g2).sort());
          for (const k of Object.keys(g2)) expect(maxRelDiff(g1[k].dataSync(), g2[k].dataSync()), k).toBeLessThan(1e-5);
        });
        g.dispose();
      });
    }
  }
});
