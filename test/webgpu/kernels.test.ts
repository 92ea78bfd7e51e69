import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GanConfigInput } from '../../shared/config/ganConfig.ts';
import type { GpuCounts } from '../../shared/kernels/webgpu/gpuCounters.ts';
import { philoxHost, philoxKey, toUnit } from '../../shared/kernels/webgpu/philox.ts';
import type { AttentionCase, BlockCounts } from './attentionPage.ts';
import type { SubgroupCase, SubgroupDiff } from './subgroupPage.ts';
import { expectClose, hasChromium, openTestPage, type PageApi } from './harness.ts';
import type { ConvCase, ConvDiff, Diff } from './page.ts';

// One page (one Chromium) for every check of test/webgpu/page.ts, formerly seven files (kernels.test.ts,
// random.test.ts, gpChain.test.ts, attention.test.ts, training.test.ts, recipe.test.ts, convGemm.test.ts,
// in that order): each Chromium start, and each WebGPU pipeline SwiftShader compiles again in another
// browser (the stock convolutions, the tiny GANs' and WGAN-GP critics' layers and penalty), cost seconds.
// Every page function restores what it changes (fast path, flags, the tuner's choices), so the checks do
// not depend on each other; the tuner's check stays the last.
let page: PageApi;
beforeAll(async () => {
  if (hasChromium) page = await openTestPage();
});
afterAll(async () => {
  await page?.close();
});

// Each replaced kernel or fused op against stock tfjs-webgpu, float32, random inputs, in headless
// Chromium on SwiftShader WebGPU.
describe.skipIf(!hasChromium)('WebGPU kernels match stock tfjs', () => {

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

  // The generator's batch norm + LeakyReLU (shared/nn/layers.ts applyLeaky): α 0.2 as the generator, 0
  // (ReLU: the gradient is 0 where the output is 0), 1 (identity); an offset that leaves most of a channel
  // negative before β, and a shape with partial splits. The fast path's device binds 9 storage buffers
  // per stage or more (webgpuDevice.ts asks for the adapter's limit), so the activation and its gradient
  // cost no dispatch: the same programs as the batch norm alone.
  type BnResult = Record<string, Diff> & { programs: string[]; programsWithoutActivation: number; storageBuffers: number };
  it.each([
    [[4, 6, 5, 3], 0, 0.2],
    [[2, 8, 8, 32], 0, 0.2],
    [[3, 17], 0, 0],
    [[2, 16, 16, 8], 50, 0.2],
    [[5, 7, 7, 6], 0, 1],
  ])('fused batch norm + LeakyReLU x%j offset %d α %d: y, statistics and gradients as tfjs ops, in the batch norm\'s own dispatches', async (shape, offset, alpha) => {
    const r = await page.call<BnResult>('batchNorm', { shape, seed: 19, offset, alpha });
    for (const k of ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta']) expectClose(r[k], k);
    expect(r.storageBuffers).toBeGreaterThanOrEqual(9);
    expect(r.programs).toEqual(expect.arrayContaining(['fedganBnNormalize_true', 'fedganBnGradPartial_true', 'fedganBnGradInput_true']));
    expect(r.programs.filter((k) => /_false$|leaky|relu/i.test(k))).toEqual([]);
    expect(r.programs.length).toBe(r.programsWithoutActivation);
  });

  it("a generator's output and every weight gradient: batch-norm kernels with the LeakyReLU fused, against tfjs ops", async () => {
    const r = await page.call<{ y: Diff; grads: Diff; n: number; programs: string[] }>('generatorBatchNorm', { imageSize: 16, batch: 4, channels: 16 });
    expect(r.n).toBeGreaterThan(1000);
    expectClose(r.y, 'G(z)');
    expectClose(r.grads, 'generator weight gradients');
    // Three batch norms, each applied twice (output, then under the gradient tape), and three gradients.
    expect(r.programs.filter((k) => k === 'fedganBnNormalize_true')).toHaveLength(6);
    expect(r.programs.filter((k) => k === 'fedganBnGradInput_true')).toHaveLength(3);
  });

  // A device with WebGPU's default of 8 storage buffers per stage: the masked gradient is one dispatch of
  // its own (the fused input gradient would bind 9), the forward stays fused.
  it.each([
    [[4, 6, 5, 3], 0, 0.2],
    [[2, 16, 16, 8], 50, 0.2],
  ])('fused batch norm + LeakyReLU x%j offset %d α %d on a device of 8 storage buffers per stage: one mask dispatch more', async (shape, offset, alpha) => {
    const r = await page.call<BnResult>('batchNorm', { shape, seed: 23, offset, alpha, storageBuffers: 8 });
    for (const k of ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta']) expectClose(r[k], k);
    expect(r.programs).toEqual(expect.arrayContaining(['fedganBnNormalize_true', 'fedganBnLeakyMask', 'fedganBnGradPartial_false', 'fedganBnGradInput_false']));
    expect(r.programs.filter((k) => /_true$/.test(k))).toEqual(['fedganBnNormalize_true', 'fedganBnNormalize_true']);
    expect(r.programs.length).toBe(r.programsWithoutActivation + 1);
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

/** Kolmogorov–Smirnov statistic of a sample against a CDF. */
function ks(sample: number[], cdf: (x: number) => number): number {
  const s = [...sample].sort((a, b) => a - b);
  let d = 0;
  for (let i = 0; i < s.length; i++) {
    const f = cdf(s[i]);
    d = Math.max(d, Math.abs(f - i / s.length), Math.abs((i + 1) / s.length - f));
  }
  return d;
}
/** Standard normal CDF (Abramowitz–Stegun 7.1.26 erf, |error| < 1.5e-7). */
function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
  return 0.5 * (1 + Math.sign(x) * erf);
}
const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
const variance = (a: number[]) => {
  const m = mean(a);
  return a.reduce((s, x) => s + (x - m) ** 2, 0) / (a.length - 1);
};
// KS critical value at α = 0.001: 1.95/√n.
const ksLimit = (n: number) => 1.95 / Math.sqrt(n);

describe.skipIf(!hasChromium)('GPU Philox random numbers', () => {
  const draw = (kind: string, n: number, a: number, b: number, seed: number, stream = 0) => page.call<number[]>('draw', { kind, n, a, b, seed, stream });

  it('the WGSL generator matches the host reference bit for bit (top 24 bits of every word)', async () => {
    const seed = 12345;
    const stream = 7;
    const n = 4 * 300 + 3; // a partial last block
    const got = await draw('uniform', n, 0, 1, seed, stream);
    const key = philoxKey(seed);
    const want: number[] = [];
    for (let block = 0; want.length < n; block++) want.push(...philoxHost([block, stream, 0, 0], key).map(toUnit));
    expect(got).toEqual(want.slice(0, n));
  });

  it('the host reference reproduces the Philox4x32-10 known-answer vectors (Random123)', () => {
    expect(philoxHost([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    expect(philoxHost([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])).toEqual([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    expect(philoxHost([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])).toEqual([0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
  });

  it('uniform: range, mean, variance and KS against U(a, b)', async () => {
    const n = 40000;
    const u = await draw('uniform', n, -2, 3, 99);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u)).toBeLessThan(3);
    expect(Math.abs(mean(u) - 0.5)).toBeLessThan(4 * Math.sqrt(25 / 12 / n));
    expect(Math.abs(variance(u) / (25 / 12) - 1)).toBeLessThan(0.03);
    expect(ks(u, (x) => (x + 2) / 5)).toBeLessThan(ksLimit(n));
  });

  it('normal: mean, standard deviation and KS against N(μ, σ²); no infinities', async () => {
    const n = 40000;
    const z = await draw('normal', n, 1.5, 2, 7);
    expect(z.every(Number.isFinite)).toBe(true);
    expect(Math.abs(mean(z) - 1.5)).toBeLessThan(4 * (2 / Math.sqrt(n)));
    expect(Math.abs(Math.sqrt(variance(z)) / 2 - 1)).toBeLessThan(0.03);
    expect(ks(z, (x) => normalCdf((x - 1.5) / 2))).toBeLessThan(ksLimit(n));
  });

  it('uniform integers: only values in [min, max), each about equally often (χ²)', async () => {
    const n = 30000;
    const k = 5;
    const v = await draw('int', n, 0, k, 3);
    const counts = new Array(k).fill(0);
    for (const x of v) {
      expect(Number.isInteger(x) && x >= 0 && x < k).toBe(true);
      counts[x]++;
    }
    const chi2 = counts.reduce((s, c) => s + (c - n / k) ** 2 / (n / k), 0);
    expect(chi2).toBeLessThan(18.47); // χ²(4 dof) at α = 0.001
  });

  it('dropout masks: values 0 or 1/(1 − rate), kept with probability 1 − rate', async () => {
    const n = 40000;
    const rate = 0.25;
    const m = await draw('dropout', n, rate, 0, 21);
    const kept = m.filter((x) => x !== 0);
    expect(kept.every((x) => Math.abs(x - 1 / (1 - rate)) < 1e-6)).toBe(true);
    const p = kept.length / n;
    expect(Math.abs(p - 0.75)).toBeLessThan(4 * Math.sqrt((0.75 * 0.25) / n));
  });

  it('seeded and reproducible: same (seed, stream) gives the same numbers, other seeds or streams do not', async () => {
    const a = await draw('normal', 1000, 0, 1, 5, 1);
    const b = await draw('normal', 1000, 0, 1, 5, 1);
    const c = await draw('normal', 1000, 0, 1, 6, 1);
    const d = await draw('normal', 1000, 0, 1, 5, 2);
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    expect(d).not.toEqual(a);
    // Different streams are uncorrelated.
    const ma = mean(a);
    const md = mean(d);
    let cov = 0;
    for (let i = 0; i < a.length; i++) cov += (a[i] - ma) * (d[i] - md);
    const corr = cov / (a.length - 1) / Math.sqrt(variance(a) * variance(d));
    expect(Math.abs(corr)).toBeLessThan(0.13);
  });
});

// Issue 19: WGAN-GP's gradient-penalty chain in fewer dispatches (shared/kernels/webgpu/gradientPenalty.ts,
// the one-dispatch Mean/Sum gradient broadcast of reductionGradients.ts, the transpose-free sums over
// leading axes of columnSum.ts, the embedding gradient of gatherGrad.ts, the layer norm's affine part and
// LeakyReLU of affineLeaky.ts), against stock tfjs in headless Chromium on SwiftShader WebGPU, float32,
// random inputs.
describe.skipIf(!hasChromium)('WGAN-GP penalty chain kernels match stock tfjs and take fewer dispatches', () => {

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
  // SwiftShader): 463 dispatches before issue 19's penalty work; 336 with it; 327 with the generator's
  // LeakyReLU inside its batch norms' kernels (6 forward and 3 gradient dispatches fewer). 435 with
  // `penalty`, `columnSum` and `affineLeaky` off (the Mean/Sum broadcast and the embedding gradient stay on
  // under `gradients`), 353 with `penalty: false` alone.
  it('a WGAN-GP step takes fewer dispatches with the fused penalty chain', async () => {
    type Step = { dispatches: number; kernels: Record<string, number> };
    const on = await page.call<Step>('wganGpStepDispatches', {});
    const off = await page.call<Step>('wganGpStepDispatches', { fast: { penalty: false, columnSum: false, affineLeaky: false } });
    const noPenalty = await page.call<Step>('wganGpStepDispatches', { fast: { penalty: false } });
    expect(on.dispatches).toBeLessThanOrEqual(327);
    expect(off.dispatches - on.dispatches).toBeGreaterThanOrEqual(99);
    expect(noPenalty.dispatches - on.dispatches).toBeGreaterThanOrEqual(17);
    expect(on.kernels['FedganGpNorms:Norms']).toBe(1);
    expect(on.kernels['FedganGatherRowsGrad:GatherRowsGrad']).toBe(3);
    expect(on.kernels['FedganAffineLeaky:Elementwise']).toBe(9);
    // The generator's LeakyReLUs run in its batch norms' programs (wide path: no mask dispatch).
    expect(on.kernels['FedganBatchNormTrain:Normalize']).toBe(6);
    expect(on.kernels['FedganBatchNormTrainGrad:GradInput']).toBe(3);
    const gone = Object.keys(on.kernels).filter((k) => /^(Sqrt|Fill|UnsortedSegmentSum|Transpose|ZerosLike|LeakyRelu):|^Sum:Transpose|LeakyMask/.test(k));
    expect(gone).toEqual([]);
  });
});

// The fused softmax attention (shared/kernels/webgpu/fusedAttention.ts) against the tfjs composition on
// webgpu, float32, in headless Chromium on SwiftShader: output, first-order gradients (q, k, v, bias) and
// second order (a penalty on the first-order gradients, as WGAN-GP), at the ViT and Swin discriminators'
// shapes (head width 24); a tiny WGAN-GP critic of each kind; and the dispatches of one attention layer.
describe.skipIf(!hasChromium)('fused softmax attention matches the tfjs composition', () => {

  const close = expectClose;

  const cases: [string, Omit<AttentionCase, 'seed'>][] = [
    // ViT at 32 px (patch 8): 16 patches + the class token, 4 heads of 24.
    ['ViT 32 px: 17 tokens, 4 heads of 24', { b: 2, n: 17, heads: 4, d: 24, bias: 'none' }],
    // Swin at 64 px (patch 8, window 4): 4 windows of 16 tokens per image, relative-position bias; the
    // shifted blocks add the wrap-around mask.
    ['Swin W-MSA: windows of 16 tokens, 4 heads of 24, bias', { b: 2, n: 16, heads: 4, d: 24, bias: 'shared' }],
    ['Swin SW-MSA: 4 windows, bias + shifted-window mask', { b: 4, n: 16, heads: 4, d: 24, bias: 'shared', maskGrid: 8 }],
    // Differentially private training: one bias per example (2 examples), odd sizes.
    ['per-example bias + mask, 3 heads of 5', { b: 4, n: 16, heads: 3, d: 5, bias: 'perExample', maskGrid: 8 }],
  ];

  it.each(cases)('%s: output, gradients and second order', async (_, c) => {
    const r = await page.call<{ diffs: Record<string, Diff>; programs: string[] }>('attentionFused', { ...c, seed: c.n + c.b });
    const keys = ['y', 'dq', 'dk', 'dv', 'ddq', 'ddk', 'ddv', ...(c.bias !== 'none' ? ['dbias', 'ddbias'] : [])];
    console.log(JSON.stringify(r.diffs));
    expect(Object.keys(r.diffs).sort()).toEqual([...keys].sort());
    for (const k of keys) close(r.diffs[k], k);
    // The fused forward, statistics, dq, dk and dv programs ran (and the bias gradient's where there is a
    // bias), and the second order ran in the fused VJP's programs.
    const modes = ['forward', 'stats', 'dq', 'dk', 'dv', ...(c.bias !== 'none' ? ['dbias'] : [])];
    for (const m of modes) expect(r.programs.some((p) => p.startsWith(`fedganAttention_${m}_d${c.d}`)), `${m}: ${r.programs}`).toBe(true);
    const vjp = ['stats', 'gq', 'gdy', 'gk', 'gv', ...(c.bias !== 'none' ? ['gbias'] : [])];
    for (const m of vjp) expect(r.programs.some((p) => p.startsWith(`fedganAttentionVjp_${m}_d${c.d}_abc`)), `vjp ${m}: ${r.programs}`).toBe(true);
    if (c.bias !== 'none') expect(r.programs.some((p) => p.startsWith(`fedganAttentionVjp_gbias_d${c.d}_e`)), `vjp of the bias gradient: ${r.programs}`).toBe(true);
  });

  it.each([
    ['vit', { type: 'vit', patchSize: 4, embedDim: 16, heads: 2, depth: 2 }, 16],
    // 8×8 patch grid, windows of 4: stage 1 with shifted windows (mask), stage 2 one window.
    ['swin', { type: 'swin', patchSize: 2, embedDim: 16, heads: 2, depth: 2, windowSize: 4 }, 16],
  ] as const)('a tiny WGAN-GP %s critic: loss and every weight gradient (penalty included) equal with and without the fused attention', async (name, discriminator, imageSize) => {
    const r = await page.call<{ loss: Diff; grads: Diff; n: number; programs: string[] }>('wganGpAttention', { discriminator, imageSize, batch: 2 });
    expect(r.n).toBeGreaterThan(1000);
    close(r.loss, `${name} loss`);
    close(r.grads, `${name} gradients`);
    expect(r.programs.some((p) => p.startsWith('fedganAttention_forward')), `${r.programs}`).toBe(true);
    expect(r.programs.some((p) => p.startsWith('fedganAttention_dq')), `${r.programs}`).toBe(true);
    expect(r.programs.some((p) => p.startsWith('fedganAttentionVjp_gq')), `${r.programs}`).toBe(true);
  });

  it('dispatches of one attention layer (ViT 32 px shape), fused against the tfjs composition', async () => {
    const r = await page.call<{ on: BlockCounts; off: BlockCounts }>('attentionDispatches', { b: 2, n: 17, heads: 4, d: 24, bias: 'none', seed: 3 });
    console.log(`attention layer dispatches (tfjs → fused): forward ${r.off.forward} → ${r.on.forward}, forward+backward ${r.off.backward} → ${r.on.backward}, second order ${r.off.secondOrder} → ${r.on.secondOrder}`);
    // Forward: 3 head splits, 2 matMuls, softmax and the merge become one dispatch.
    expect(r.off.forward - r.on.forward).toBeGreaterThanOrEqual(5);
    expect(r.on.backward).toBeLessThan(r.off.backward);
    // Second order: the VJP kernels (2 packing concats + 5 dispatches) instead of ~50 tfjs ops.
    expect(r.off.secondOrder - r.on.secondOrder).toBeGreaterThanOrEqual(30);
  });
});

interface TrainingResult {
  losses: number[][];
  counts: GpuCounts;
  moved: boolean;
  leaked: number;
}

/** A tiny GAN's run on the fast path learned (finite losses, weights moved), leaked nothing, and its steady-state steps created no buffer and uploaded nothing. */
function expectCleanTraining(r: TrainingResult): void {
  expect(r.losses.flat().every(Number.isFinite)).toBe(true);
  expect(r.moved).toBe(true);
  expect(r.leaked).toBe(0);
  expect(r.counts.buffersCreated).toBe(0);
  expect(r.counts.bytesUploaded).toBe(0);
  expect(r.counts.dispatches).toBeGreaterThan(0);
}

// A tiny GAN trained with the fast path on SwiftShader WebGPU: it learns (finite losses, weights move),
// leaks no tensors, and a steady-state step creates no GPU buffer and uploads no tensor data.
describe.skipIf(!hasChromium)('GAN training on the WebGPU fast path', () => {

  it.each(['acgan', 'wgan-gp'])('%s: trains; steady-state steps create no buffers and upload nothing', async (gan) => {
    const r = await page.call<TrainingResult>('training', { gan, steps: 2, countSteps: 2 });
    expectCleanTraining(r);
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

// The small-data recipe (DiffAugment, EMA, hinge, R1, spectral normalisation, bilinear upsampling, minibatch standard deviation, mode seeking: docs/recipe.md) is made of ordinary tfjs ops: on the
// WebGPU fast path (SwiftShader here) a tiny GAN with every option on still trains, leaks no tensors,
// and its steady-state steps create no GPU buffer and upload nothing (the augmentation's index tensors are
// made once).
describe.skipIf(!hasChromium)('the small-data recipe on the WebGPU fast path', () => {

  const cases: [string, GanConfigInput][] = [
    // With the generator's bilinear upsampling (two matrix products with kept interpolation matrices).
    ['acgan', { gan: 'acgan', augment: AUGMENT, ema: { decay: 0.9 }, adversarialLoss: 'hinge', r1: { gamma: 1 }, generator: { baseChannels: 8, upsample: 'bilinear' } }],
    // Spectral normalisation in the discriminator: its W / σ(W) through the fused conv kernels, R1's and the
    // penalty's second order included.
    // Mode seeking too: the fake labels paired on the device, the term in the generator's loss.
    ['cgan', { gan: 'cgan', augment: AUGMENT, ema: { decay: 0.9 }, r1: { gamma: 1 }, modeSeeking: { lambda: 1 }, discriminator: { baseChannels: 4, spectralNorm: true } }],
    // With minibatch standard deviation and mode seeking too: reals and fakes in two passes, the penalty's second order through the batch statistic.
    ['wgan-gp', { gan: 'wgan-gp', augment: AUGMENT, ema: { decay: 0.9 }, modeSeeking: { lambda: 1 }, discriminator: { baseChannels: 4, spectralNorm: true, minibatchStd: true } }],
    // Batch norm: reals and fakes in two passes (R1 is refused with batch norm: parseGanConfig).
    ['acgan / resnet', { gan: 'acgan', augment: AUGMENT, ema: { decay: 0.9 }, adversarialLoss: 'hinge', discriminator: { type: 'resnet', baseChannels: 4 } }],
  ];
  it.each(cases)('%s with the recipe: trains; no leaks; steady-state steps create no buffers and upload nothing', async (_name, model) => {
    const r = await page.call<TrainingResult>('training', { gan: model.gan, steps: 2, countSteps: 2, model });
    expectCleanTraining(r);
  });
});

// The implicit-GEMM convolutions' subgroup variant (shared/kernels/webgpu/convGemm.ts, subgroupCode), on
// SwiftShader's `subgroups` (subgroup size 4, fixed): the page's device must have the feature, so these
// cannot skip the variant; every pass against stock tfjs-webgpu and direct loops on the host, second order,
// the program that ran, the modules' validation, the `enable` hoisting and both fallbacks.
describe.skipIf(!hasChromium)('subgroup variant of the implicit-GEMM convolutions (SwiftShader subgroups)', () => {
  // Against stock tfjs and the host's loops, computed by the subgroup program for the page's fixed
  // subgroup size, which compiled cleanly.
  const checked = (d: SubgroupDiff, program: string, tile: string, what: string) => {
    const lanes = d.lanes;
    expect(lanes, what).toBeGreaterThan(0);
    expectClose(d, `${what} vs stock`);
    expectClose(d.host, `${what} vs host loops`);
    expect(d.validation, what).toBeNull();
    expect(d.compileErrors, what).toEqual([]);
    expect(d.programs.some((k) => k.startsWith(`fedganConvGemm_${program}_${tile}l${lanes}_`)), `${what}: ${d.programs}`).toBe(true);
    expect(d.programs.every((k) => k.startsWith(`fedganConvGemm_${program}_${tile}l${lanes}_`) || k.startsWith('fedganSumSlices')), `${what}: ${d.programs}`).toBe(true);
  };

  it("the page's device has subgroups with a fixed size; the fast path offers the subgroup tiles and hoists directives only while enabled", async () => {
    const r = await page.call<{ registered: boolean; adapterHas: boolean; deviceHas: boolean; minSize: number; maxSize: number; lanes: number; candidates: string[]; lanesWhileEnabled: number; lanesAfter: number; hoistingWhileEnabled: boolean; hoistingAfter: boolean }>('subgroupDevice');
    expect(r.registered).toBe(true);
    expect(r.adapterHas).toBe(true);
    expect(r.deviceHas).toBe(true);
    expect(r.minSize).toBeGreaterThan(0);
    expect(r.maxSize).toBe(r.minSize);
    expect(r.lanes).toBe(r.minSize);
    const lanes = r.lanes;
    expect(r.lanesWhileEnabled).toBe(lanes);
    expect(r.candidates).toContain('t32x32');
    const sg = r.candidates.filter((c) => c.startsWith('sg'));
    expect(sg.map((c) => c.split(':')[0])).toEqual(['sg4x4', 'sg8x4']);
    for (const c of sg) expect(c.split(':')[1].split('x').map(Number).reduce((a, b) => a * b), c).toBe(lanes);
    expect(r.hoistingWhileEnabled).toBe(true);
    expect(r.lanesAfter).toBe(0);
    expect(r.hoistingAfter).toBe(false);
  });

  it('enable hoisting: a module with `enable subgroups;` after declarations fails as written and compiles hoisted', async () => {
    const r = await page.call<{ raw: string[]; hoisted: string[]; pipeline: string | null }>('hoistedModule');
    expect(r.raw.length).toBeGreaterThan(0);
    expect(r.hoisted).toEqual([]);
    expect(r.pipeline).toBeNull();
  });

  // [x, filter, stride, pad, subgroup tile]: partial tiles in M, N and K, channels on and off multiples of
  // 4 (vec4 and scalar loads), strides 1 and 2, odd sizes, batch 1, a filter gradient in several slices.
  type Shape = [SubgroupCase['x'], SubgroupCase['filter'], number, 'same' | 'valid', string];
  const shapes: Shape[] = [
    [[2, 8, 8, 4], [3, 3, 4, 8], 1, 'same', 'sg4x4'],
    [[1, 9, 7, 3], [3, 3, 3, 5], 2, 'same', 'sg8x4'],
    [[3, 6, 6, 8], [3, 3, 8, 4], 2, 'valid', 'sg4x4'],
    [[1, 11, 13, 2], [5, 5, 2, 3], 1, 'same', 'sg4x4'],
    [[2, 10, 10, 16], [3, 3, 16, 12], 2, 'same', 'sg8x4'],
  ];
  const passes: SubgroupCase['pass'][] = ['forward', 'inputGrad', 'filterGrad'];

  it.each(shapes)(`${passes.join(', ')}: x%j filter%j stride %i %s tile %s`, async (x, filter, stride, pad, tile) => {
    const r = await page.call<Record<string, SubgroupDiff>>('subgroupConvPasses', { passes, x, filter, stride, pad, tile, seed: x[3] * 5 + filter[0] });
    for (const p of passes) checked(r[p], p, tile, p);
  });

  it('the filter gradient in several slices sums them (second dispatch)', async () => {
    const d = await page.call<SubgroupDiff>('subgroupConv', { pass: 'filterGrad', x: [4, 16, 16, 3], filter: [3, 3, 3, 32], stride: 2, pad: 'same', tile: 'sg4x4', seed: 9 });
    checked(d, 'filterGrad', 'sg4x4', 'filterGrad');
    expect(d.programs.some((k) => k.startsWith('fedganSumSlices')), `${d.programs}`).toBe(true);
  });

  it('FusedConv2D: bias + linear, LeakyReLU, relu and sigmoid in the subgroup epilogue', async () => {
    for (const [activation, alpha] of [['linear', 0], ['leakyrelu', 0.2], ['relu', 0], ['sigmoid', 0]] as const) {
      const d = await page.call<SubgroupDiff>('subgroupConv', { pass: 'fused', x: [2, 7, 7, 4], filter: [3, 3, 4, 6], stride: 2, pad: 'same', tile: 'sg4x4', activation, alpha, seed: 3 });
      checked(d, 'forward', 'sg4x4', activation);
      expect(d.programs.every((k) => k.includes(`_b${activation}_`)), `${d.programs}`).toBe(true);
    }
  });

  it.each([
    [[2, 8, 8, 4], [3, 3, 4, 8], 2, 'same', 'sg4x4'],
    [[1, 7, 5, 3], [3, 3, 3, 6], 1, 'same', 'sg8x4'],
  ] as Shape[])('second order through the subgroup convolutions (with respect to W and to x): x%j filter%j stride %i %s tile %s', async (x, filter, stride, pad, tile) => {
    const r = await page.call<{ dW: Diff; dx: Diff; programs: string[]; lanes: number; validation: string | null }>('subgroupSecondOrder', { pass: 'forward', x, filter, stride, pad, tile, seed: 41 });
    const lanes = r.lanes;
    expect(lanes).toBeGreaterThan(0);
    expectClose(r.dW, 'dW');
    expectClose(r.dx, 'dx');
    expect(r.validation).toBeNull();
    for (const p of passes) expect(r.programs.some((k) => k.startsWith(`fedganConvGemm_${p}_${tile}l${lanes}_`)), `${p}: ${r.programs}`).toBe(true);
  });

  it("the in-shader fallback (a workgroup that is not one whole subgroup: every lane reads its own operands) gives the same results", async () => {
    const r = await page.call<Record<string, SubgroupDiff>>('subgroupConvPasses', { passes, x: [1, 9, 7, 3], filter: [3, 3, 3, 5], stride: 2, pad: 'same', tile: 'sg8x4', seed: 17, fallback: true });
    for (const p of passes) checked(r[p], p, 'sg8x4', `${p} (fallback)`);
  });

  it('the tuner times the subgroup configurations too where the feature check passes, and the kernels then use its choice', async () => {
    const g = { batch: 2, inH: 16, inW: 16, inC: 4, outH: 8, outW: 8, outC: 8, kH: 3, kW: 3, strideH: 2, strideW: 2, padTop: 0, padLeft: 0 };
    const r = await page.call<{ lanes: number; results: { shape: string; times: Record<string, number>; chosen: string }[]; chosenAfter: string[] }>('subgroupTune', { shapes: [{ mode: 'forward', g }], reps: 1 });
    expect(r.lanes).toBeGreaterThan(0);
    const timed = Object.entries(r.results[0].times);
    expect(timed.map(([k]) => k)).toEqual(expect.arrayContaining(['t32x32', 'sg4x4', 'sg8x4']));
    expect(timed.every(([, ms]) => ms > 0)).toBe(true);
    expect(r.results[0].chosen).toBe(timed.sort((a, b) => a[1] - b[1])[0][0]);
    expect(r.chosenAfter[0]).toBe(r.results[0].chosen);
  });

  it('with the feature check failing, a forced subgroup tile runs the shared-memory kernels', async () => {
    const r = await page.call<Record<string, SubgroupDiff>>('subgroupConvPasses', { passes, x: [2, 8, 8, 4], filter: [3, 3, 4, 8], stride: 1, pad: 'same', tile: 'sg4x4', seed: 23, subgroups: false });
    for (const p of passes) {
      expect(r[p].lanes, p).toBe(0);
      expectClose(r[p], `${p} vs stock`);
      expectClose(r[p].host, `${p} vs host loops`);
      expect(r[p].programs.length, p).toBeGreaterThan(0);
      expect(r[p].programs.every((k) => k.startsWith(`fedganConvGemm_${p}_t`) || k.startsWith('fedganSumSlices')), `${p}: ${r[p].programs}`).toBe(true);
    }
  });
});

// This project's implicit-GEMM convolutions (shared/kernels/webgpu/convGemm.ts) against stock
// tfjs-webgpu and against direct loops on the host, float32, random inputs, in headless Chromium on
// SwiftShader WebGPU. Shapes are small (SwiftShader compiles and runs these kernels slowly) but cover
// every tile configuration, partial tiles in M, N and K, channels on and off multiples of 4 (vec4 and
// scalar loads), odd sizes, batch 1, strides 1, 2 and 4 (every stride phase of the input gradient),
// 'same' and 'valid', 1×1 to 5×5 filters.
describe.skipIf(!hasChromium)('implicit-GEMM convolution kernels match stock tfjs', () => {

  const close = expectClose;
  // Against stock tfjs and against the host's loops, computed by this project's program.
  const checked = (d: ConvDiff, program: string, what: string) => {
    close(d, `${what} vs stock`);
    close(d.host, `${what} vs host loops`);
    expect(d.programs.length, what).toBeGreaterThan(0);
    expect(d.programs.every((k) => k.startsWith(`fedganConvGemm_${program}_`) || k.startsWith('fedganSumSlices')), `${what}: ${d.programs}`).toBe(true);
  };

  // [x, filter, stride, pad, tile (null: the heuristic's)]
  type Shape = [ConvCase['x'], ConvCase['filter'], number, 'same' | 'valid', string | null];
  const shapes: Shape[] = [
    [[2, 8, 8, 4], [3, 3, 4, 8], 1, 'same', 't64x64'],
    [[1, 9, 7, 3], [3, 3, 3, 5], 2, 'same', 't32x32'],
    [[3, 6, 6, 8], [3, 3, 8, 4], 2, 'valid', 't128x16'],
    [[2, 5, 5, 6], [1, 1, 6, 7], 1, 'same', 't64x32'],
    [[1, 11, 13, 2], [5, 5, 2, 3], 1, 'same', 't128x64'],
    [[2, 10, 10, 16], [3, 3, 16, 12], 2, 'same', 't128x128'],
    [[2, 8, 8, 3], [4, 4, 3, 8], 4, 'valid', null],
    [[1, 4, 4, 36], [3, 3, 36, 68], 1, 'same', null],
  ];
  const passes: ConvCase['pass'][] = ['forward', 'inputGrad', 'filterGrad'];

  it.each(shapes)(`${passes.join(', ')}: x%j filter%j stride %i %s tile %s`, async (x, filter, stride, pad, tile) => {
    const r = await page.call<Record<string, ConvDiff>>('convGemmPasses', { passes, x, filter, stride, pad, tile, seed: x[3] * 7 + filter[0] });
    for (const p of passes) checked(r[p], p, p);
  });

  it('FusedConv2D: bias + linear, LeakyReLU, relu and sigmoid in the epilogue', async () => {
    for (const [activation, alpha] of [['linear', 0], ['leakyrelu', 0.2], ['relu', 0], ['sigmoid', 0]] as const) {
      const d = await page.call<ConvDiff>('convGemm', { pass: 'fused', x: [2, 7, 7, 4], filter: [3, 3, 4, 6], stride: 2, pad: 'same', tile: 't32x32', activation, alpha, seed: 3 });
      checked(d, 'forward', activation);
    }
  });

  // WGAN-GP's penalty differentiates the input gradient again: Conv2DBackpropInput's own gradients are
  // Conv2D and Conv2DBackpropFilter, so all three kernels run in the second-order pass.
  it.each([
    [[2, 8, 8, 4], [3, 3, 4, 8], 2, 'same', null],
    [[1, 7, 5, 3], [3, 3, 3, 6], 1, 'same', 't32x32'],
  ] as Shape[])('second order through the convolution (penalty-like, with respect to W and to x): x%j filter%j stride %i %s tile %s', async (x, filter, stride, pad, tile) => {
    const r = await page.call<{ dW: Diff; dx: Diff }>('convGemmSecondOrder', { pass: 'forward', x, filter, stride, pad, tile, seed: 41 });
    close(r.dW, 'dW');
    close(r.dx, 'dx');
  });

  it('a tiny WGAN-GP critic: loss and every weight gradient (penalty included) equal with and without the new kernels on the fast path', async () => {
    const r = await page.call<{ loss: Diff; grads: Diff; n: number }>('wganGpConvGrads', { imageSize: 16, batch: 2 });
    expect(r.n).toBeGreaterThan(1000);
    close(r.loss, 'loss');
    close(r.grads, 'gradients');
  });

  it('the tuner times the tile configurations on each shape and the kernels then use the fastest', async () => {
    // 'same', stride 2: 128 output rows, so every configuration but 128×128 (too wide for 8 channels) is timed.
    const g = { batch: 2, inH: 16, inW: 16, inC: 4, outH: 8, outW: 8, outC: 8, kH: 3, kW: 3, strideH: 2, strideW: 2, padTop: 0, padLeft: 0 };
    const r = await page.call<{ results: { shape: string; times: Record<string, number>; chosen: string }[]; chosenAfter: string[]; exported: Record<string, string> }>('tuneCheck', {
      shapes: [
        { mode: 'forward', g },
        { mode: 'filterGrad', g },
      ],
    });
    expect(r.results).toHaveLength(2);
    for (const [i, res] of r.results.entries()) {
      const timed = Object.entries(res.times);
      expect(timed.length).toBeGreaterThanOrEqual(i === 0 ? 5 : 1);
      expect(timed.every(([, ms]) => ms > 0)).toBe(true);
      expect(res.chosen).toBe(timed.sort((a, b) => a[1] - b[1])[0][0]);
      expect(r.chosenAfter[i]).toBe(res.chosen);
      expect(r.exported[`test/adapter|${res.shape}`]).toBe(res.chosen);
    }
  });
});
