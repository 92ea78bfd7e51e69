import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, hasChromium, openTestPage, type PageApi } from './harness.ts';
import type { AttentionCase, BlockCounts } from './attentionPage.ts';
import type { Diff } from './pageSupport.ts';

// The fused softmax attention (shared/kernels/webgpu/fusedAttention.ts) against the tfjs composition on
// webgpu, float32, in headless Chromium on SwiftShader: output, first-order gradients (q, k, v, bias) and
// second order (a penalty on the first-order gradients, as WGAN-GP), at the ViT and Swin discriminators'
// shapes (head width 24); a tiny WGAN-GP critic of each kind; and the dispatches of one attention layer.
describe.skipIf(!hasChromium)('fused softmax attention matches the tfjs composition', () => {
  let page: PageApi;
  beforeAll(async () => {
    page = await openTestPage();
  });
  afterAll(async () => {
    await page?.close();
  });

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
