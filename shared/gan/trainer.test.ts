import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import type { GanConfigInput, GanType } from '../config/ganConfig.ts';
import { randomOps, setRandomOps, tfjsRandomOps, type RandomOps } from '../nn/random.ts';
import { Rng } from '../rng.ts';
import type { WeightSet } from '../weights.ts';
import { createGan } from './gan.ts';
import { tinyConfig } from './testConfig.ts';
import { createTrainer } from './trainer.ts';

/**
 * The trainer is reproducible from its seed, dropout masks included: every mask of a step is drawn with
 * a seed from the trainer's own dropout stream (not tfjs's unseeded generator, nor a backend's page-wide
 * stream), so two trainers with the same seed train the same weights and two with different seeds draw
 * different masks.
 */

const restores: (() => void)[] = [];
afterEach(() => {
  while (restores.length) restores.pop()!();
});

/** One dropout draw: the seed it was given and its mask (1 where the element was kept). */
interface MaskDraw {
  seed: number | undefined;
  mask: number[];
}

/** Records every dropout draw (tfjs's numbers, unchanged) and every latent/label draw's values. */
function recordRandom(): { masks: MaskDraw[]; others: number[][] } {
  const masks: MaskDraw[] = [];
  const others: number[][] = [];
  const previous = randomOps();
  const keep = (t: tf.Tensor) => (others.push(Array.from(t.dataSync())), t);
  const ops: RandomOps = {
    normal: (shape, mean, std, seed) => keep(tfjsRandomOps.normal(shape, mean, std, seed)),
    uniform: (shape, min, max, seed) => keep(tfjsRandomOps.uniform(shape, min, max, seed)),
    uniformInt: (shape, min, max, seed) => keep(tfjsRandomOps.uniformInt(shape, min, max, seed)),
    dropout: (x, rate, seed) => {
      const y = tfjsRandomOps.dropout(x, rate, seed);
      masks.push({ seed, mask: Array.from(tf.tidy(() => tf.notEqual(y, 0)).dataSync()) });
      return y;
    },
  };
  setRandomOps(ops);
  restores.push(() => setRandomOps(previous));
  return { masks, others };
}

function batch() {
  const images = tf.randomUniform([8, 16, 16, 3], -1, 1, 'float32', 3) as tf.Tensor4D;
  const labels = tf.tensor1d([0, 1, 0, 1, 1, 1, 0, 1], 'int32');
  restores.push(() => tf.dispose([images, labels]));
  return { images, labels };
}

/** A fresh GAN (its initial weights come from the config's seed), `steps` steps of a trainer seeded `seed`. */
function train(gan: GanType, seed: number, model: GanConfigInput = {}, steps = 1): WeightSet {
  const g = createGan(tinyConfig(gan, model));
  const t = createTrainer(g, seed);
  const b = batch();
  for (let i = 0; i < steps; i++) {
    const l = t.step(b);
    tf.dispose([l.dLoss, l.gLoss]);
  }
  const w = g.getWeights();
  t.dispose();
  g.dispose();
  return w;
}

const bitIdentical = (a: WeightSet, b: WeightSet) => a.tensors.length === b.tensors.length && a.tensors.every((t, i) => t.name === b.tensors[i].name && t.data.every((v, j) => Object.is(v, b.tensors[i].data[j])));

/** Discriminator dropout 0.25 (the config's default) and generator dropout on too. */
const DROPOUT: GanConfigInput = { generator: { baseChannels: 8, momentum: 0.8, dropout: 0.3 }, discriminator: { baseChannels: 4, dropout: 0.25 } };

describe('createTrainer: dropout masks from the trainer seed', () => {
  it.each(['acgan', 'cgan', 'wgan-gp'] as const)('%s: two trainers with the same seed on the same weights and batch train bit-identical weights (dropout on, cpu)', (gan) => {
    const a = train(gan, 7, DROPOUT, 2);
    const b = train(gan, 7, DROPOUT, 2);
    expect(bitIdentical(a, b)).toBe(true);
    // The same seed is what makes them equal: another seed trains other weights.
    expect(bitIdentical(a, train(gan, 8, DROPOUT, 2))).toBe(false);
  });

  it.each([
    ['acgan', 'cnn'],
    ['cgan', 'cnn'],
    ['wgan-gp', 'cnn'],
    ['acgan', 'resnet'],
    ['acgan', 'vit'],
    ['acgan', 'swin'],
  ] as const)('%s with the %s discriminator: every mask of a step has a seed from the trainer seed; other seeds, other masks', (gan, type) => {
    const model: GanConfigInput = { ...DROPOUT, discriminator: { type, baseChannels: 4, patchSize: 4, embedDim: 16, depth: 1, heads: 2, windowSize: 2, dropout: 0.25 } };
    const draws = (seed: number) => {
      const rec = recordRandom();
      train(gan, seed, model);
      restores.pop()!();
      return rec.masks;
    };
    const a = draws(7);
    // The generator's three stages in every pass; the discriminator's too, except in the WGAN-GP critic.
    expect(a.length).toBeGreaterThan(3);
    // Every mask was drawn with a seed: the trainer's dropout stream, a stream of its own derived from its seed.
    const stream = new Rng(7).fork('dropout');
    expect(a.map((d) => d.seed)).toEqual(a.map(() => stream.nextUint32() >>> 1));
    expect(draws(7)).toEqual(a);
    const b = draws(8);
    expect(b.map((d) => d.seed)).toHaveLength(a.length);
    expect(b.filter((d, i) => d.seed === a[i].seed)).toEqual([]);
    // Masks of the same shape differ (each has hundreds of elements at rate ≥ 0.25).
    b.forEach((d, i) => {
      expect(d.mask).toHaveLength(a[i].mask.length);
      expect(d.mask).not.toEqual(a[i].mask);
    });
  });

  it('the dropout stream is apart from the other draws: turning dropout on leaves latents, labels and augmentation as they were', () => {
    const others = (model: GanConfigInput) => {
      const rec = recordRandom();
      train('acgan', 7, { ...model, augment: { policy: ['color', 'translation', 'cutout'] } });
      restores.pop()!();
      return { others: rec.others, masks: rec.masks.length };
    };
    const off = others({ generator: { baseChannels: 8, momentum: 0.8, dropout: 0 }, discriminator: { baseChannels: 4, dropout: 0 } });
    const on = others(DROPOUT);
    expect(off.masks).toBe(0);
    expect(on.masks).toBeGreaterThan(0);
    expect(on.others.length).toBeGreaterThan(0);
    expect(on.others).toEqual(off.others);
  });
});
