import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, hasChromium, openTestPage, type PageApi } from './harness.ts';
import type { Diff } from './gpChainPage.ts';

// Issue 19: WGAN-GP's gradient-penalty chain in fewer dispatches (shared/kernels/webgpu/gradientPenalty.ts,
// the one-dispatch Mean/Sum gradient broadcast of reductionGradients.ts, the transpose-free sums over
// leading axes of columnSum.ts, the embedding gradient of gatherGrad.ts, the layer norm's affine part and
// LeakyReLU of affineLeaky.ts), against stock tfjs in headless Chromium on SwiftShader WebGPU, float32,
// random inputs.
describe.skipIf(!hasChromium)('WGAN-GP penalty chain kernels match stock tfjs and take fewer dispatches', () => {
  let page: PageApi;
  beforeAll(async () => {
    page = await openTestPage();
  });
  afterAll(async () => {
    await page?.close();
  });

  const close = expectClose;

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

  it.each([
    [[2, 5, 3, 4], [0, 1, 2], 1],
    [[3, 4, 6], [0, 1], 1],
    [[300, 5], [0], 1 << 15],
    [[4, 33, 3, 2], [0, 1], 1 << 15],
  ])('sums over leading axes and Multiply\'s broadcast gradient without a transpose, first and second order: shape %j over axes %j, %i threads', async (shape, axes, threads) => {
    const r = await page.call<{ results: Record<string, Diff>; programs: string[]; slices: number }>('columnSumCheck', { shape, axes, threads, seed: shape[0] });
    for (const [name, d] of Object.entries(r.results)) close(d, name);
    // One dispatch, or row slices and their sum where many rows meet a large thread count.
    expect(r.slices).toBe(threads === 1 ? 1 : shape[0] === 300 ? 4 : 2);
    expect(r.programs).toContain('Sum:ColumnSum');
    expect(r.programs).toContain('FedganColumnSum:ColumnSum');
    expect(r.programs.filter((p) => p.startsWith('Sum:Transpose'))).toEqual([]);
  });

  it.each([
    [[2, 6], [1, 0, 1, 1]],
    [[5, 3, 4], [4, 0, 4, 2, 2, 4, 0]],
  ])('an embedding lookup\'s gradient in one dispatch, first order and through a penalty-like second order: table %j, indices %j', async (table, idx) => {
    const r = await page.call<{ results: Record<string, Diff>; programs: string[] }>('gatherGradCheck', { table, idx, seed: table[0] });
    close(r.results.first, 'first');
    close(r.results.second, 'second');
    expect(r.programs).toContain('GatherV2:Gather');
    expect(r.programs).toContain('FedganGatherRowsGrad:GatherRowsGrad');
    expect(r.programs.filter((p) => p.startsWith('UnsortedSegmentSum:') || p.startsWith('Transpose:'))).toEqual([]);
  });

  it.each([
    [[2, 5, 3, 4], 0.2, 1],
    [[4, 9, 7, 6], 0.01, 1 << 15],
  ])('a layer norm\'s affine part and LeakyReLU as one op: output, gradients and second order (γ and x): shape %j, α %d, %i threads', async (shape, alpha, threads) => {
    const r = await page.call<{ results: Record<string, Diff>; programs: string[] }>('affineLeakyCheck', { shape, alpha, threads, seed: shape[0] + 1 });
    for (const [name, d] of Object.entries(r.results)) close(d, name);
    expect(Object.keys(r.results)).toHaveLength(6);
    for (const k of ['FedganAffineLeaky:', 'FedganAffineLeakyGrad:', 'FedganMaskedColumnSum:']) expect(r.programs.some((p) => p.startsWith(k)), `${k} in ${r.programs}`).toBe(true);
    expect(r.programs.some((p) => p.startsWith('LeakyRelu:') || p.startsWith('Add:'))).toBe(false);
  });

  it('a tiny WGAN-GP critic: loss and every weight gradient (penalty included) equal with and without the penalty, column-sum and affine + LeakyReLU kernels', async () => {
    const r = await page.call<{ loss: Diff; grads: Diff; n: number }>('wganGpOptionGrads', { off: { penalty: false, columnSum: false, affineLeaky: false } });
    expect(r.n).toBeGreaterThan(1000);
    close(r.loss, 'loss');
    close(r.grads, 'gradients');
  });

  // Deterministic counts (one steady-state step of the tiny WGAN-GP of test/webgpu/gpChainPage.ts, on
  // SwiftShader): 463 dispatches before issue 19's penalty work; 336 with it. 435 with `penalty`,
  // `columnSum` and `affineLeaky` off (the Mean/Sum broadcast and the embedding gradient stay on under
  // `gradients`), 353 with `penalty: false` alone.
  it('a WGAN-GP step takes fewer dispatches with the fused penalty chain', async () => {
    type Step = { dispatches: number; kernels: Record<string, number> };
    const on = await page.call<Step>('wganGpStepDispatches', {});
    const off = await page.call<Step>('wganGpStepDispatches', { fast: { penalty: false, columnSum: false, affineLeaky: false } });
    const noPenalty = await page.call<Step>('wganGpStepDispatches', { fast: { penalty: false } });
    expect(on.dispatches).toBeLessThanOrEqual(336);
    expect(off.dispatches - on.dispatches).toBeGreaterThanOrEqual(99);
    expect(noPenalty.dispatches - on.dispatches).toBeGreaterThanOrEqual(17);
    expect(on.kernels['FedganGpNorms:Norms']).toBe(1);
    expect(on.kernels['FedganGatherRowsGrad:GatherRowsGrad']).toBe(3);
    expect(on.kernels['FedganAffineLeaky:Elementwise']).toBe(9);
    const gone = Object.keys(on.kernels).filter((k) => /^(Sqrt|Fill|UnsortedSegmentSum|Transpose|ZerosLike):|^Sum:Transpose/.test(k));
    expect(gone).toEqual([]);
  });
});
