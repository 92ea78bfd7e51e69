/**
 * In-page side of the penalty-chain checks in test/webgpu/kernels.test.ts (issue 19: fewer dispatches in WGAN-GP's second-order
 * chain). Registered into the test page's table by test/webgpu/page.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { parseGanConfig, type GanConfigInput } from '../../shared/config/ganConfig.ts';
import { createGan } from '../../shared/gan/gan.ts';
import { createTrainer } from '../../shared/gan/trainer.ts';
import { gradientPenalty } from '../../shared/gan/losses.ts';
import { realFakePass } from '../../shared/gan/realFakePass.ts';
import { enableFastWebGPU, type FastWebGPUOptions } from '../../shared/kernels/webgpu/index.ts';
import { installGpuCounters } from '../../shared/kernels/webgpu/gpuCounters.ts';
import { installKernelDispatches } from '../../bench/kernelDispatches.ts';
import { installGradientPenalty, webgpuFusedPenalty } from '../../shared/kernels/webgpu/gradientPenalty.ts';
import { installReductionGradients } from '../../shared/kernels/webgpu/reductionGradients.ts';
import { setFusedPenalty } from '../../shared/gan/losses.ts';
import { columnSumSlices, installColumnSum, setColumnSumParallelism } from '../../shared/kernels/webgpu/columnSum.ts';
import { installGatherGrad } from '../../shared/kernels/webgpu/gatherGrad.ts';
import { installAffineLeaky, webgpuAffineLeaky } from '../../shared/kernels/webgpu/affineLeaky.ts';
import { affineLeaky, setAffineLeaky } from '../../shared/nn/normLeaky.ts';
import { diff, wganGpCriticGrads, type Diff } from './pageSupport.ts';
export type { Diff } from './pageSupport.ts';

/** Runs `f` and returns its tensors' values with the programs it dispatched (`Kernel:Program` keys). */
async function valuesAndPrograms(f: () => tf.Tensor[]): Promise<{ values: Float32Array[]; programs: string[] }> {
  const k = installKernelDispatches(webgpu());
  let ts: tf.Tensor[];
  try {
    ts = tf.tidy(f);
  } finally {
    k.uninstall();
  }
  const values = await Promise.all(ts.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(ts);
  return { values, programs: [...k.snapshot().keys()] };
}

export async function useWebGPU(): Promise<void> {
  if (tf.getBackend() !== 'webgpu' && !(await tf.setBackend('webgpu'))) throw new Error('webgpu backend did not initialise');
  await tf.ready();
}

const webgpu = () => tf.backend() as WebGPUBackend;

/**
 * Dispatches of the phases of a WGAN-GP critic update (fast path on, tiny CNN critic), each as
 * `Kernel:Program` counts: the critic forward on the interpolates, its input gradient, the penalty's
 * whole variableGrads, the Wasserstein term's, and one whole trainer step (from the GPU counters).
 */
export async function gpDispatchPhases(c: { imageSize: number; batch: number; fast?: FastWebGPUOptions }): Promise<Record<string, { total: number; kernels: Record<string, number> }>> {
  await useWebGPU();
  const fast = enableFastWebGPU({ seed: 5, ...c.fast });
  const out: Record<string, { total: number; kernels: Record<string, number> }> = {};
  try {
    const gan = createGan(parseGanConfig({ gan: 'wgan-gp', imageSize: c.imageSize, nCritic: 1, generator: { baseChannels: 8 }, discriminator: { baseChannels: 8 }, seed: 11 } as GanConfigInput));
    const images = tf.randomUniform([c.batch, c.imageSize, c.imageSize, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
    const fake = tf.randomUniform([c.batch, c.imageSize, c.imageSize, 3], -1, 1, 'float32', 2) as tf.Tensor4D;
    const labels = tf.tensor1d(Array.from({ length: c.batch }, (_, i) => i % 2), 'int32');
    const dVars = gan.D.params.trainableVariables();
    const critic = (x: tf.Tensor4D) => gan.D.apply(x, labels, true).score;
    const measure = async (name: string, f: () => tf.Tensor | tf.Tensor[] | { value: tf.Tensor; grads: tf.NamedTensorMap }) => {
      // Once to compile, once counted.
      for (let pass = 0; pass < 2; pass++) {
        const k = pass ? installKernelDispatches(webgpu()) : null;
        const r = tf.tidy(() => {
          const v = f();
          const ts = Array.isArray(v) ? v : v instanceof tf.Tensor ? [v] : [v.value, ...Object.values(v.grads)];
          return ts;
        });
        await Promise.all(r.map((t) => t.data()));
        tf.dispose(r);
        if (k) {
          k.uninstall();
          const kernels = Object.fromEntries([...k.snapshot()].sort((a, b) => b[1] - a[1]));
          out[name] = { total: Object.values(kernels).reduce((s, v) => s + v, 0), kernels };
        }
      }
    };
    const xHat = tf.tidy(() => tf.add(tf.mul(images, 0.3), tf.mul(fake, 0.7))) as tf.Tensor4D;
    await measure('criticForward', () => critic(xHat));
    await measure('inputGradient', () => tf.grad((x: tf.Tensor) => tf.sum(critic(x as tf.Tensor4D)))(xHat));
    await measure('penalty', () => tf.variableGrads(() => gradientPenalty(critic, images, fake, 10, 7), dVars));
    await measure('wasserstein', () =>
      tf.variableGrads(() => {
        const s = realFakePass(gan.D, images, labels, fake, labels, true);
        return tf.sub(tf.mean(s.fake.score), tf.mean(s.real.score)) as tf.Scalar;
      }, dVars),
    );
    const trainer = createTrainer(gan);
    const step = async () => {
      const { dLoss, gLoss } = trainer.step({ images, labels });
      await Promise.all([dLoss.data(), gLoss.data()]);
      tf.dispose([dLoss, gLoss]);
    };
    await step();
    await step();
    const counters = installGpuCounters(webgpu().device);
    const k = installKernelDispatches(webgpu());
    await step();
    k.uninstall();
    counters.uninstall();
    const kernels = Object.fromEntries([...k.snapshot()].sort((a, b) => b[1] - a[1]));
    out.step = { total: counters.snapshot().dispatches, kernels };
    trainer.dispose();
    tf.dispose([images, fake, labels, xHat]);
    gan.dispose();
  } finally {
    fast.disable();
  }
  return out;
}

/**
 * The fused gradient penalty (interpolation, norms, penalty) against tfjs's ops of shared/gan/losses.ts:
 * the penalty of a small conv critic, its gradient with respect to the critic's weights (second order:
 * through the critic's input gradient), the penalty's gradient with respect to g directly, and the
 * interpolation's gradients with respect to ε, real and fake. `zeroSample` makes one sample's gradient
 * exactly zero (the 1e-12 inside the square root then decides the norm).
 */
export async function gpPenaltyCheck(c: { batch: number; size: number; ch: number; lambda: number; seed: number }): Promise<{ results: Record<string, Diff>; programs: string[] }> {
  await useWebGPU();
  const { batch: b, size, ch, seed } = c;
  const real = tf.randomUniform([b, size, size, 3], -1, 1, 'float32', seed) as tf.Tensor4D;
  const fake = tf.randomUniform([b, size, size, 3], -1, 1, 'float32', seed + 1) as tf.Tensor4D;
  const w1 = tf.randomNormal([3, 3, 3, ch], 0, 0.5, 'float32', seed + 2) as tf.Tensor4D;
  const w2 = tf.randomNormal([1, Math.ceil(size / 2), Math.ceil(size / 2), ch], 0, 0.3, 'float32', seed + 3);
  const g = tf.randomNormal([b, size, size, 3], 0, 0.02, 'float32', seed + 4);
  const eps = tf.randomUniform([b, 1, 1, 1], 0, 1, 'float32', seed + 5);
  const h = tf.randomNormal([b, size, size, 3], 0, 1, 'float32', seed + 6);
  // Penalty-like, as in the critic update: each score is Σ w2 · LeakyReLU(conv(x, W1)), stride 2.
  const critic = (w: tf.Tensor) => (x: tf.Tensor4D) => tf.sum(tf.mul(tf.leakyRelu(tf.conv2d(x, w as tf.Tensor4D, 2, 'same'), 0.2), w2), [1, 2, 3]) as tf.Tensor1D;
  const compute = () => {
    const value = gradientPenalty(critic(w1), real, fake, c.lambda, 77);
    const dW = tf.grad((w: tf.Tensor) => gradientPenalty(critic(w), real, fake, c.lambda, 77))(w1);
    // The penalty as a function of g alone: g's sample 0 is all zeros.
    const gz = tf.concat([tf.zerosLike(tf.slice(g, [0], [1])), tf.slice(g, [1], [b - 1])]);
    const onG = (t: tf.Tensor) => gradientPenalty((x) => tf.sum(tf.mul(x, t), [1, 2, 3]) as tf.Tensor1D, real, fake, c.lambda, 77);
    const pg = onG(gz);
    const dg = tf.grad(onG)(gz);
    // The interpolation alone, through a weighted sum, with respect to each of its inputs.
    const fused = webgpuFusedPenaltyActive();
    const interp = (e: tf.Tensor, r: tf.Tensor, f: tf.Tensor) => (fused ? webgpuFusedPenalty.interpolate(e, r as tf.Tensor4D, f as tf.Tensor4D)! : tf.add(tf.mul(e, r), tf.mul(tf.sub(1, e), f)));
    const xHat = interp(eps, real, fake);
    const [de, dr, df] = tf.grads((e: tf.Tensor, r: tf.Tensor, f: tf.Tensor) => tf.sum(tf.mul(interp(e, r, f), h)))([eps, real, fake]);
    return [value, dW, pg, dg, xHat, de, dr, df];
  };
  const names = ['penalty', 'dW', 'penaltyOfG', 'dg', 'interpolate', 'dEps', 'dReal', 'dFake'];
  fusedActive = false;
  const ref = await valuesAndPrograms(compute);
  const restore = installGradientPenalty();
  setFusedPenalty(webgpuFusedPenalty);
  fusedActive = true;
  let got: { values: Float32Array[]; programs: string[] };
  try {
    got = await valuesAndPrograms(compute);
  } finally {
    fusedActive = false;
    setFusedPenalty(null);
    restore();
  }
  tf.dispose([real, fake, w1, w2, g, eps, h]);
  const results: Record<string, Diff> = {};
  names.forEach((n, i) => (results[n] = diff(got.values[i], ref.values[i])));
  return { results, programs: got.programs };
}

let fusedActive = false;
const webgpuFusedPenaltyActive = () => fusedActive;

/**
 * Mean and Sum gradients over `axes` (first order, and second order through them) with the fast path's
 * one-dispatch broadcast against tfjs's own gradients (ones(x.shape) times the reshaped dy).
 */
export async function broadcastGradCheck(c: { shape: number[]; axes: number[]; seed: number }): Promise<{ results: Record<string, Diff>; programs: string[] }> {
  await useWebGPU();
  const x = tf.randomNormal(c.shape, 0, 1, 'float32', c.seed);
  const w = tf.randomNormal(c.shape, 0, 1, 'float32', c.seed + 1);
  const compute = () => {
    // Sum's broadcast (no division) first: the Mean's after it must not reuse its program.
    const gSum = tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.sum(tf.mul(t, w), c.axes))))(x);
    const gMean = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.mean(tf.mul(t, w), c.axes), 3)))(x);
    const second = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.square(tf.grad((u: tf.Tensor) => tf.sum(tf.square(tf.mean(tf.mul(u, u), c.axes))))(t)), w)))(x);
    return [gMean, gSum, second];
  };
  const ref = await valuesAndPrograms(compute);
  const restore = installReductionGradients();
  let got: { values: Float32Array[]; programs: string[] };
  try {
    got = await valuesAndPrograms(compute);
  } finally {
    restore();
  }
  tf.dispose([x, w]);
  const results: Record<string, Diff> = {};
  ['mean', 'sum', 'second'].forEach((n, i) => (results[n] = diff(got.values[i], ref.values[i])));
  return { results, programs: got.programs };
}

/**
 * GPU dispatches of one steady-state WGAN-GP training step (tiny CNN critic and generator, 16 px, batch
 * 2) with the fast path's options `fast`, counted by the GPU counters after two warm-up steps.
 */
export async function wganGpStepDispatches(c: { fast?: FastWebGPUOptions }): Promise<{ dispatches: number; kernels: Record<string, number> }> {
  await useWebGPU();
  const fast = enableFastWebGPU({ seed: 5, ...c.fast });
  try {
    const gan = createGan(parseGanConfig({ gan: 'wgan-gp', imageSize: 16, nCritic: 1, generator: { baseChannels: 8 }, discriminator: { baseChannels: 8 }, seed: 11 } as GanConfigInput));
    const images = tf.randomUniform([2, 16, 16, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 1], 'int32');
    const trainer = createTrainer(gan);
    const step = async () => {
      const { dLoss, gLoss } = trainer.step({ images, labels });
      const v = await Promise.all([dLoss.data(), gLoss.data()]);
      tf.dispose([dLoss, gLoss]);
      if (!v.every((a) => Number.isFinite(a[0]))) throw new Error('loss is not finite');
    };
    await step();
    await step();
    const counters = installGpuCounters(webgpu().device);
    const k = installKernelDispatches(webgpu());
    try {
      await step();
    } finally {
      k.uninstall();
      counters.uninstall();
    }
    trainer.dispose();
    gan.dispose();
    tf.dispose([images, labels]);
    return { dispatches: counters.snapshot().dispatches, kernels: Object.fromEntries([...k.snapshot()].sort((a, b) => b[1] - a[1])) };
  } finally {
    fast.disable();
  }
}

/**
 * Sums over leading axes and Multiply's gradient for an operand broadcast over them (columnSum.ts)
 * against tfjs's Sum kernel and gradient: plain sums (keepDims and not), the gradients of Σ w·(x·γ + β)
 * with respect to x, γ and β, and a penalty-like second order, ‖∂/∂x Σ w·LeakyReLU(x·γ + β)²‖²
 * differentiated with respect to γ. `threads` is the parallelism asked of the column sums (1: one
 * dispatch; more: row slices and a second dispatch).
 */
export async function columnSumCheck(c: { shape: number[]; axes: number[]; threads: number; seed: number }): Promise<{ results: Record<string, Diff>; programs: string[]; slices: number }> {
  await useWebGPU();
  const k = c.axes.length;
  const rest = c.shape.slice(k);
  const x = tf.randomNormal(c.shape, 0, 1, 'float32', c.seed);
  const w = tf.randomNormal(c.shape, 0, 1, 'float32', c.seed + 1);
  const gamma = tf.randomNormal(rest, 1, 0.3, 'float32', c.seed + 2);
  const beta = tf.randomNormal(rest, 0, 0.3, 'float32', c.seed + 3);
  const compute = () => {
    const s = tf.sum(x, c.axes);
    const sk = tf.sum(w, c.axes, true);
    const [dx, dg, db] = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.add(tf.mul(a, g), b), w)))([x, gamma, beta]);
    const layer = (a: tf.Tensor, g: tf.Tensor) => tf.mul(tf.square(tf.leakyRelu(tf.add(tf.mul(a, g), beta), 0.2)), w);
    const second = tf.grad((g: tf.Tensor) => tf.sum(tf.square(tf.grad((a: tf.Tensor) => tf.sum(layer(a, g)))(x))))(gamma);
    return [s, sk, dx, dg, db, second];
  };
  const ref = await valuesAndPrograms(compute);
  const restore = installColumnSum();
  setColumnSumParallelism(c.threads);
  let got: { values: Float32Array[]; programs: string[] };
  const rows = tf.util.sizeFromShape(c.shape.slice(0, k));
  const slices = columnSumSlices(rows, tf.util.sizeFromShape(rest));
  try {
    got = await valuesAndPrograms(compute);
  } finally {
    setColumnSumParallelism(1 << 15);
    restore();
  }
  tf.dispose([x, w, gamma, beta]);
  const results: Record<string, Diff> = {};
  ['sum', 'sumKeepDims', 'dx', 'dGamma', 'dBeta', 'second'].forEach((n, i) => (results[n] = diff(got.values[i], ref.values[i])));
  return { results, programs: got.programs, slices };
}

/**
 * An embedding lookup's gradient (gatherGrad.ts) against tfjs's: Σ w·gather(E, idx) and a projection-like
 * penalty ‖∂/∂x Σ gather(E, idx)·x²‖² differentiated with respect to E, for a table of `table` shape and
 * `idx` with repeats (and rows never looked up).
 */
export async function gatherGradCheck(c: { table: number[]; idx: number[]; seed: number }): Promise<{ results: Record<string, Diff>; programs: string[] }> {
  await useWebGPU();
  const e = tf.randomNormal(c.table, 0, 1, 'float32', c.seed);
  const idx = tf.tensor1d(c.idx, 'int32');
  const outShape = [c.idx.length, ...c.table.slice(1)];
  const w = tf.randomNormal(outShape, 0, 1, 'float32', c.seed + 1);
  const x = tf.randomNormal(outShape, 0, 1, 'float32', c.seed + 2);
  const compute = () => {
    const first = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), w)))(e);
    const second = tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.grad((u: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), tf.square(u))))(x))))(e);
    return [first, second];
  };
  const ref = await valuesAndPrograms(compute);
  const restore = installGatherGrad();
  let got: { values: Float32Array[]; programs: string[] };
  try {
    got = await valuesAndPrograms(compute);
  } finally {
    restore();
  }
  tf.dispose([e, idx, w, x]);
  return { results: { first: diff(got.values[0], ref.values[0]), second: diff(got.values[1], ref.values[1]) }, programs: got.programs };
}

/**
 * The fused layer-norm affine + LeakyReLU (affineLeaky.ts) against tfjs's multiply, add and LeakyReLU:
 * output, gradients with respect to x̂, γ and β, penalty-like second orders ‖∂/∂x Σ w·f(x)‖² with
 * respect to γ (f = AL(x, γ, β)) and with respect to x (f = AL(x², γ, β), so that it is not zero).
 * `threads` as in columnSumCheck.
 */
export async function affineLeakyCheck(c: { shape: number[]; alpha: number; threads: number; seed: number }): Promise<{ results: Record<string, Diff>; programs: string[] }> {
  await useWebGPU();
  const ch = c.shape[c.shape.length - 1];
  const x = tf.randomNormal(c.shape, 0, 1, 'float32', c.seed);
  const w = tf.randomNormal(c.shape, 0, 1, 'float32', c.seed + 1);
  const gamma = tf.randomNormal([ch], 1, 0.5, 'float32', c.seed + 2);
  const beta = tf.randomNormal([ch], 0, 0.5, 'float32', c.seed + 3);
  const al = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => affineLeaky(a, g, b, c.alpha);
  const compute = () => {
    const y = al(x, gamma, beta);
    const [dx, dg, db] = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(al(a, g, b), w)))([x, gamma, beta]);
    const inner = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(al(t, g, b), w)))(a);
    // With respect to β it is zero almost everywhere and tfjs finds no path (β reaches the inner gradient only through the mask).
    const sg = tf.grad((g: tf.Tensor) => tf.sum(tf.square(inner(x, g, beta))))(gamma);
    const innerSq = (a: tf.Tensor) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(al(tf.square(t), gamma, beta), w)))(a);
    const sx = tf.grad((a: tf.Tensor) => tf.sum(tf.square(innerSq(a))))(x);
    return [y, dx, dg, db, sg, sx];
  };
  const ref = await valuesAndPrograms(compute);
  const restore = installAffineLeaky();
  setAffineLeaky(webgpuAffineLeaky);
  setColumnSumParallelism(c.threads);
  let got: { values: Float32Array[]; programs: string[] };
  try {
    got = await valuesAndPrograms(compute);
  } finally {
    setColumnSumParallelism(1 << 15);
    setAffineLeaky(null);
    restore();
  }
  tf.dispose([x, w, gamma, beta]);
  const results: Record<string, Diff> = {};
  ['y', 'dx', 'dGamma', 'dBeta', 'secondGamma', 'secondX'].forEach((n, i) => (results[n] = diff(got.values[i], ref.values[i])));
  return { results, programs: got.programs };
}

/**
 * A tiny WGAN-GP critic's loss and every weight gradient (penalty included) on the fast path, with the
 * options `off` switched off and with everything on (penalty draws seeded alike).
 */
export async function wganGpOptionGrads(c: { off: FastWebGPUOptions }): Promise<{ loss: Diff; grads: Diff; n: number }> {
  return wganGpCriticGrads({ imageSize: 16, batch: 3, labels: [0, 1, 1] }, c.off, {});
}

export const gpChainPageFunctions = { gpDispatchPhases, gpPenaltyCheck, broadcastGradCheck, wganGpStepDispatches, columnSumCheck, gatherGradCheck, affineLeakyCheck, wganGpOptionGrads };
