/**
 * What every in-page side of the WebGPU tests needs (test/webgpu/page.ts and the files it registers):
 * the comparison of two arrays the tests assert on, switching the page to the webgpu backend, recording
 * the programs a computation ran, and one convolution case's operands, kernel call and host reference.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { parseGanConfig, type GanConfigInput } from '../../shared/config/ganConfig.ts';
import { createGan } from '../../shared/gan/gan.ts';
import { gradientPenalty } from '../../shared/gan/losses.ts';
import { enableFastWebGPU, type FastWebGPUOptions } from '../../shared/kernels/webgpu/index.ts';

export interface Diff {
  /** ‖a − b‖ / ‖b‖ */
  rel: number;
  /** max |a − b| / max |b| */
  maxRel: number;
  n: number;
  finite: boolean;
  /** max |b|: a reference of zeros (e.g. a lost device reads back zeros) would make any comparison pass. */
  maxRef: number;
}

/** How far `a` is from the reference `b`. */
export function diff(a: ArrayLike<number>, b: ArrayLike<number>): Diff {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  let maxD = 0;
  let maxB = 0;
  let finite = true;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    if (!Number.isFinite(a[i])) finite = false;
    num += d * d;
    den += b[i] * b[i];
    maxD = Math.max(maxD, Math.abs(d));
    maxB = Math.max(maxB, Math.abs(b[i]));
  }
  return { rel: den > 0 ? Math.sqrt(num / den) : Math.sqrt(num), maxRel: maxB > 0 ? maxD / maxB : maxD, n: a.length, finite, maxRef: maxB };
}

/** Switch to the webgpu backend (throws when it does not initialise) and return it. */
export async function useWebGPU(): Promise<WebGPUBackend> {
  if (tf.getBackend() !== 'webgpu' && !(await tf.setBackend('webgpu'))) throw new Error('webgpu backend did not initialise');
  await tf.ready();
  return tf.backend() as WebGPUBackend;
}

export interface CriticCase {
  imageSize: number;
  batch: number;
  discriminator?: string;
  /** Class of each item (default alternating 0, 1, …). */
  labels?: number[];
}

/**
 * A tiny WGAN-GP critic's loss and its gradient with respect to every critic weight (Wasserstein term plus
 * the gradient penalty, so second order through every layer) on the fast path with options `got`, against
 * the same with options `ref` (same weights, tiles and penalty draws).
 */
export async function wganGpCriticGrads(c: CriticCase, ref: FastWebGPUOptions, got: FastWebGPUOptions): Promise<{ loss: Diff; grads: Diff; n: number }> {
  await useWebGPU();
  const run = async (opts: FastWebGPUOptions) => {
    const fast = enableFastWebGPU({ seed: 5, ...opts });
    try {
      const gan = createGan(parseGanConfig({ gan: 'wgan-gp', imageSize: c.imageSize, nCritic: 1, generator: { baseChannels: 8 }, discriminator: { baseChannels: 8, ...(c.discriminator ? { type: c.discriminator } : {}) }, seed: 11 } as GanConfigInput));
      const images = tf.randomUniform([c.batch, c.imageSize, c.imageSize, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
      const fake = tf.randomUniform([c.batch, c.imageSize, c.imageSize, 3], -1, 1, 'float32', 2) as tf.Tensor4D;
      const labels = tf.tensor1d(c.labels ?? Array.from({ length: c.batch }, (_, i) => i % 2), 'int32');
      const dVars = gan.D.params.trainableVariables();
      const { value, grads } = tf.variableGrads(() => {
        const critic = (x: tf.Tensor4D) => gan.D.apply(x, labels, true).score;
        const w = tf.sub(tf.mean(critic(fake)), tf.mean(critic(images)));
        return tf.add(w, gradientPenalty(critic, images, fake, 10, 123)) as tf.Scalar;
      }, dVars);
      const loss = Array.from(await value.data());
      const flat = (await Promise.all(Object.keys(grads).sort().map((k) => grads[k].data()))).flatMap((d) => Array.from(d));
      tf.dispose([value, images, fake, labels, ...Object.values(grads)]);
      gan.dispose();
      return { loss, flat };
    } finally {
      fast.disable();
    }
  };
  const r = await run(ref);
  const g = await run(got);
  return { loss: diff(g.loss, r.loss), grads: diff(g.flat, r.flat), n: r.flat.length };
}

/** The shader keys of the programs the backend runs until `stop()` (default: the current backend). */
export function recordPrograms(be: WebGPUBackend = tf.backend() as WebGPUBackend): { keys: string[]; stop(): void } {
  const b = be as unknown as { runWebGPUProgram: (p: { shaderKey: string }, ...rest: unknown[]) => unknown };
  const original = b.runWebGPUProgram;
  const keys: string[] = [];
  b.runWebGPUProgram = function (this: unknown, p: { shaderKey: string }, ...rest: unknown[]) {
    keys.push(p.shaderKey);
    return original.call(this, p, ...rest);
  };
  return { keys, stop: () => void (b.runWebGPUProgram = original) };
}

/** One convolution pass: shapes (NHWC input, [kh, kw, in, out] filter), stride, padding, and the fused pass's epilogue. */
export interface ConvPassCase {
  pass: 'forward' | 'fused' | 'inputGrad' | 'filterGrad';
  x: [number, number, number, number];
  filter: [number, number, number, number];
  stride: number;
  pad: 'same' | 'valid';
  activation?: string;
  alpha?: number;
  seed: number;
}

/**
 * Random operands of a convolution case (x, filter, bias, and dy of the output's shape) and `run()`, which
 * calls the pass's tfjs kernel (Conv2D, FusedConv2D, Conv2DBackpropInput or Conv2DBackpropFilter) on them
 * with whatever kernels are registered at the time.
 */
export function convOperands(c: ConvPassCase): { x: tf.Tensor4D; filter: tf.Tensor4D; bias: tf.Tensor; dy: tf.Tensor; yShape: number[]; run: () => tf.Tensor; dispose: () => void } {
  const x = tf.randomNormal(c.x, 0, 1, 'float32', c.seed) as tf.Tensor4D;
  const filter = tf.randomNormal(c.filter, 0, 0.5, 'float32', c.seed + 1) as tf.Tensor4D;
  const bias = tf.randomNormal([c.filter[3]], 0, 0.5, 'float32', c.seed + 2);
  const yShape = tf.tidy(() => tf.conv2d(x, filter, c.stride, c.pad).shape);
  const dy = tf.randomNormal(yShape, 0, 1, 'float32', c.seed + 3);
  const base = { strides: [c.stride, c.stride], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
  const run = () => {
    if (c.pass === 'forward') return tf.engine().runKernel('Conv2D', { x, filter }, { ...base, dilations: [1, 1] } as unknown as tf.NamedAttrMap) as tf.Tensor;
    if (c.pass === 'fused') {
      return tf.engine().runKernel('FusedConv2D', { x, filter, bias }, { ...base, dilations: [1, 1], activation: c.activation ?? 'linear', leakyreluAlpha: c.alpha ?? 0.2 } as unknown as tf.NamedAttrMap) as tf.Tensor;
    }
    if (c.pass === 'inputGrad') return tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { ...base, inputShape: c.x } as unknown as tf.NamedAttrMap) as tf.Tensor;
    return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...base, filterShape: c.filter } as unknown as tf.NamedAttrMap) as tf.Tensor;
  };
  return { x, filter, bias, dy, yShape, run, dispose: () => tf.dispose([x, filter, bias, dy]) };
}

/**
 * The case's pass by direct loops on the host (NHWC, TensorFlow's padding), and the fused pass's bias and
 * activation (linear, relu, leakyrelu, sigmoid): an independent reference for small shapes.
 */
export function hostConv(c: ConvPassCase, x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number>, dy: ArrayLike<number>, ys: number[]): Float64Array {
  const [B, H, W, C] = c.x;
  const [KH, KW, , O] = c.filter;
  const [, OH, OW] = ys;
  const s = c.stride;
  const padT = c.pad === 'valid' ? 0 : Math.floor(Math.max((OH - 1) * s + KH - H, 0) / 2);
  const padL = c.pad === 'valid' ? 0 : Math.floor(Math.max((OW - 1) * s + KW - W, 0) / 2);
  const out = new Float64Array(c.pass === 'inputGrad' ? B * H * W * C : c.pass === 'filterGrad' ? KH * KW * C * O : B * OH * OW * O);
  for (let b = 0; b < B; b++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++)
        for (let kh = 0; kh < KH; kh++)
          for (let kw = 0; kw < KW; kw++) {
            const iy = oy * s + kh - padT;
            const ix = ox * s + kw - padL;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            for (let ci = 0; ci < C; ci++) {
              const xi = ((b * H + iy) * W + ix) * C + ci;
              for (let o = 0; o < O; o++) {
                const wi = ((kh * KW + kw) * C + ci) * O + o;
                const yi = ((b * OH + oy) * OW + ox) * O + o;
                if (c.pass === 'inputGrad') out[xi] += dy[yi] * w[wi];
                else if (c.pass === 'filterGrad') out[wi] += x[xi] * dy[yi];
                else out[yi] += x[xi] * w[wi];
              }
            }
          }
  if (c.pass === 'fused') {
    const alpha = c.alpha ?? 0.2;
    const a = c.activation ?? 'linear';
    if (!['linear', 'relu', 'leakyrelu', 'sigmoid'].includes(a)) throw new Error(`hostConv: no host reference for activation ${a}`);
    for (let i = 0; i < out.length; i++) {
      const v = out[i] + bias[i % O];
      out[i] = a === 'relu' ? Math.max(v, 0) : a === 'leakyrelu' ? (v >= 0 ? v : alpha * v) : a === 'sigmoid' ? 1 / (1 + Math.exp(-v)) : v;
    }
  }
  return out;
}

/**
 * Second order through the convolution kernels, as WGAN-GP's penalty takes it: `run()` gives
 * ‖∂/∂x Σ LeakyReLU(conv(x, W))·w‖² differentiated with respect to W (Conv2DBackpropInput forward, then its
 * gradients: Conv2D and Conv2DBackpropFilter), and ‖∂/∂x Σ conv(x, W)²·w‖² with respect to x, with whatever
 * kernels are registered at the time.
 */
export function convSecondOrder(c: Pick<ConvPassCase, 'x' | 'filter' | 'stride' | 'pad' | 'seed'>): { run: () => tf.Tensor[]; dispose: () => void } {
  const x = tf.randomNormal(c.x, 0, 1, 'float32', c.seed) as tf.Tensor4D;
  const filter = tf.randomNormal(c.filter, 0, 0.5, 'float32', c.seed + 1) as tf.Tensor4D;
  const yShape = tf.tidy(() => tf.conv2d(x, filter, c.stride, c.pad).shape);
  const w = tf.randomNormal(yShape, 0, 1, 'float32', c.seed + 3);
  const run = () =>
    tf.tidy(() => {
      const inner = (a: tf.Tensor, f: tf.Tensor) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.leakyRelu(tf.conv2d(t as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad), 0.2), w)))(a);
      const dW = tf.grad((f: tf.Tensor) => tf.sum(tf.square(inner(x, f))))(filter);
      // LeakyReLU's derivative is piecewise constant, so with respect to x take a squared conv instead.
      const innerSq = (a: tf.Tensor) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.square(tf.conv2d(t as tf.Tensor4D, filter, c.stride, c.pad)), w)))(a);
      const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.square(innerSq(a))))(x);
      return [dW, dx];
    });
  return { run, dispose: () => tf.dispose([x, filter, w]) };
}
