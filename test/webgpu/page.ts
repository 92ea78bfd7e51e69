/**
 * In-page side of the WebGPU tests (bundled by test/webgpu/harness.ts, run in headless Chromium on
 * SwiftShader). Each function runs stock tfjs and this project's fast path on the same inputs and
 * returns plain numbers; the assertions live in the *.test.ts files.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-webgl';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { parseGanConfig, type GanConfigInput, type GanType } from '../../shared/config/ganConfig.ts';
import { createGan } from '../../shared/gan/gan.ts';
import { createTrainer } from '../../shared/gan/trainer.ts';
import { registerMissingGradients } from '../../shared/gan/gradients.ts';
import { makeConv2dBackpropFilterKernel } from '../../shared/kernels/webgpu/conv2dBackpropFilter.ts';
import { FusedAdamOptimizer } from '../../shared/kernels/webgpu/fusedAdam.ts';
import { gpuDropoutMask, gpuRandomNormal, gpuRandomUniform, gpuRandomUniformInt } from '../../shared/kernels/webgpu/gpuRandom.ts';
import { installGpuCounters } from '../../shared/kernels/webgpu/gpuCounters.ts';
import { enableFastWebGPU, fastWebGPUEnabled, type FastWebGPUOptions } from '../../shared/kernels/webgpu/index.ts';
import { originalKernel, overrideKernel } from '../../shared/kernels/webgpu/overrides.ts';
import { installReductionGradients } from '../../shared/kernels/webgpu/reductionGradients.ts';
import { installLeakyReluGrad } from '../../shared/kernels/webgpu/leakyReluGrad.ts';
import { batchNormTrainWebGPU, installBatchNormTrain, setBatchNormStorageBufferLimit } from '../../shared/kernels/webgpu/batchNormTrain.ts';
import { tfjsBatchNormTrain } from '../../shared/nn/batchNormTraining.ts';
import { installUploadPath } from '../../shared/kernels/webgpu/uploadPath.ts';
import { installLayerNorm, layerNormalizeWebGPU } from '../../shared/kernels/webgpu/layerNorm.ts';
import { tfjsLayerNormalize } from '../../shared/nn/layerNormalize.ts';
import { installFusedLayers, webgpuFusedLayerOps } from '../../shared/kernels/webgpu/fusedLayers.ts';
import { tfjsFusedLayerOps } from '../../shared/nn/fusedLayerOps.ts';
import { installMovingAverage, movingAverageWebGPU } from '../../shared/kernels/webgpu/movingAverage.ts';
import { fusedDropoutInstalled, gpuDropout, installFusedDropout } from '../../shared/kernels/webgpu/fusedDropout.ts';
import { installFusedLosses, webgpuFusedLosses } from '../../shared/kernels/webgpu/fusedLosses.ts';
import { bceWithLogits, setFusedLosses, softmaxCrossEntropy } from '../../shared/gan/losses.ts';
import { tfjsMovingAverage } from '../../shared/nn/movingAverage.ts';
import { randomOps, setRandomOps } from '../../shared/nn/random.ts';
import { installConvKernels } from '../../shared/kernels/webgpu/convKernels.ts';
import { chooseTile, clearTunings, exportTunings, forceTile, setTunerAdapter, tuneConvolutions, type TuneResult } from '../../shared/kernels/webgpu/convTuner.ts';
import type { ConvGeometry } from '../../shared/kernels/webgpu/convGemm.ts';
import { gradientPenalty } from '../../shared/gan/losses.ts';
import { gpChainPageFunctions } from './gpChainPage.ts';
import { attentionPageFunctions } from './attentionPage.ts';
import { subgroupPageFunctions } from './subgroupPage.ts';
import { convOperands, convSecondOrder, diff, hostConv, recordPrograms, wganGpCriticGrads, useWebGPU, type ConvPassCase, type Diff } from './pageSupport.ts';
export type { Diff } from './pageSupport.ts';

function webgpu(): WebGPUBackend {
  return tf.backend() as WebGPUBackend;
}

/** Conv2DBackpropFilter: this project's kernel against stock tfjs-webgpu on random x, dy. */
async function backpropFilter(c: { x: number[]; filter: number[]; stride: number; pad: 'same' | 'valid'; seed: number }): Promise<Diff> {
  await useWebGPU();
  const stock = originalKernel('Conv2DBackpropFilter', 'webgpu');
  const x = tf.randomNormal(c.x as [number, number, number, number], 0, 1, 'float32', c.seed);
  const yShape = tf.tidy(() => tf.conv2d(x as tf.Tensor4D, tf.zeros(c.filter as [number, number, number, number]) as tf.Tensor4D, c.stride, c.pad).shape);
  const dy = tf.randomNormal(yShape, 0, 1, 'float32', c.seed + 1);
  const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: c.filter } as unknown as tf.NamedAttrMap;
  const run = () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs) as tf.Tensor;
  const ref = run();
  const restore = overrideKernel('Conv2DBackpropFilter', 'webgpu', makeConv2dBackpropFilterKernel(stock));
  const got = run();
  restore();
  const d = diff(await got.data(), await ref.data());
  tf.dispose([x, dy, ref, got]);
  return d;
}

export interface ConvDiff extends Diff {
  /** Shader keys of the programs the replaced kernel ran. */
  programs: string[];
  /** Against direct loops on the host (the fused pass with its bias and activation). */
  host: Diff;
}

export interface ConvCase extends ConvPassCase {
  /** Tile configuration to force (null: the heuristic's). */
  tile: string | null;
}

/**
 * One convolution pass with this project's implicit-GEMM kernels (convKernels.ts) against stock
 * tfjs-webgpu's kernel for the same op, on the same random inputs.
 */
async function convGemm(c: ConvCase): Promise<ConvDiff> {
  await useWebGPU();
  const ops = convOperands(c);
  const ref = ops.run();
  const restore = installConvKernels();
  forceTile(c.tile);
  const programs = recordPrograms();
  let got: tf.Tensor;
  try {
    got = ops.run();
  } finally {
    programs.stop();
    forceTile(null);
    restore();
  }
  const d = diff(await got.data(), await ref.data());
  // Also against direct loops on the host: stock tfjs can be wrong too (a shader that fails to compile
  // invalidates the whole command buffer, and both read back zeros).
  const host = diff(await got.data(), hostConv(c, await ops.x.data(), await ops.filter.data(), await ops.bias.data(), await ops.dy.data(), ops.yShape));
  ops.dispose();
  tf.dispose([ref, got]);
  return { ...d, programs: programs.keys, host };
}

/**
 * The tuner on given shapes (SwiftShader's times, not a GPU's): what it timed and chose, the choice the
 * kernels then make, and the exported map; the choices are cleared afterwards.
 */
async function tuneCheck(c: { shapes: { mode: 'forward' | 'inputGrad' | 'filterGrad'; g: ConvGeometry }[] }): Promise<{ results: TuneResult[]; chosenAfter: string[]; exported: Record<string, string> }> {
  await useWebGPU();
  setTunerAdapter('test/adapter', 16, false);
  try {
    const results = await tuneConvolutions(c.shapes, 1);
    const chosenAfter = c.shapes.map((s) => chooseTile(s.mode, s.g).name);
    return { results, chosenAfter, exported: exportTunings() };
  } finally {
    clearTunings();
    setTunerAdapter('unknown', 1024, false);
  }
}

/** The forward pass, the input gradient and the filter gradient of one shape (one page call: SwiftShader compiles slowly). */
async function convGemmPasses(c: Omit<ConvCase, 'pass'> & { passes: ConvCase['pass'][] }): Promise<Record<string, ConvDiff>> {
  const out: Record<string, ConvDiff> = {};
  for (const pass of c.passes) out[pass] = await convGemm({ ...c, pass, seed: c.seed + pass.length });
  return out;
}

/** Second order through the convolution kernels (pageSupport.ts convSecondOrder) with `tile` forced, against stock tfjs. */
async function convGemmSecondOrder(c: ConvCase): Promise<{ dW: Diff; dx: Diff }> {
  await useWebGPU();
  const ops = convSecondOrder(c);
  const ref = ops.run();
  const restore = installConvKernels();
  forceTile(c.tile);
  let got: tf.Tensor[];
  try {
    got = ops.run();
  } finally {
    forceTile(null);
    restore();
  }
  const out = { dW: diff(await got[0].data(), await ref[0].data()), dx: diff(await got[1].data(), await ref[1].data()) };
  ops.dispose();
  tf.dispose([...ref, ...got]);
  return out;
}

/**
 * A tiny WGAN-GP critic's loss and its gradient with respect to every critic weight (Wasserstein term
 * plus the gradient penalty, so second order through every convolution), with the fast path on, its
 * convolution kernels on and off (everything else the same, penalty draws seeded alike).
 */
async function wganGpConvGrads(c: { imageSize: number; batch: number; discriminator?: string }): Promise<{ loss: Diff; grads: Diff; n: number }> {
  return wganGpCriticGrads(c, { convGemm: false }, { convGemm: true });
}

/**
 * Wall time of one convolution pass, stock tfjs-webgpu against this project's kernels (heuristic tiles, or
 * `tile`), after one warm-up run each: on SwiftShader these are CPU times, not a GPU's.
 */
async function convTiming(c: ConvCase & { reps: number }): Promise<{ stockMs: number; gemmMs: number }> {
  await useWebGPU();
  const x = tf.randomNormal(c.x, 0, 1, 'float32', c.seed) as tf.Tensor4D;
  const filter = tf.randomNormal(c.filter, 0, 0.5, 'float32', c.seed + 1) as tf.Tensor4D;
  const yShape = tf.tidy(() => tf.conv2d(x, filter, c.stride, c.pad).shape);
  const dy = tf.randomNormal(yShape, 0, 1, 'float32', c.seed + 3);
  const base = { strides: [c.stride, c.stride], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
  const run = () =>
    c.pass === 'inputGrad'
      ? (tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { ...base, inputShape: c.x } as unknown as tf.NamedAttrMap) as tf.Tensor)
      : c.pass === 'filterGrad'
        ? (tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...base, filterShape: c.filter } as unknown as tf.NamedAttrMap) as tf.Tensor)
        : (tf.engine().runKernel('Conv2D', { x, filter }, { ...base, dilations: [1, 1] } as unknown as tf.NamedAttrMap) as tf.Tensor);
  const time = async () => {
    const w = run();
    await w.data();
    w.dispose();
    const t0 = performance.now();
    for (let i = 0; i < c.reps; i++) {
      const r = run();
      await r.data();
      r.dispose();
    }
    return (performance.now() - t0) / c.reps;
  };
  const stockMs = await time();
  const restore = installConvKernels();
  forceTile(c.tile);
  let gemmMs: number;
  try {
    gemmMs = await time();
  } finally {
    forceTile(null);
    restore();
  }
  tf.dispose([x, filter, dy]);
  return { stockMs, gemmMs };
}

/** Conv2DBackpropInput with tfjs's tiled kernel (the fast path's convTransposeMM option) against its default one. */
async function backpropInputTiled(c: { x: number[]; filter: number[]; stride: number; pad: 'same' | 'valid'; seed: number }): Promise<Diff> {
  await useWebGPU();
  const xShape = c.x as [number, number, number, number];
  const filter = tf.randomNormal(c.filter as [number, number, number, number], 0, 1, 'float32', c.seed) as tf.Tensor4D;
  const yShape = tf.tidy(() => tf.conv2d(tf.zeros(xShape) as tf.Tensor4D, filter, c.stride, c.pad).shape);
  const dy = tf.randomNormal(yShape, 0, 1, 'float32', c.seed + 1);
  const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: xShape } as unknown as tf.NamedAttrMap;
  const flag = 'WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE';
  const run = (naive: boolean) => {
    const old = tf.env().get(flag);
    tf.env().set(flag, naive);
    try {
      return tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, attrs) as tf.Tensor;
    } finally {
      tf.env().set(flag, old);
    }
  };
  const ref = run(true);
  const got = run(false);
  const d = diff(await got.data(), await ref.data());
  tf.dispose([filter, dy, ref, got]);
  return d;
}

/** Gradients of mean/sum over the given axes (and a second derivative through them), stock vs GPU-ones. */
async function reductionGradients(c: { shape: number[]; axes: number[]; seed: number }): Promise<{ mean: Diff; sum: Diff; second: Diff }> {
  await useWebGPU();
  const x = tf.randomNormal(c.shape, 0, 1, 'float32', c.seed);
  const w = tf.randomNormal(c.shape, 0, 1, 'float32', c.seed + 1);
  const compute = () =>
    tf.tidy(() => {
      const gMean = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.mean(tf.mul(t, w), c.axes), 3)))(x);
      const gSum = tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.sum(tf.mul(t, w), c.axes))))(x);
      // d/dx Σ (∂/∂x Σ mean(x²))²: differentiates the Mean gradient again.
      const second = tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.grad((u: tf.Tensor) => tf.sum(tf.mean(tf.square(u), c.axes)))(t))))(x);
      return [gMean, gSum, second];
    });
  const ref = compute();
  const restore = installReductionGradients();
  const got = compute();
  restore();
  const out = {
    mean: diff(await got[0].data(), await ref[0].data()),
    sum: diff(await got[1].data(), await ref[1].data()),
    second: diff(await got[2].data(), await ref[2].data()),
  };
  tf.dispose([x, w, ...ref, ...got]);
  return out;
}

/** LeakyReLU gradient (first and second order, as WGAN-GP's penalty needs) against tfjs's composition. */
async function leakyReluGrad(c: { shape: number[]; alpha: number; seed: number }): Promise<{ first: Diff; second: Diff }> {
  await useWebGPU();
  const x = tf.randomNormal(c.shape, 0, 1, 'float32', c.seed);
  const w = tf.randomNormal(c.shape, 0, 1, 'float32', c.seed + 1);
  const compute = () =>
    tf.tidy(() => {
      const first = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.leakyRelu(t, c.alpha), w)))(x);
      // Penalty-like: Σ (∂/∂x Σ leaky(x·w))² differentiated with respect to w.
      const second = tf.grad((ww: tf.Tensor) => tf.sum(tf.square(tf.grad((t: tf.Tensor) => tf.sum(tf.leakyRelu(tf.mul(t, ww), c.alpha)))(x))))(w);
      return [first, second];
    });
  const ref = compute();
  const restore = installLeakyReluGrad();
  const got = compute();
  restore();
  const out = { first: diff(await got[0].data(), await ref[0].data()), second: diff(await got[1].data(), await ref[1].data()) };
  tf.dispose([x, w, ...ref, ...got]);
  return out;
}

/**
 * Fused training-mode batch norm against tfjs ops: y, batch statistics, and gradients of Σ y·w; with
 * `alpha`, the batch norm + LeakyReLU of the generator (tfjs: the same ops, then tf.leakyRelu). Also the
 * shader keys the fused version ran, how many programs the same computation runs without the activation,
 * and the device's storage buffers per shader stage (`storageBuffers`: a given one pretends the device
 * allows that many).
 */
async function batchNorm(c: { shape: number[]; seed: number; offset: number; alpha?: number; storageBuffers?: number }): Promise<Record<'y' | 'mean' | 'variance' | 'dx' | 'dgamma' | 'dbeta', Diff> & { programs: string[]; programsWithoutActivation: number; storageBuffers: number }> {
  const backend = await useWebGPU();
  const ch = c.shape[c.shape.length - 1];
  // An offset far from zero checks the variance does not cancel catastrophically.
  const x = tf.tidy(() => tf.add(tf.randomNormal(c.shape, 0, 2, 'float32', c.seed), c.offset));
  const w = tf.randomNormal(c.shape, 0, 1, 'float32', c.seed + 1);
  const gamma = tf.randomNormal([ch], 1, 0.3, 'float32', c.seed + 2);
  const beta = tf.randomNormal([ch], 0, 0.3, 'float32', c.seed + 3);
  const run = (f: typeof tfjsBatchNormTrain, withActivation = true) =>
    tf.tidy(() => {
      const alpha = withActivation ? c.alpha : undefined;
      const { y, mean, variance } = f(x, gamma, beta, 1e-3, alpha);
      const g = tf.grads((a: tf.Tensor, gm: tf.Tensor, bt: tf.Tensor) => tf.sum(tf.mul(f(a, gm, bt, 1e-3, alpha).y, w)))([x, gamma, beta]);
      return [y, mean, variance, ...g];
    });
  const ref = run(tfjsBatchNormTrain);
  const restore = installBatchNormTrain();
  setBatchNormStorageBufferLimit(c.storageBuffers ?? null);
  let got: tf.Tensor[];
  const programs = recordPrograms();
  try {
    got = run(batchNormTrainWebGPU);
  } finally {
    programs.stop();
  }
  const plain = recordPrograms();
  try {
    tf.dispose(run(batchNormTrainWebGPU, false));
  } finally {
    plain.stop();
    setBatchNormStorageBufferLimit(null);
    restore();
  }
  const names = ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'] as const;
  const out = {} as Record<(typeof names)[number], Diff>;
  for (let i = 0; i < names.length; i++) out[names[i]] = diff(await got[i].data(), await ref[i].data());
  tf.dispose([x, w, gamma, beta, ...ref, ...got]);
  return { ...out, programs: programs.keys, programsWithoutActivation: plain.keys.length, storageBuffers: c.storageBuffers ?? backend.device.limits.maxStorageBuffersPerShaderStage };
}

/**
 * A generator's output (training mode, so its batch norms use batch statistics) and the gradient of
 * Σ G(z)·w with respect to every generator weight, on the fast path with its batch-norm kernels (batch
 * norm + LeakyReLU fused) against the fast path with `batchNorm: false` (tfjs ops): same weights, latents,
 * labels and w. Also the programs the fused run dispatched.
 */
async function generatorBatchNorm(c: { imageSize: number; batch: number; channels: number }): Promise<{ y: Diff; grads: Diff; n: number; programs: string[] }> {
  await useWebGPU();
  const run = async (opts: FastWebGPUOptions) => {
    const fast = enableFastWebGPU({ seed: 5, ...opts });
    const programs = recordPrograms();
    try {
      const gan = createGan(parseGanConfig({ gan: 'acgan', imageSize: c.imageSize, generator: { baseChannels: c.channels }, discriminator: { baseChannels: 8 }, seed: 17 } as GanConfigInput));
      const z = tf.randomNormal([c.batch, gan.cfg.latentDim], 0, 1, 'float32', 3) as tf.Tensor2D;
      const labels = tf.tensor1d(Array.from({ length: c.batch }, (_, i) => i % 2), 'int32');
      const w = tf.randomNormal([c.batch, c.imageSize, c.imageSize, 3], 0, 1, 'float32', 4);
      const y = tf.tidy(() => gan.G.apply(z, labels, true));
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(gan.G.apply(z, labels, true), w)) as tf.Scalar, gan.G.params.trainableVariables());
      const out = Array.from(await y.data());
      const flat = (await Promise.all(Object.keys(grads).sort().map((k) => grads[k].data()))).flatMap((d) => Array.from(d));
      tf.dispose([y, value, z, labels, w, ...Object.values(grads)]);
      gan.dispose();
      return { out, flat };
    } finally {
      programs.stop();
      fast.disable();
      ran = programs.keys;
    }
  };
  let ran: string[] = [];
  const ref = await run({ batchNorm: false });
  const got = await run({});
  return { y: diff(got.out, ref.out), grads: diff(got.flat, ref.flat), n: ref.flat.length, programs: ran };
}

/**
 * Fused layer normalisation against tfjs's composition: x̂, its gradient, and the two second-order
 * gradients WGAN-GP's penalty takes (with respect to x and to the incoming gradient), plus a
 * penalty-like loss through a whole layer (γ, β) differentiated with respect to γ.
 */
async function layerNorm(c: { shape: number[]; seed: number; offset: number }): Promise<Record<'y' | 'dx' | 'ddx' | 'ddg' | 'dgamma', Diff>> {
  await useWebGPU();
  const ch = c.shape[c.shape.length - 1];
  const x = tf.tidy(() => tf.add(tf.randomNormal(c.shape, 0, 2, 'float32', c.seed), c.offset));
  const g = tf.randomNormal(c.shape, 0, 1, 'float32', c.seed + 1);
  const h = tf.randomNormal(c.shape, 0, 1, 'float32', c.seed + 2);
  const gamma = tf.randomNormal([ch], 1, 0.3, 'float32', c.seed + 3);
  const beta = tf.randomNormal([ch], 0, 0.3, 'float32', c.seed + 4);
  const eps = 1e-5;
  const run = (f: (x: tf.Tensor, e: number) => tf.Tensor) =>
    tf.tidy(() => {
      const y = f(x, eps);
      const ng = (gg: tf.Tensor, xx: tf.Tensor) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gg, f(t, eps))))(xx);
      const dx = ng(g, x);
      const ddx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(h, ng(g, t))))(x);
      const ddg = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(h, ng(t, x))))(g);
      // ‖∂/∂x Σ layer(x)·g‖² differentiated with respect to γ, as the gradient penalty does for a critic's weights.
      const layer = (t: tf.Tensor, gm: tf.Tensor) => tf.add(tf.mul(f(t, eps), gm), beta);
      const dgamma = tf.grad((gm: tf.Tensor) => tf.sum(tf.square(tf.grad((t: tf.Tensor) => tf.sum(tf.mul(layer(t, gm), g)))(x))))(gamma);
      return [y, dx, ddx, ddg, dgamma];
    });
  const ref = run(tfjsLayerNormalize);
  const restore = installLayerNorm();
  const got = run(layerNormalizeWebGPU);
  restore();
  const names = ['y', 'dx', 'ddx', 'ddg', 'dgamma'] as const;
  const out = {} as Record<(typeof names)[number], Diff>;
  for (let i = 0; i < names.length; i++) out[names[i]] = diff(await got[i].data(), await ref[i].data());
  tf.dispose([x, g, h, gamma, beta, ...ref, ...got]);
  return out;
}

/**
 * Fused conv + bias (+ LeakyReLU) and dense + bias against tfjs's ops: outputs, gradients with respect to
 * every input, and a penalty-like second-order gradient (‖∂/∂x Σ layer(x)·w‖² with respect to the weights).
 */
async function fusedLayers(c: { x: [number, number, number, number]; filter: [number, number, number, number]; stride: number; alpha: number | null; bias: boolean; seed: number }): Promise<Record<string, Diff>> {
  await useWebGPU();
  const x = tf.randomNormal(c.x, 0, 1, 'float32', c.seed) as tf.Tensor4D;
  const filter = tf.randomNormal(c.filter, 0, 0.3, 'float32', c.seed + 1) as tf.Tensor4D;
  const bias = c.bias ? (tf.randomNormal([c.filter[3]], 0, 0.3, 'float32', c.seed + 2) as tf.Tensor1D) : null;
  const flatIn = c.x[1] * c.x[2] * c.x[3];
  const xd = tf.reshape(x, [c.x[0], flatIn]) as tf.Tensor2D;
  const kernel = tf.randomNormal([flatIn, 5], 0, 0.1, 'float32', c.seed + 3) as tf.Tensor2D;
  const dbias = c.bias ? (tf.randomNormal([5], 0, 0.3, 'float32', c.seed + 4) as tf.Tensor1D) : null;
  const run = (ops: typeof tfjsFusedLayerOps) =>
    tf.tidy(() => {
      const y = ops.conv(x, filter, bias, c.stride, c.alpha);
      const w = tf.randomNormal(y.shape, 0, 1, 'float32', c.seed + 5);
      const loss = (a: tf.Tensor4D, f: tf.Tensor4D, b: tf.Tensor1D | null) => tf.sum(tf.mul(ops.conv(a, f, b, c.stride, c.alpha), w));
      const grads = bias ? tf.grads((a: tf.Tensor, f: tf.Tensor, b: tf.Tensor) => loss(a as tf.Tensor4D, f as tf.Tensor4D, b as tf.Tensor1D))([x, filter, bias]) : tf.grads((a: tf.Tensor, f: tf.Tensor) => loss(a as tf.Tensor4D, f as tf.Tensor4D, null))([x, filter]);
      const second = tf.grad((f: tf.Tensor) => tf.sum(tf.square(tf.grad((a: tf.Tensor) => loss(a as tf.Tensor4D, f as tf.Tensor4D, bias))(x))))(filter);
      const yd = ops.dense(xd, kernel, dbias);
      const wd = tf.randomNormal(yd.shape, 0, 1, 'float32', c.seed + 6);
      const dl = (a: tf.Tensor2D, k: tf.Tensor2D, b: tf.Tensor1D | null) => tf.sum(tf.mul(ops.dense(a, k, b), wd));
      const dgrads = dbias ? tf.grads((a: tf.Tensor, k: tf.Tensor, b: tf.Tensor) => dl(a as tf.Tensor2D, k as tf.Tensor2D, b as tf.Tensor1D))([xd, kernel, dbias]) : tf.grads((a: tf.Tensor, k: tf.Tensor) => dl(a as tf.Tensor2D, k as tf.Tensor2D, null))([xd, kernel]);
      const dsecond = tf.grad((k: tf.Tensor) => tf.sum(tf.square(tf.grad((a: tf.Tensor) => tf.sum(tf.square(ops.dense(a as tf.Tensor2D, k as tf.Tensor2D, dbias))))(xd))))(kernel);
      return { y, dx: grads[0], dfilter: grads[1], dbias: grads[2] ?? tf.zeros([1]), second, yd, ddx: dgrads[0], dkernel: dgrads[1], ddbias: dgrads[2] ?? tf.zeros([1]), dsecond };
    });
  const ref = run(tfjsFusedLayerOps);
  const restoreLeaky = installLeakyReluGrad();
  const restore = installFusedLayers();
  const got = run(webgpuFusedLayerOps);
  restore();
  restoreLeaky();
  const out: Record<string, Diff> = {};
  for (const k of Object.keys(ref) as (keyof typeof ref)[]) out[k] = diff(await got[k].data(), await ref[k].data());
  tf.dispose([x, filter, xd, kernel, ...(bias ? [bias] : []), ...(dbias ? [dbias] : []), ...Object.values(ref), ...Object.values(got)]);
  return out;
}

/** Fused dropout against x · gpuDropoutMask (same draw): output, gradient and a second-order gradient, exactly. */
async function fusedDropoutCheck(c: { shape: number[]; rate: number; seed: number; stream: number }): Promise<{ y: number; dx: number; second: number }> {
  await useWebGPU();
  const restore = installFusedDropout();
  try {
    const id = { seed: c.seed, stream: c.stream };
    const x = tf.randomNormal(c.shape, 0, 1, 'float32', 3);
    const w = tf.randomNormal(c.shape, 0, 1, 'float32', 4);
    const mask = gpuDropoutMask(c.shape, c.rate, id);
    const maxAbs = async (a: tf.Tensor, b: tf.Tensor) => {
      const [u, v] = [await a.data(), await b.data()];
      let m = 0;
      for (let i = 0; i < u.length; i++) m = Math.max(m, Math.abs(u[i] - v[i]));
      return m;
    };
    const y = gpuDropout(x, c.rate, id);
    const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gpuDropout(t, c.rate, id), w)))(x);
    // Σ (∂/∂x Σ dropout(x·w)²)² with respect to w: differentiates the dropout's gradient.
    const second = tf.grad((ww: tf.Tensor) => tf.sum(tf.square(tf.grad((t: tf.Tensor) => tf.sum(tf.square(gpuDropout(tf.mul(t, ww), c.rate, id))))(x))))(w);
    const secondRef = tf.grad((ww: tf.Tensor) => tf.sum(tf.square(tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.mul(tf.mul(t, ww), mask))))(x))))(w);
    const out = {
      y: await maxAbs(y, tf.mul(x, mask)),
      dx: await maxAbs(dx, tf.mul(w, mask)),
      second: (await maxAbs(second, secondRef)) / Math.max(1e-30, (await tf.max(tf.abs(secondRef)).data())[0]),
    };
    tf.dispose([x, w, mask, y, dx, second, secondRef]);
    return out;
  } finally {
    restore();
  }
}

/** Fused BCE and softmax cross-entropy against tfjs's ops: values and gradients (with an upstream factor). */
async function fusedLossesCheck(c: { b: number; k: number; scale: number; seed: number }): Promise<Record<string, Diff>> {
  await useWebGPU();
  const x = tf.tidy(() => tf.mul(tf.randomNormal([c.b], 0, 1, 'float32', c.seed), c.scale));
  const logits = tf.tidy(() => tf.mul(tf.randomNormal([c.b, c.k], 0, 1, 'float32', c.seed + 1), c.scale)) as tf.Tensor2D;
  const labels = tf.tidy(() => tf.cast(tf.mod(tf.range(0, c.b, 1, 'int32'), c.k), 'int32')) as tf.Tensor1D;
  const run = () =>
    tf.tidy(() => {
      const f = (t: tf.Tensor, l: tf.Tensor) => tf.add(tf.mul(tf.add(bceWithLogits(t, 1), tf.mul(bceWithLogits(t, 0), 0.5)), 3), tf.mul(softmaxCrossEntropy(l as tf.Tensor2D, labels), 1.7));
      const [dx, dl] = tf.grads(f)([x, logits]);
      return [bceWithLogits(x, 1), bceWithLogits(x, 0), softmaxCrossEntropy(logits, labels), dx, dl];
    });
  const ref = run();
  const restore = installFusedLosses();
  setFusedLosses(webgpuFusedLosses);
  const got = run();
  setFusedLosses(null);
  restore();
  const names = ['bce1', 'bce0', 'ce', 'dx', 'dlogits'];
  const out: Record<string, Diff> = {};
  for (let i = 0; i < names.length; i++) out[names[i]] = diff(await got[i].data(), await ref[i].data());
  tf.dispose([x, logits, labels, ...ref, ...got]);
  return out;
}

/** The fused moving-average update against tfjs's three ops. */
async function movingAverageCheck(c: { n: number; momentum: number; seed: number }): Promise<Diff> {
  await useWebGPU();
  const m = tf.randomNormal([c.n], 0, 1, 'float32', c.seed);
  const b = tf.randomNormal([c.n], 3, 2, 'float32', c.seed + 1);
  const ref = tfjsMovingAverage(m, b, c.momentum);
  const restore = installMovingAverage();
  const got = movingAverageWebGPU(m, b, c.momentum);
  restore();
  const d = diff(await got.data(), await ref.data());
  tf.dispose([m, b, ref, got]);
  return d;
}

/** Fused Adam against tfjs's Adam: same start, same gradients, several steps; variables and moments. */
async function adam(c: { shapes: number[][]; steps: number; lr: number; beta1: number; beta2: number; seed: number; shareOne: boolean }): Promise<{ vars: Diff; moments: Diff; fused: boolean }> {
  await useWebGPU();
  const init = c.shapes.map((s, i) => tf.randomNormal(s, 0, 1, 'float32', c.seed + i));
  const grads = Array.from({ length: c.steps }, (_, k) => c.shapes.map((s, i) => tf.randomNormal(s, 0, 0.1, 'float32', c.seed + 100 * (k + 1) + i)));
  const run = async (opt: tf.AdamOptimizer) => {
    const vars = init.map((t, i) => tf.variable(t.clone(), true, `adamtest_${c.seed}_${opt.constructor.name}_${i}_${Math.random()}`));
    // A view kept alive shares the first variable's buffer: the update must not write through it.
    const view = c.shareOne ? tf.reshape(vars[0], [-1]) : null;
    const viewBefore = view ? await view.data() : null;
    for (const g of grads) opt.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: g[i] })));
    const values = (await Promise.all(vars.map((v) => v.data()))).flatMap((d) => Array.from(d));
    const w = await opt.getWeights();
    const moments = (await Promise.all(w.slice(1).map((n) => n.tensor.data()))).flatMap((d) => Array.from(d));
    if (view && viewBefore) {
      const after = await view.data();
      for (let i = 0; i < after.length; i++) if (after[i] !== viewBefore[i]) throw new Error('a view of a variable changed under the update');
    }
    view?.dispose();
    vars.forEach((v) => v.dispose());
    opt.dispose();
    return { values, moments };
  };
  const ref = await run(tf.train.adam(c.lr, c.beta1, c.beta2) as tf.AdamOptimizer);
  const fusedOpt = new FusedAdamOptimizer(c.lr, c.beta1, c.beta2);
  const got = await run(fusedOpt);
  tf.dispose([...init, ...grads.flat()]);
  return { vars: diff(got.values, ref.values), moments: diff(got.moments, ref.moments), fused: fusedOpt.lastUpdateFused };
}

/** The upload path: host tensors read back exactly; shared constants survive their siblings' disposal. */
async function uploads(): Promise<{ ok: boolean; constantHits: number; details: string[] }> {
  await useWebGPU();
  const u = installUploadPath(webgpu());
  const details: string[] = [];
  try {
    const check = async (t: tf.Tensor, expect: number[]) => {
      const got = Array.from(await tf.add(t, tf.zerosLike(t)).data());
      if (got.length !== expect.length || got.some((v, i) => v !== expect[i])) details.push(`${t.dtype}[${t.shape}] read ${got.slice(0, 8)} expected ${expect.slice(0, 8)}`);
    };
    const a = tf.scalar(0.5);
    const b = tf.scalar(0.5);
    await check(a, [0.5]);
    a.dispose();
    await check(b, [0.5]); // shares a's buffer
    await check(tf.tensor1d([1, 2, 3], 'int32'), [1, 2, 3]);
    await check(tf.tensor1d([true, false, true], 'bool').cast('int32'), [1, 0, 1]);
    const big = Array.from({ length: 1000 }, (_, i) => i * 0.25 - 7);
    await check(tf.tensor1d(big), big);
    await check(tf.tensor2d([[1e-7, -3], [2, 4]]), [Math.fround(1e-7), -3, 2, 4]);
    // A variable made from a shared constant stays independent of the constant.
    const v = tf.variable(tf.zeros([3]));
    const opt = new FusedAdamOptimizer(0.1, 0.9, 0.999);
    opt.applyGradients([{ name: v.name, tensor: tf.tensor1d([1, -1, 2]) }]);
    await check(tf.zeros([3]), [0, 0, 0]);
    const moved = Array.from(await v.data());
    if (moved.every((x) => x === 0)) details.push('variable did not move');
    v.dispose();
    opt.dispose();
    return { ok: details.length === 0, constantHits: u.stats.constantHits, details };
  } finally {
    u.restore();
  }
}

/** Raw draws for distribution tests, read back to the host. */
async function draw(c: { kind: 'uniform' | 'normal' | 'int' | 'dropout'; n: number; a: number; b: number; seed: number; stream: number }): Promise<number[]> {
  await useWebGPU();
  const id = { seed: c.seed, stream: c.stream };
  const t =
    c.kind === 'uniform'
      ? gpuRandomUniform([c.n], c.a, c.b, id)
      : c.kind === 'normal'
        ? gpuRandomNormal([c.n], c.a, c.b, id)
        : c.kind === 'int'
          ? gpuRandomUniformInt([c.n], c.a, c.b, id)
          : gpuDropoutMask([c.n], c.a, id);
  const d = Array.from(await t.data());
  t.dispose();
  return d;
}

type Counts = ReturnType<ReturnType<typeof installGpuCounters>['snapshot']>;
interface TinyRun {
  losses: number[][];
  weights: number[];
  moved: boolean;
  leaked: number;
  /** GPU calls over the counted steps. */
  counts: Counts;
  /** Dispatch-path counters over the counted steps (null when the dispatch path is off). */
  stats: Record<string, number> | null;
}

/**
 * A tiny GAN trained with the fast path (options `fast`) on: `steps` steps, then `countSteps` counted
 * ones; losses of every step, final weights, tensors leaked and GPU calls over the counted steps.
 */
async function trainTiny(c: { gan: GanType; steps: number; countSteps: number; model?: GanConfigInput }, fastOptions: FastWebGPUOptions): Promise<TinyRun> {
  await useWebGPU();
  const fast = enableFastWebGPU(fastOptions);
  try {
    const gan = createGan(parseGanConfig({ gan: c.gan, imageSize: 16, nCritic: 1, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 }, seed: 11, ...c.model }));
    const trainer = createTrainer(gan);
    const images = tf.randomUniform([4, 16, 16, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 1, 1, 0], 'int32');
    const before = (await gan.getWeightsAsync()).tensors.flatMap((t) => Array.from(t.data));
    const losses: number[][] = [];
    const step = async () => {
      const { dLoss, gLoss } = trainer.step({ images, labels });
      losses.push([(await dLoss.data())[0], (await gLoss.data())[0]]);
      tf.dispose([dLoss, gLoss]);
    };
    for (let i = 0; i < c.steps; i++) await step();
    const n0 = tf.memory().numTensors;
    const statsBefore = fast.dispatch ? { ...fast.dispatch } : null;
    const counters = installGpuCounters(webgpu().device);
    for (let i = 0; i < c.countSteps; i++) await step();
    counters.uninstall();
    const leaked = tf.memory().numTensors - n0;
    const stats = fast.dispatch && statsBefore ? Object.fromEntries(Object.entries(fast.dispatch).map(([k, v]) => [k, v - statsBefore[k as keyof typeof statsBefore]])) : null;
    const weights = (await gan.getWeightsAsync()).tensors.flatMap((t) => Array.from(t.data));
    trainer.dispose();
    gan.dispose();
    tf.dispose([images, labels]);
    return { losses, weights, moved: weights.some((v, i) => v !== before[i]), leaked, counts: counters.snapshot(), stats };
  } finally {
    fast.disable();
  }
}

/** A few training steps of a tiny GAN with the fast path on; GPU counts over a steady-state window. */
async function training(c: { gan: GanType; steps: number; countSteps: number; model?: GanConfigInput }): Promise<Omit<TinyRun, 'weights'>> {
  const { weights: _, ...r } = await trainTiny(c, { seed: 5 });
  return r;
}

/**
 * The same tiny GAN trained twice from the same seeds, with the dispatch path (cached uniforms and bind
 * groups) on and off: losses and weights must be identical, since the same programs run on the same
 * data. Counts over the last steps show what the caches saved.
 */
async function dispatchPath(c: { gan: GanType; steps: number; countSteps: number }): Promise<{ on: TinyRun; off: TinyRun }> {
  const off = await trainTiny(c, { seed: 5, dispatch: false });
  const on = await trainTiny(c, { seed: 5, dispatch: true });
  return { on, off };
}

/**
 * The dropout masks of one step of a fresh tiny ACGAN trainer seeded `seed` on the fast path (fused
 * dropout, masks drawn on the GPU), each as 0/1 per element, with the seed each was drawn with (null:
 * none, the fast path's page-wide stream). The fast path is enabled anew with the same base seed for each
 * call, as in two browsers.
 */
async function dropoutMasks(c: { seed: number }): Promise<{ seeds: (number | null)[]; masks: number[][]; fused: boolean }> {
  await useWebGPU();
  const fast = enableFastWebGPU({ seed: 5 });
  const gpuOps = randomOps();
  const seeds: (number | null)[] = [];
  const kept: tf.Tensor[] = [];
  setRandomOps({
    ...gpuOps,
    dropout: (x, rate, seed) => {
      const y = gpuOps.dropout(x, rate, seed);
      seeds.push(seed ?? null);
      kept.push(tf.keep(tf.notEqual(y, 0)));
      return y;
    },
  });
  try {
    const gan = createGan(parseGanConfig({ gan: 'acgan', imageSize: 16, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4, dropout: 0.25 }, seed: 11 }));
    const trainer = createTrainer(gan, c.seed);
    const images = tf.randomUniform([4, 16, 16, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 1, 1, 0], 'int32');
    const { dLoss, gLoss } = trainer.step({ images, labels });
    const masks = await Promise.all(kept.map(async (t) => Array.from(await t.data())));
    tf.dispose([dLoss, gLoss, images, labels, ...kept]);
    trainer.dispose();
    gan.dispose();
    return { seeds, masks, fused: fusedDropoutInstalled() };
  } finally {
    setRandomOps(gpuOps);
    fast.disable();
  }
}

/** Training on WebGL with the fast path's hooks installed (they must hand over to tfjs's own ops). */
async function webglFallback(): Promise<{ backend: string; losses: number[][]; moved: boolean; enabledAfter: boolean }> {
  await useWebGPU();
  const fast = enableFastWebGPU({ seed: 9 });
  try {
    if (!(await tf.setBackend('webgl'))) throw new Error('webgl backend did not initialise');
    await tf.ready();
    const gan = createGan(parseGanConfig({ gan: 'acgan', imageSize: 16, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 }, seed: 2 }));
    const trainer = createTrainer(gan);
    const images = tf.randomUniform([2, 16, 16, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 1], 'int32');
    const before = await gan.getWeightsAsync();
    const losses: number[][] = [];
    for (let i = 0; i < 2; i++) {
      const { dLoss, gLoss } = trainer.step({ images, labels });
      losses.push([(await dLoss.data())[0], (await gLoss.data())[0]]);
      tf.dispose([dLoss, gLoss]);
    }
    const after = await gan.getWeightsAsync();
    const moved = after.tensors.some((t, i) => t.data.some((v, j) => v !== before.tensors[i].data[j]));
    const backend = tf.getBackend();
    trainer.dispose();
    gan.dispose();
    tf.dispose([images, labels]);
    return { backend, losses, moved, enabledAfter: fastWebGPUEnabled() };
  } finally {
    fast.disable();
    await tf.setBackend('webgpu');
  }
}

tf.env().set('PROD', true);
registerMissingGradients();
Object.assign(globalThis, { __t: { convGemm, convGemmPasses, tuneCheck, convTiming, convGemmSecondOrder, wganGpConvGrads, backpropFilter, backpropInputTiled, reductionGradients, leakyReluGrad, batchNorm, generatorBatchNorm, layerNorm, fusedLayers, movingAverageCheck, fusedDropoutCheck, fusedLossesCheck, adam, uploads, draw, training, dispatchPath, dropoutMasks, webglFallback }, __pageReady: true });
// The fused attention's page functions (attentionPage.ts).
Object.assign((globalThis as unknown as { __t: object }).__t, attentionPageFunctions);
// WGAN-GP's fused penalty chain (issue 19; gpChainPage.ts).
Object.assign((globalThis as unknown as { __t: object }).__t, gpChainPageFunctions);
Object.assign((globalThis as unknown as { __t: object }).__t, subgroupPageFunctions);
