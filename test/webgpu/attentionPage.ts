/**
 * In-page side of the fused-attention checks in test/webgpu/kernels.test.ts (registered by page.ts): the fused softmax attention
 * (shared/kernels/webgpu/fusedAttention.ts) against the tfjs composition on webgpu, on the same inputs.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { parseGanConfig, type GanConfigInput } from '../../shared/config/ganConfig.ts';
import { createGan } from '../../shared/gan/gan.ts';
import { gradientPenalty } from '../../shared/gan/losses.ts';
import { installFusedAttention, webgpuAttentionCore } from '../../shared/kernels/webgpu/fusedAttention.ts';
import { installGpuCounters } from '../../shared/kernels/webgpu/gpuCounters.ts';
import { enableFastWebGPU } from '../../shared/kernels/webgpu/index.ts';
import { multiHeadSelfAttention } from '../../shared/nn/attention.ts';
import { tfjsAttentionCore, type AttentionCore, type AttentionCoreOptions } from '../../shared/nn/attentionCore.ts';
import { ParamStore } from '../../shared/nn/params.ts';
import { shiftedWindowMask } from '../../shared/nn/windows.ts';
import { diff, recordPrograms, useWebGPU, type Diff } from './pageSupport.ts';

export interface AttentionCase {
  /** Items (images, or images × windows for Swin), tokens per item, heads, features per head. */
  b: number;
  n: number;
  heads: number;
  d: number;
  bias: 'none' | 'shared' | 'perExample';
  /** Swin's shifted-window mask of a grid × grid map cut into √n × √n windows. */
  maskGrid?: number;
  seed: number;
}

function caseInputs(c: AttentionCase) {
  const dim = c.heads * c.d;
  const r = (shape: number[], s: number, sd = 1) => tf.randomNormal(shape, 0, sd, 'float32', c.seed + s);
  const opts: AttentionCoreOptions = {};
  // Scores of order 1–3 (q carries 1/√d in the model): softmax rows neither flat nor one-hot.
  const q = r([c.b, c.n, dim], 1, 0.6) as tf.Tensor3D;
  const k = r([c.b, c.n, dim], 2, 0.6) as tf.Tensor3D;
  const v = r([c.b, c.n, dim], 3) as tf.Tensor3D;
  const dy = r([c.b, c.n, dim], 4) as tf.Tensor3D;
  if (c.bias === 'shared') opts.bias = r([c.heads, c.n, c.n], 5, 0.5) as tf.Tensor3D;
  if (c.bias === 'perExample') opts.bias = r([2, c.heads, c.n, c.n], 5, 0.5) as tf.Tensor4D;
  if (c.maskGrid) {
    const m = Math.round(Math.sqrt(c.n));
    opts.mask = tf.tensor3d(shiftedWindowMask(c.maskGrid, c.maskGrid, m, Math.floor(m / 2)), [(c.maskGrid / m) ** 2, c.n, c.n]);
  }
  return { q, k, v, dy, opts };
}

type Outputs = Record<string, Float32Array>;

/**
 * Output and first-order gradients (q, k, v, bias) of ⟨dy, core(q, k, v)⟩, then ("penalty") the
 * gradients of Σ‖first-order gradient‖² with respect to q, k, v and the bias: second order, as WGAN-GP.
 */
async function evaluate(core: AttentionCore, c: AttentionCase, inputs: ReturnType<typeof caseInputs>): Promise<Outputs> {
  const { q, k, v, dy, opts } = inputs;
  const xs = opts.bias ? [q, k, v, opts.bias] : [q, k, v];
  const f = (...t: tf.Tensor[]) => core(t[0] as tf.Tensor3D, t[1] as tf.Tensor3D, t[2] as tf.Tensor3D, c.heads, { ...opts, bias: t[3] as tf.Tensor3D | undefined });
  const firstOf = (...t: tf.Tensor[]) => tf.grads((...u: tf.Tensor[]) => tf.sum(tf.mul(f(...u), dy)))(t);
  const names = ['q', 'k', 'v', 'bias'];
  const out: Outputs = {};
  const y = f(...xs);
  out.y = (await y.data()) as Float32Array;
  const first = firstOf(...xs);
  for (let i = 0; i < first.length; i++) out[`d${names[i]}`] = (await first[i].data()) as Float32Array;
  const second = tf.grads((...t: tf.Tensor[]) => tf.addN(firstOf(...t).map((g) => tf.sum(tf.square(g)))) as tf.Scalar)(xs);
  for (let i = 0; i < second.length; i++) out[`dd${names[i]}`] = (await second[i].data()) as Float32Array;
  tf.dispose([y, ...first, ...second]);
  return out;
}

/** The fused kernels against the tfjs composition (both on webgpu): every output's difference, and the programs the fused run used. */
async function attentionFused(c: AttentionCase): Promise<{ diffs: Record<string, Diff>; programs: string[]; error: string | null }> {
  const be = await useWebGPU();
  const inputs = caseInputs(c);
  const ref = await evaluate(tfjsAttentionCore, c, inputs);
  const restore = installFusedAttention();
  const rec = recordPrograms(be);
  let got: Outputs;
  let error: string | null = null;
  // An invalid pipeline or bind group would only read back zeros: catch the device's validation errors.
  be.device.pushErrorScope('validation');
  try {
    got = await evaluate(webgpuAttentionCore, c, inputs);
  } finally {
    error = (await be.device.popErrorScope())?.message ?? null;
    rec.stop();
    restore();
  }
  const { q, k, v, dy, opts } = inputs;
  const all: (tf.Tensor | undefined)[] = [q, k, v, dy, opts.bias, opts.mask];
  tf.dispose(all.filter((t): t is tf.Tensor => t != null));
  return { diffs: Object.fromEntries(Object.keys(ref).map((key) => [key, diff(got[key], ref[key])])), programs: [...new Set(rec.keys)], error };
}

/**
 * A tiny WGAN-GP critic (vit or swin) on the full fast path with the fused attention on and off: the
 * critic loss with its gradient penalty and every weight gradient (second order through the attention).
 */
async function wganGpAttention(c: { discriminator: GanConfigInput['discriminator']; imageSize: number; batch: number }): Promise<{ loss: Diff; grads: Diff; n: number; programs: string[] }> {
  const be = await useWebGPU();
  const run = async (attention: boolean) => {
    const fast = enableFastWebGPU({ seed: 5, attention });
    const rec = recordPrograms(be);
    try {
      const gan = createGan(parseGanConfig({ gan: 'wgan-gp', imageSize: c.imageSize, nCritic: 1, generator: { baseChannels: 8 }, discriminator: c.discriminator, seed: 11 } as GanConfigInput));
      const images = tf.randomUniform([c.batch, c.imageSize, c.imageSize, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
      const fake = tf.randomUniform([c.batch, c.imageSize, c.imageSize, 3], -1, 1, 'float32', 2) as tf.Tensor4D;
      const labels = tf.tensor1d(Array.from({ length: c.batch }, (_, i) => i % 2), 'int32');
      const { value, grads } = tf.variableGrads(() => {
        const critic = (x: tf.Tensor4D) => gan.D.apply(x, labels, true).score;
        const w = tf.sub(tf.mean(critic(fake)), tf.mean(critic(images)));
        return tf.add(w, gradientPenalty(critic, images, fake, 10, 123)) as tf.Scalar;
      }, gan.D.params.trainableVariables());
      const loss = Array.from(await value.data());
      const flat = (await Promise.all(Object.keys(grads).sort().map((k) => grads[k].data()))).flatMap((d) => Array.from(d));
      tf.dispose([value, images, fake, labels, ...Object.values(grads)]);
      gan.dispose();
      return { loss, flat, programs: [...new Set(rec.keys)] };
    } finally {
      rec.stop();
      fast.disable();
    }
  };
  const ref = await run(false);
  const got = await run(true);
  return { loss: diff(got.loss, ref.loss), grads: diff(got.flat, ref.flat), n: ref.flat.length, programs: got.programs.filter((k) => k.startsWith('fedganAttention')) };
}

export interface BlockCounts {
  forward: number;
  /** Forward and the gradients of every weight and the input. */
  backward: number;
  /** A penalty on the input gradient, differentiated with respect to every weight (WGAN-GP's second order). */
  secondOrder: number;
}

/**
 * GPU dispatches of one multi-head attention layer (projections included) on the full fast path, with
 * the fused attention on and off: forward; forward + backward; and second order.
 */
async function attentionDispatches(c: AttentionCase): Promise<{ on: BlockCounts; off: BlockCounts }> {
  const be = await useWebGPU();
  const count = async (attention: boolean): Promise<BlockCounts> => {
    const fast = enableFastWebGPU({ seed: 5, attention });
    try {
      const dim = c.heads * c.d;
      const p = new ParamStore('p', c.seed);
      const layer = multiHeadSelfAttention(p, 'attention', dim, c.heads);
      const { opts } = (() => {
        const inp = caseInputs(c);
        tf.dispose([inp.q, inp.k, inp.v, inp.dy]);
        return inp;
      })();
      const x = tf.randomNormal([c.b, c.n, dim], 0, 1, 'float32', c.seed + 9) as tf.Tensor3D;
      const w = tf.randomNormal([c.b, c.n, dim], 0, 1, 'float32', c.seed + 10) as tf.Tensor3D;
      const vars = p.trainableVariables();
      const bias = opts.bias ? tf.variable(opts.bias) : null;
      const layerOpts = { ...opts, ...(bias ? { bias: bias as tf.Tensor3D } : {}) };
      const f = (xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx as tf.Tensor3D, layerOpts), w));
      const measure = async (fn: () => tf.Tensor[]) => {
        const warm = fn(); // warm-up: pipelines, pooled buffers
        await Promise.all(warm.map((t) => t.data()));
        tf.dispose(warm);
        const counters = installGpuCounters(be.device);
        const ts = fn();
        await Promise.all(ts.map((t) => t.data()));
        counters.uninstall();
        tf.dispose(ts);
        return counters.snapshot().dispatches;
      };
      const allVars = bias ? [...vars, bias] : vars;
      const forward = await measure(() => [tf.tidy(() => f(x))]);
      const backward = await measure(() => {
        const { value, grads } = tf.variableGrads(() => f(x) as tf.Scalar, allVars);
        return [value, ...Object.values(grads)];
      });
      const secondOrder = await measure(() => {
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(tf.grad(f)(x))) as tf.Scalar, allVars);
        return [value, ...Object.values(grads)];
      });
      tf.dispose([x, w, ...(bias ? [bias] : []), ...(opts.bias ? [opts.bias] : []), ...(opts.mask ? [opts.mask] : [])]);
      p.dispose();
      return { forward, backward, secondOrder };
    } finally {
      fast.disable();
    }
  };
  const off = await count(false);
  const on = await count(true);
  return { on, off };
}

export const attentionPageFunctions = { attentionFused, wganGpAttention, attentionDispatches };
