import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GanConfigInput } from '../../shared/config/ganConfig.ts';
import type { GpuCounts } from '../../shared/kernels/webgpu/gpuCounters.ts';
import { hasChromium, openTestPage, type PageApi } from './harness.ts';

interface TrainingResult {
  losses: number[][];
  counts: GpuCounts;
  moved: boolean;
  leaked: number;
}

const AUGMENT: GanConfigInput['augment'] = { policy: ['color', 'translation', 'cutout'] };

// The small-data recipe (DiffAugment, EMA, hinge, R1, spectral normalisation: docs/recipe.md) is made of ordinary tfjs ops: on the
// WebGPU fast path (SwiftShader here) a tiny GAN with every option on still trains, leaks no tensors,
// and its steady-state steps create no GPU buffer and upload nothing (the augmentation's index tensors are
// made once).
describe.skipIf(!hasChromium)('the small-data recipe on the WebGPU fast path', () => {
  let page: PageApi;
  beforeAll(async () => {
    page = await openTestPage();
  });
  afterAll(async () => {
    await page?.close();
  });

  const cases: [string, GanConfigInput][] = [
    ['acgan', { gan: 'acgan', augment: AUGMENT, ema: { decay: 0.9 }, adversarialLoss: 'hinge', r1: { gamma: 1 } }],
    // Spectral normalisation in the discriminator: its W / σ(W) through the fused conv kernels, R1's and the
    // penalty's second order included.
    ['cgan', { gan: 'cgan', augment: AUGMENT, ema: { decay: 0.9 }, r1: { gamma: 1 }, discriminator: { baseChannels: 4, spectralNorm: true } }],
    ['wgan-gp', { gan: 'wgan-gp', augment: AUGMENT, ema: { decay: 0.9 }, discriminator: { baseChannels: 4, spectralNorm: true } }],
    // Batch norm: reals and fakes in two passes (R1 is refused with batch norm: parseGanConfig).
    ['acgan / resnet', { gan: 'acgan', augment: AUGMENT, ema: { decay: 0.9 }, adversarialLoss: 'hinge', discriminator: { type: 'resnet', baseChannels: 4 } }],
  ];
  it.each(cases)('%s with the recipe: trains; no leaks; steady-state steps create no buffers and upload nothing', async (_name, model) => {
    const r = await page.call<TrainingResult>('training', { gan: model.gan, steps: 2, countSteps: 2, model });
    expect(r.losses.flat().every(Number.isFinite)).toBe(true);
    expect(r.moved).toBe(true);
    expect(r.leaked).toBe(0);
    expect(r.counts.buffersCreated).toBe(0);
    expect(r.counts.bytesUploaded).toBe(0);
    expect(r.counts.dispatches).toBeGreaterThan(0);
  });
});
