import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, openTestPage, type PageApi } from './harness.ts';
import type { Diff } from './gpChainPage.ts';

// Issue 19: WGAN-GP's gradient-penalty chain in fewer dispatches (shared/kernels/webgpu/gradientPenalty.ts,
// the one-dispatch Mean/Sum gradient broadcast of reductionGradients.ts), against stock tfjs in headless
// Chromium on SwiftShader WebGPU, float32, random inputs.
describe.skipIf(!hasChromium)('WGAN-GP penalty chain kernels match stock tfjs and take fewer dispatches', () => {
  let page: PageApi;
  beforeAll(async () => {
    page = await openTestPage();
  });
  afterAll(async () => {
    await page?.close();
  });

  const close = (d: Diff, what: string) => {
    expect(d.finite, what).toBe(true);
    expect(d.maxRef, what).toBeGreaterThan(0);
    expect(d.rel, what).toBeLessThan(1e-4);
    expect(d.maxRel, what).toBeLessThan(1e-4);
  };

  it.each([
    [3, 8, 4, 10],
    [5, 7, 6, 1],
  ])('the fused penalty, its gradient (second order through a conv critic) and the interpolation: batch %i, %i px, %i channels, λ %i', async (batch, size, ch, lambda) => {
    const r = await page.call<{ results: Record<string, Diff>; programs: string[] }>('gpPenaltyCheck', { batch, size, ch, lambda, seed: batch * 3 + size });
    for (const [name, d] of Object.entries(r.results)) close(d, name);
    expect(Object.keys(r.results).sort()).toEqual(['dEps', 'dFake', 'dReal', 'dW', 'dg', 'interpolate', 'penalty', 'penaltyOfG'].sort());
    // This project's kernels ran, and none of tfjs's square roots did.
    for (const k of ['FedganGpInterpolate', 'FedganGpNorms', 'FedganGpPenalty', 'FedganGpPenaltyGrad', 'FedganGpNormsGrad']) expect(r.programs.some((p) => p.startsWith(`${k}:`)), `${k} in ${r.programs}`).toBe(true);
    expect(r.programs.some((p) => p.startsWith('Sqrt:'))).toBe(false);
  });

  it.each([
    [[2, 5, 3, 4], [0, 1, 2]],
    [[3, 4, 6], [1, 2]],
    [[7, 9], [0]],
  ])('Mean and Sum gradients as one broadcast dispatch, first and second order: shape %j over axes %j', async (shape, axes) => {
    const r = await page.call<{ results: Record<string, Diff>; programs: string[] }>('broadcastGradCheck', { shape, axes, seed: shape.length });
    for (const [name, d] of Object.entries(r.results)) close(d, name);
    expect(r.programs.some((p) => p.startsWith('FedganBroadcastDiv:'))).toBe(true);
    expect(r.programs.some((p) => p.startsWith('Fill:'))).toBe(false);
  });

  // Deterministic counts (one steady-state step of the tiny WGAN-GP of test/webgpu/gpChainPage.ts): 463
  // dispatches before issue 19's penalty work, measured on SwiftShader; 433 with it.
  it('a WGAN-GP step takes fewer dispatches with the fused penalty chain', async () => {
    const on = await page.call<{ dispatches: number; kernels: Record<string, number> }>('wganGpStepDispatches', {});
    const off = await page.call<{ dispatches: number; kernels: Record<string, number> }>('wganGpStepDispatches', { fast: { penalty: false } });
    expect(on.dispatches).toBeLessThanOrEqual(433);
    // 17 of the 30 are the penalty's (measured: 450 with `penalty: false`); the rest are the Mean/Sum gradients' fills.
    expect(off.dispatches - on.dispatches).toBeGreaterThanOrEqual(17);
    expect(on.kernels['FedganGpNorms:Norms']).toBe(1);
    expect(on.kernels['Sqrt:UnaryOp'] ?? 0).toBe(0);
    expect(on.kernels['Fill:Fill'] ?? 0).toBe(0);
  });
});
