import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { fedAvg } from '../../aggregate/fedavg.ts';
import { decodeWeights, encodeWeights } from '../../codec/weightsCodec.ts';
import { GAN_TYPES, parseGanConfig, type DiscriminatorType, type GanConfigInput, type GanType } from '../../config/ganConfig.ts';
import { isBatchNormWeight } from '../../weights.ts';
import { createGan, type Gan } from '../gan.ts';
import { gradientPenalty } from '../losses.ts';
import { createTrainer } from '../trainer.ts';
import { RESNET_BLOCKS } from './resnet.ts';
import { swinStages } from './swin.ts';

const ZOO = ['resnet', 'vit', 'swin'] as const satisfies readonly DiscriminatorType[];
const B = 4;

/** A tiny config: 16 px, 4×4 patches (a 4×4 token grid), 16-wide tokens, 2 heads, 2×2 windows. */
function zooConfig(type: DiscriminatorType, gan: GanType, overrides: GanConfigInput = {}) {
  return parseGanConfig({
    gan,
    imageSize: 16,
    latentDim: 8,
    generator: { baseChannels: 8 },
    discriminator: { type, baseChannels: 4, patchSize: 4, embedDim: 16, depth: 2, heads: 2, windowSize: 2 },
    batchSize: B,
    nCritic: 1,
    ...overrides,
  });
}

function batch(seed = 1) {
  const images = tf.randomUniform([B, 16, 16, 3], -1, 1, 'float32', seed) as tf.Tensor4D;
  const labels = tf.tensor1d([0, 1, 1, 0], 'int32');
  return { images, labels };
}

function criticValue(gan: Gan, images: tf.Tensor4D, labels: tf.Tensor1D): Float32Array {
  return tf.tidy(() => gan.D.apply(images, labels, false).score.dataSync() as Float32Array);
}

describe.each(ZOO)('%s discriminator', (type) => {
  describe.each(GAN_TYPES)('with %s', (ganType) => {
    it('has the right output shapes, trains one step with finite losses, and leaks no tensors', () => {
      const gan = createGan(zooConfig(type, ganType));
      const { images, labels } = batch();
      const out = tf.tidy(() => {
        const o = gan.D.apply(images, labels, true);
        return [o.score, ...(o.classLogits ? [o.classLogits] : [])];
      });
      expect(out[0].shape).toEqual([B]);
      if (ganType === 'acgan') expect(out[1].shape).toEqual([B, 2]);
      else expect(out).toHaveLength(1);
      for (const t of out) expect(Array.from(t.dataSync()).every(Number.isFinite)).toBe(true);
      tf.dispose(out);

      const trainer = createTrainer(gan);
      const before = gan.getWeights();
      const counts: number[] = [];
      for (let i = 0; i < 3; i++) {
        const { dLoss, gLoss } = trainer.step({ images, labels });
        expect(Number.isFinite(dLoss.dataSync()[0])).toBe(true);
        expect(Number.isFinite(gLoss.dataSync()[0])).toBe(true);
        tf.dispose([dLoss, gLoss]);
        counts.push(tf.memory().numTensors);
      }
      expect(counts[2]).toBe(counts[0]);
      const after = gan.getWeights();
      const moved = (name: string) => {
        const i = after.tensors.findIndex((t) => t.name === name);
        return after.tensors[i].data.some((v, j) => v !== before.tensors[i].data[j]);
      };
      expect(moved('d/score/kernel')).toBe(true);
      expect(moved('g/conv1/kernel')).toBe(true);
      const first = type === 'resnet' ? 'd/stem/conv/kernel' : 'd/patchEmbed/kernel';
      expect(moved(first)).toBe(true);
      trainer.dispose();
      gan.dispose();
      tf.dispose([images, labels]);
    });
  });

  it('has unique, stable parameter names, with batch norm (named bn<k>) only in the ResNet of ACGAN/CGAN', () => {
    for (const ganType of GAN_TYPES) {
      const a = createGan(zooConfig(type, ganType));
      const b = createGan(zooConfig(type, ganType, { seed: 7 }));
      const names = a.spec.map((s) => s.name);
      expect(new Set(names).size).toBe(names.length);
      expect(b.spec).toEqual(a.spec);
      expect(b.fingerprint).toBe(a.fingerprint);
      const dNames = names.filter((n) => n.startsWith('d/'));
      const bn = dNames.filter(isBatchNormWeight);
      if (type === 'resnet' && ganType !== 'wgan-gp') {
        // stem + 2 per block + 1 per projection shortcut (3 downsampling stages)
        const layers = 1 + 2 * RESNET_BLOCKS.reduce((x, y) => x + y, 0) + 3;
        expect(bn).toHaveLength(4 * layers);
        for (const n of bn) expect(n).toMatch(/\/bn\d\/(gamma|beta|movingMean|movingVariance)$/);
        expect(dNames.some((n) => /\/ln\d\//.test(n))).toBe(false);
      } else {
        expect(bn).toEqual([]);
      }
      if (type === 'resnet' && ganType === 'wgan-gp') expect(dNames.filter((n) => /\/ln\d\/gamma$/.test(n))).toHaveLength(1 + 2 * 8 + 3);
      a.dispose();
      b.dispose();
    }
  });

  it('as a WGAN-GP critic: the gradient penalty is finite and non-zero, and its parameter gradient matches finite differences', () => {
    const gan = createGan(zooConfig(type, 'wgan-gp', { discriminator: { type, baseChannels: 8, patchSize: 4, embedDim: 16, depth: 2, heads: 2, windowSize: 2 } }));
    // Two samples keep the many penalty evaluations cheap.
    const images = tf.randomUniform([2, 16, 16, 3], -1, 1, 'float32', 3) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 1], 'int32');
    const fake = tf.randomUniform([2, 16, 16, 3], -1, 1, 'float32', 4) as tf.Tensor4D;
    const gp = () => gradientPenalty((x) => gan.D.apply(x, labels, true).score, images, fake, 10, 5);
    const value = tf.tidy(() => gp().dataSync()[0]);
    expect(Number.isFinite(value)).toBe(true);
    expect(value).toBeGreaterThan(0);

    // Parameters whose gradient has to pass through the second derivative of the blocks' ops.
    const probes =
      type === 'resnet'
        ? ['d/stage2/block1/conv1/kernel', 'd/stage1/block1/ln2/gamma', 'd/stage2/block1/shortcut/kernel']
        : type === 'vit'
          ? ['d/block1/attention/query/kernel', 'd/block2/mlp/fc1/kernel']
          : ['d/stage1/block2/attention/key/kernel', 'd/stage1/block2/relativePositionBias', 'd/stage1/merge/reduction/kernel'];
    // The penalty is only piecewise smooth in the ResNet (LeakyReLU kinks): a central difference is valid
    // where the two one-sided differences agree, so coordinates with a kink inside ±eps are skipped.
    const vars = new Map(gan.D.params.all().map((e) => [e.name, e.variable]));
    let checked = 0;
    for (const name of probes) {
      const v = vars.get(name)!;
      expect(v, name).toBeDefined();
      const grad = tf.tidy(() => tf.variableGrads(gp, [v]).grads[v.name].dataSync() as Float32Array);
      expect(grad.every(Number.isFinite)).toBe(true);
      expect(grad.some((g) => g !== 0)).toBe(true);
      const base = v.dataSync().slice() as Float32Array;
      const at = (i: number, delta: number) => {
        const moved = base.slice();
        moved[i] += delta;
        tf.tidy(() => v.assign(tf.tensor(moved, v.shape)));
        return tf.tidy(() => gp().dataSync()[0]);
      };
      let largest = 0;
      for (let i = 1; i < grad.length; i++) if (Math.abs(grad[i]) > Math.abs(grad[largest])) largest = i;
      // The transformers are smooth (GELU, softmax), so a few coordinates do; the ResNet needs more to find smooth ones.
      const spread = type === 'resnet' ? 7 : 2;
      const coords = [largest, ...Array.from({ length: spread }, (_, k) => Math.floor(((k + 0.5) / spread) * grad.length))];
      const eps = 1e-3;
      for (const i of coords) {
        const f0 = at(i, 0);
        const forward = (at(i, eps) - f0) / eps;
        const backward = (f0 - at(i, -eps)) / eps;
        const scale = Math.max(1, Math.abs(forward), Math.abs(backward));
        if (Math.abs(forward - backward) > 0.02 * scale) continue;
        const numeric = (forward + backward) / 2;
        expect(Math.abs(grad[i] - numeric), `${name}[${i}]: analytic ${grad[i]} vs numeric ${numeric}`).toBeLessThan(0.02 * scale);
        checked++;
      }
      tf.tidy(() => v.assign(tf.tensor(base, v.shape)));
    }
    expect(checked).toBeGreaterThanOrEqual(2 * probes.length);
    tf.dispose([images, labels, fake]);
    gan.dispose();
  });

  it('round-trips through the weights codec into a fresh model that then computes the same outputs', () => {
    for (const ganType of GAN_TYPES) {
      const a = createGan(zooConfig(type, ganType));
      const b = createGan(zooConfig(type, ganType, { seed: 99 }));
      const { images, labels } = batch(2);
      const bytes = encodeWeights(a.getWeights(), { round: 3 });
      const { weights, meta } = decodeWeights(bytes, { expectedFingerprint: b.fingerprint, expectedShapes: b.spec, requireFinite: true });
      expect(meta).toEqual({ round: 3 });
      expect(Array.from(criticValue(b, images, labels))).not.toEqual(Array.from(criticValue(a, images, labels)));
      b.setWeights(weights);
      expect(Array.from(criticValue(b, images, labels))).toEqual(Array.from(criticValue(a, images, labels)));
      a.dispose();
      b.dispose();
      tf.dispose([images, labels]);
    }
  });

  it('averages two clients with FedAvg into weights the model accepts', () => {
    const cfgs = [zooConfig(type, 'cgan', { seed: 1 }), zooConfig(type, 'cgan', { seed: 2 })];
    const [a, b] = cfgs.map(createGan);
    const [wa, wb] = [a.getWeights(), b.getWeights()];
    const avg = fedAvg([
      { weights: wa, examples: 1 },
      { weights: wb, examples: 3 },
    ]);
    expect(avg.fingerprint).toBe(a.fingerprint);
    avg.tensors.forEach((t, i) => {
      expect(t.name).toBe(wa.tensors[i].name);
      for (let j = 0; j < t.data.length; j += 7) expect(t.data[j]).toBeCloseTo((wa.tensors[i].data[j] + 3 * wb.tensors[i].data[j]) / 4, 6);
    });
    a.setWeights(avg);
    const { images, labels } = batch(5);
    expect(Array.from(criticValue(a, images, labels)).every(Number.isFinite)).toBe(true);
    a.dispose();
    b.dispose();
    tf.dispose([images, labels]);
  });
});

describe('the discriminator zoo', () => {
  it('gives each architecture its own fingerprint, and refuses weights of another', () => {
    for (const ganType of GAN_TYPES) {
      const gans = (['cnn', ...ZOO] as const).map((t) => createGan(zooConfig(t, ganType)));
      expect(new Set(gans.map((g) => g.fingerprint)).size).toBe(4);
      expect(() => gans[2].setWeights(gans[3].getWeights())).toThrow(/fingerprint .* does not match/);
      const bytes = encodeWeights(gans[1].getWeights());
      expect(() => decodeWeights(bytes, { expectedFingerprint: gans[2].fingerprint })).toThrow(/fingerprint/);
      gans.forEach((g) => g.dispose());
    }
  });

  it('lays out Swin stages by halving the grid while whole windows fit', () => {
    const layout = (imageSize: number, patchSize: number, windowSize: number, embedDim = 48, heads = 3) =>
      swinStages(parseGanConfig({ imageSize, discriminator: { type: 'swin', patchSize, windowSize, embedDim, heads } }));
    expect(layout(16, 4, 2, 16, 2)).toEqual([
      { grid: 4, dim: 16, heads: 2, window: 2, shift: 1 },
      { grid: 2, dim: 32, heads: 4, window: 2, shift: 0 },
    ]);
    expect(layout(64, 4, 4).map((s) => [s.grid, s.dim, s.heads, s.window, s.shift])).toEqual([
      [16, 48, 3, 4, 2],
      [8, 96, 6, 4, 2],
      [4, 192, 12, 4, 0],
    ]);
    expect(layout(256, 4, 4).length).toBe(4);
    // A grid smaller than the window: one window covering it, no shift.
    expect(layout(16, 8, 4)).toEqual([{ grid: 2, dim: 48, heads: 3, window: 2, shift: 0 }]);
    expect(() => layout(48, 4, 5)).toThrow(/discriminator\.windowSize.*must divide the swin patch grid 12/);
    const valid = parseGanConfig({ imageSize: 48, discriminator: { type: 'swin', patchSize: 4, windowSize: 4 } });
    const bad = { ...valid, discriminator: { ...valid.discriminator, windowSize: 5 } };
    expect(() => swinStages(bad)).toThrow(/discriminator\.windowSize 5 must divide the swin patch grid 12/);
  });
});
