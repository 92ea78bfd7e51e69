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

// One page (one Chromium) for the training checks and the recipe's (below, formerly
// test/webgpu/recipe.test.ts): the recipe's GANs are these tiny GANs with more ops, so their steps reuse
// the WebGPU pipelines the first describe compiled (SwiftShader compiles slowly) instead of compiling them
// again in a second browser. Each check trains its own GAN from its own seeds, as before.
let page: PageApi;
beforeAll(async () => {
  if (hasChromium) page = await openTestPage();
});
afterAll(async () => {
  await page?.close();
});

// A tiny GAN trained with the fast path on SwiftShader WebGPU: it learns (finite losses, weights move),
// leaks no tensors, and a steady-state step creates no GPU buffer and uploads no tensor data.
describe.skipIf(!hasChromium)('GAN training on the WebGPU fast path', () => {

  it.each(['acgan', 'wgan-gp'])('%s: trains; steady-state steps create no buffers and upload nothing', async (gan) => {
    const r = await page.call<TrainingResult>('training', { gan, steps: 2, countSteps: 2 });
    expect(r.losses.flat().every(Number.isFinite)).toBe(true);
    expect(r.moved).toBe(true);
    expect(r.leaked).toBe(0);
    expect(r.counts.buffersCreated).toBe(0);
    expect(r.counts.bytesUploaded).toBe(0);
    expect(r.counts.dispatches).toBeGreaterThan(0);
    // Submissions are batched: far fewer submits than dispatches.
    expect(r.counts.submits).toBeLessThan(r.counts.dispatches / 10);
    // The first call compiles every pipeline of a training step on SwiftShader: about 2 minutes on a busy
    // 2-core machine (120 s measured at load 17).
  }, 300_000);

  it.each(['acgan', 'wgan-gp'])('%s: the dispatch path (cached uniforms and bind groups) trains exactly as without it, with far fewer bind groups and uniform writes', async (gan) => {
    const r = await page.call<{
      on: { losses: number[][]; weights: number[]; counts: GpuCounts; stats: { dispatches: number; fallbacks: number; bindGroupHits: number; bindGroupsCreated: number; volatile: number; uniformHits: number; resets: number }; leaked: number };
      off: { losses: number[][]; weights: number[]; counts: GpuCounts };
    }>('dispatchPath', { gan, steps: 6, countSteps: 2 });
    // Same programs on the same data: bit-identical losses and weights.
    expect(r.on.losses).toEqual(r.off.losses);
    expect(r.on.weights.length).toBe(r.off.weights.length);
    expect(r.on.weights).toEqual(r.off.weights);
    expect(r.on.leaked).toBe(0);
    expect(r.on.counts.dispatches).toBe(r.off.counts.dispatches);
    expect(r.on.counts.buffersCreated).toBe(0);
    expect(r.on.stats.fallbacks).toBe(0);
    expect(r.on.stats.resets).toBe(0);
    // Without the caches every tfjs dispatch creates a bind group and writes its uniforms (fused Adam caches
    // its own bind groups either way). With them, in the steady state (the pools settle within a few steps), only the programs whose uniforms
    // change every call (random draws, dropout) still do: every other dispatch finds its bind group.
    expect(r.on.stats.volatile).toBeGreaterThan(0);
    expect(r.on.stats.bindGroupsCreated).toBe(r.on.stats.volatile);
    expect(r.on.stats.bindGroupHits).toBe(r.on.stats.dispatches - r.on.stats.volatile);
    expect(r.on.counts.bindGroups).toBe(r.on.stats.bindGroupsCreated);
    expect(r.on.counts.bindGroups).toBeLessThan(r.off.counts.bindGroups / 5);
    expect(r.on.counts.uniformBytesWritten).toBeLessThan(r.off.counts.uniformBytesWritten / 10);
  });

  it("dropout masks come from the trainer's seed: the same seed draws the same masks, another seed other masks (fast path enabled anew each time, as in two browsers)", async () => {
    type Masks = { seeds: (number | null)[]; masks: number[][]; fused: boolean };
    const a = await page.call<Masks>('dropoutMasks', { seed: 7 });
    const again = await page.call<Masks>('dropoutMasks', { seed: 7 });
    const b = await page.call<Masks>('dropoutMasks', { seed: 8 });
    expect(a.fused).toBe(true);
    // The discriminator's four dropouts in each of its passes.
    expect(a.masks.length).toBeGreaterThanOrEqual(8);
    expect(again).toEqual(a);
    b.masks.forEach((m, i) => {
      expect(m).toHaveLength(a.masks[i].length);
      expect(m).not.toEqual(a.masks[i]);
    });
    // Every mask drawn with a seed from the trainer (none left to the fast path's page-wide stream).
    expect(a.seeds.every((s) => Number.isInteger(s))).toBe(true);
    expect(b.seeds).toHaveLength(a.seeds.length);
    expect(b.seeds.filter((s, i) => s === a.seeds[i])).toEqual([]);
  });

  it('WebGL fallback: with the fast path installed, training on webgl uses tfjs ops and still learns', async () => {
    const r = await page.call<{ backend: string; losses: number[][]; moved: boolean; enabledAfter: boolean }>('webglFallback');
    expect(r.backend).toBe('webgl');
    expect(r.losses.flat().every(Number.isFinite)).toBe(true);
    expect(r.moved).toBe(true);
  });
});

const AUGMENT: GanConfigInput['augment'] = { policy: ['color', 'translation', 'cutout'] };

// The small-data recipe (DiffAugment, EMA, hinge, R1, spectral normalisation: docs/recipe.md) is made of ordinary tfjs ops: on the
// WebGPU fast path (SwiftShader here) a tiny GAN with every option on still trains, leaks no tensors,
// and its steady-state steps create no GPU buffer and upload nothing (the augmentation's index tensors are
// made once).
describe.skipIf(!hasChromium)('the small-data recipe on the WebGPU fast path', () => {

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
