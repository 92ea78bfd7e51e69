import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, openTestPage, type PageApi } from './harness.ts';
import type { Diff } from './page.ts';

// Each replaced kernel or fused op against stock tfjs-webgpu, float32, random inputs, in headless
// Chromium on SwiftShader WebGPU.
describe.skipIf(!hasChromium)('WebGPU kernels match stock tfjs', () => {
  let page: PageApi;
  beforeAll(async () => {
    page = await openTestPage();
  });
  afterAll(async () => {
    await page?.close();
  });

  const close = (d: Diff) => {
    expect(d.finite).toBe(true);
    expect(d.rel).toBeLessThan(1e-4);
    expect(d.maxRel).toBeLessThan(1e-4);
  };

  // [x shape, filter shape, stride, padding]: strides 1 and 2, same and valid, odd sizes, batch 1,
  // channel counts on and off multiples of 4 (vectorised and scalar variants), 1×1 to 5×5 filters.
  const convCases: [number[], number[], number, 'same' | 'valid'][] = [
    [[2, 8, 8, 4], [3, 3, 4, 8], 1, 'same'],
    [[1, 9, 7, 3], [3, 3, 3, 5], 2, 'same'],
    [[3, 6, 6, 8], [3, 3, 8, 4], 2, 'valid'],
    [[2, 5, 5, 6], [1, 1, 6, 7], 1, 'same'],
    [[1, 11, 13, 2], [5, 5, 2, 3], 1, 'same'],
    [[2, 10, 10, 16], [3, 3, 16, 12], 2, 'same'],
    [[1, 7, 7, 1], [2, 2, 1, 1], 1, 'valid'],
    [[4, 16, 16, 3], [3, 3, 3, 32], 2, 'same'],
    [[2, 4, 4, 32], [3, 3, 32, 64], 1, 'same'],
  ];
  it.each(convCases)('Conv2DBackpropFilter x%j filter%j stride %i %s', async (x, filter, stride, pad) => {
    close(await page.call<Diff>('backpropFilter', { x, filter, stride, pad, seed: x.length * 7 + filter[3] }));
  });

  // SwiftShader runs this barrier-synchronised kernel slowly: two shapes (stride 2 on odd sizes, and 'valid').
  it.each([convCases[1], convCases[2]])('Conv2DBackpropInput, tiled kernel (convTransposeMM option) x%j filter%j stride %i %s', async (x, filter, stride, pad) => {
    close(await page.call<Diff>('backpropInputTiled', { x, filter, stride, pad, seed: 17 }));
  });

  it.each([
    [[4, 6, 5, 3], [0, 1, 2]],
    [[4, 6, 5, 3], [3]],
    [[7, 9], [0]],
    [[2, 3, 4], [1, 2]],
    [[5], [0]],
  ])('Mean and Sum gradients without CPU ones: shape %j axes %j (first and second order)', async (shape, axes) => {
    const r = await page.call<{ mean: Diff; sum: Diff; second: Diff }>('reductionGradients', { shape, axes, seed: 3 });
    close(r.mean);
    close(r.sum);
    close(r.second);
  });

  it.each([
    [[2, 5, 5, 3], 0.2],
    [[7, 9], 0.01],
  ])('LeakyReLU gradient in one dispatch x%j α %d (first and second order)', async (shape, alpha) => {
    const r = await page.call<{ first: Diff; second: Diff }>('leakyReluGrad', { shape, alpha, seed: 5 });
    close(r.first);
    close(r.second);
  });

  it.each([
    [[4, 6, 5, 3], 0],
    [[2, 8, 8, 32], 0],
    [[1, 5, 7, 4], 0],
    [[3, 17], 0],
    [[2, 16, 16, 8], 50],
  ])('fused batch norm (training) x%j offset %d: y, mean, variance and gradients', async (shape, offset) => {
    const r = await page.call<Record<string, Diff>>('batchNorm', { shape, seed: 9, offset });
    for (const k of ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta']) {
      expect(r[k].finite, k).toBe(true);
      expect(r[k].rel, k).toBeLessThan(1e-4);
    }
  });

  it.each([
    [[2, 8, 8, 64], 0],
    [[3, 5, 7, 13], 0],
    [[65, 1], 0],
    [[4, 4, 4, 32], 50],
    [[1, 3, 3, 256], 0],
  ])('fused layer normalisation x%j offset %d: x̂, gradient, and second-order gradients (x, incoming gradient, γ)', async (shape, offset) => {
    const r = await page.call<Record<string, Diff>>('layerNorm', { shape, seed: 13, offset });
    for (const k of ['y', 'dx', 'ddx', 'ddg', 'dgamma']) {
      expect(r[k].finite, k).toBe(true);
      expect(r[k].rel, k).toBeLessThan(1e-4);
      expect(r[k].maxRel, k).toBeLessThan(1e-4);
    }
  });

  it.each([
    [[2, 9, 9, 3], [3, 3, 3, 8], 2, 0.2, true],
    [[3, 8, 8, 4], [3, 3, 4, 6], 1, null, true],
    [[1, 7, 5, 5], [3, 3, 5, 4], 2, null, false],
    [[2, 16, 16, 8], [3, 3, 8, 16], 2, 0.2, true],
    [[2, 6, 6, 4], [3, 3, 4, 4], 1, 0.01, false],
  ])('fused conv x%j filter %j stride %d LeakyReLU %j bias %j, and dense + bias: outputs, gradients, second order', async (x, filter, stride, alpha, bias) => {
    const r = await page.call<Record<string, Diff>>('fusedLayers', { x, filter, stride, alpha, bias, seed: 21 });
    for (const k of ['y', 'dx', 'dfilter', 'dbias', 'second', 'yd', 'ddx', 'dkernel', 'ddbias', 'dsecond']) {
      expect(r[k].finite, k).toBe(true);
      expect(r[k].rel, k).toBeLessThan(1e-4);
    }
  });

  it.each([
    [[2, 7, 9, 5], 0.25],
    [[1001], 0.5],
    [[3], 0.1],
  ])('fused dropout x%j rate %d: exactly x · mask of the same draw, gradient dy · mask, second order', async (shape, rate) => {
    const r = await page.call<{ y: number; dx: number; second: number }>('fusedDropoutCheck', { shape, rate, seed: 77, stream: 3 });
    expect(r.y).toBe(0);
    expect(r.dx).toBe(0);
    expect(r.second).toBeLessThan(1e-6);
  });

  it.each([
    [64, 2, 1],
    [7, 5, 3],
    [130, 2, 40],
    [1, 3, 1],
  ])('fused GAN losses, batch %d, %d classes, logits ×%d: BCE (both targets), softmax CE, gradients', async (b, k, scale) => {
    const r = await page.call<Record<string, Diff>>('fusedLossesCheck', { b, k, scale, seed: 31 });
    for (const key of ['bce1', 'bce0', 'ce', 'dx', 'dlogits']) {
      expect(r[key].finite, key).toBe(true);
      expect(r[key].rel, key).toBeLessThan(1e-4);
    }
  });

  it('fused moving-average update equals tfjs ops', async () => {
    close(await page.call<Diff>('movingAverageCheck', { n: 333, momentum: 0.8, seed: 4 }));
  });

  it('fused Adam follows tfjs Adam over several steps (variables and moments)', async () => {
    const r = await page.call<{ vars: Diff; moments: Diff; fused: boolean }>('adam', {
      shapes: [[3, 3, 4, 8], [8], [1], [17, 5]],
      steps: 4,
      lr: 2e-3,
      beta1: 0.5,
      beta2: 0.999,
      seed: 1,
      shareOne: false,
    });
    expect(r.fused).toBe(true);
    close(r.vars);
    close(r.moments);
  });

  it('fused Adam updates a variable with a live view out of place, leaving the view unchanged', async () => {
    const r = await page.call<{ vars: Diff; moments: Diff; fused: boolean }>('adam', { shapes: [[6, 5], [4]], steps: 3, lr: 1e-2, beta1: 0, beta2: 0.9, seed: 4, shareOne: true });
    close(r.vars);
    close(r.moments);
  });

  it('upload path: values read back exactly, shared constants survive, variables made from constants stay independent', async () => {
    const r = await page.call<{ ok: boolean; constantHits: number; details: string[] }>('uploads');
    expect(r.details).toEqual([]);
    expect(r.constantHits).toBeGreaterThan(0);
  });
});
