import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, hasChromium, openTestPage, type PageApi } from './harness.ts';
import type { ConvCase, ConvDiff, Diff } from './page.ts';

// This project's implicit-GEMM convolutions (shared/kernels/webgpu/convGemm.ts) against stock
// tfjs-webgpu and against direct loops on the host, float32, random inputs, in headless Chromium on
// SwiftShader WebGPU. Shapes are small (SwiftShader compiles and runs these kernels slowly) but cover
// every tile configuration, partial tiles in M, N and K, channels on and off multiples of 4 (vec4 and
// scalar loads), odd sizes, batch 1, strides 1, 2 and 4 (every stride phase of the input gradient),
// 'same' and 'valid', 1×1 to 5×5 filters.
describe.skipIf(!hasChromium)('implicit-GEMM convolution kernels match stock tfjs', () => {
  let page: PageApi;
  beforeAll(async () => {
    page = await openTestPage();
  });
  afterAll(async () => {
    await page?.close();
  });

  const close = expectClose;
  // Against stock tfjs and against the host's loops, computed by this project's program.
  const checked = (d: ConvDiff, program: string, what: string) => {
    close(d, `${what} vs stock`);
    if (d.host) close(d.host, `${what} vs host loops`);
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
