import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { setRandomOps } from '../../nn/random.ts';
import { setAdamFactory } from '../../nn/optimizer.ts';
import { setBatchNormTrain, tfjsBatchNormTrain } from '../../nn/batchNormTraining.ts';
import { batchNormTrainWebGPU, installBatchNormTrain, setBatchNormParallelism } from './batchNormTrain.ts';
import { makeConv2dBackpropFilterKernel, setBackpropFilterParallelism } from './conv2dBackpropFilter.ts';
import { FusedAdamOptimizer } from './fusedAdam.ts';
import { originalKernel, overrideKernel, type Restore } from './overrides.ts';
import { createGpuRandomOps } from './randomProvider.ts';
import { installFusedDropout } from './fusedDropout.ts';
import { installReductionGradients } from './reductionGradients.ts';
import { installLeakyReluGrad } from './leakyReluGrad.ts';
import { installUploadPath, type UploadStats } from './uploadPath.ts';
import { installDispatchPath, type DispatchStats } from './dispatchPath.ts';
import { installLayerNorm, layerNormalizeWebGPU } from './layerNorm.ts';
import { setLayerNormalize } from '../../nn/layerNormalize.ts';
import { installFusedLayers, webgpuFusedLayerOps } from './fusedLayers.ts';
import { setFusedLayerOps } from '../../nn/fusedLayerOps.ts';
import { installMovingAverage, movingAverageWebGPU } from './movingAverage.ts';
import { setMovingAverage } from '../../nn/movingAverage.ts';
import { installFusedLosses, webgpuFusedLosses } from './fusedLosses.ts';
import { setFusedLosses } from '../../gan/losses.ts';
import { installConvKernels } from './convKernels.ts';
import { adapterKeyOf, setSubgroupLanes, setTunerAdapter } from './convTuner.ts';
import { fixedSubgroupSize, installDirectiveHoisting } from './webgpuDevice.ts';
import { installGradientPenalty, webgpuFusedPenalty } from './gradientPenalty.ts';
import { setFusedPenalty } from '../../gan/losses.ts';
import { installColumnSum, setColumnSumParallelism } from './columnSum.ts';
import { installGatherGrad } from './gatherGrad.ts';
import { installAffineLeaky, webgpuAffineLeaky } from './affineLeaky.ts';
import { setAffineLeaky } from '../../nn/normLeaky.ts';
import { installFusedAttention, webgpuAttentionCore } from './fusedAttention.ts';
import { setAttentionCore } from '../../nn/attentionCore.ts';

/**
 * The fast path for GAN training on tfjs's webgpu backend, from this project's code (no fork of tfjs):
 * kernels registered for 'webgpu', gradients, a random-tensor provider and an Adam factory installed
 * through shared/nn hooks, and the backend's upload path replaced. Each part can be switched off (to
 * measure it, or to rule it out), and `disable()` restores stock tfjs.
 *
 * - random: latent noise, fake labels, dropout masks and GP weights drawn on the GPU (Philox).
 * - uploads: small constants uploaded once and shared; other uploads via writeBuffer into pooled buffers.
 * - gradients: Mean/Sum gradients without CPU-built arrays of ones; LeakyReLU's gradient in one dispatch;
 *   an embedding lookup's gradient in one dispatch (gatherGrad.ts).
 * - adam: one fused, in-place dispatch per variable, one submit per update.
 * - kernels: Conv2DBackpropFilter as a parallel split reduction (used when convGemm is off).
 * - convGemm: Conv2D, FusedConv2D (bias + activation epilogue), Conv2DBackpropInput and
 *   Conv2DBackpropFilter as implicit GEMMs with shared tiles and register blocking (convGemm.ts), tile
 *   configuration per shape from convTuner.ts.
 * - subgroups: where the device has `subgroups` and the adapter's subgroup size is fixed, the convGemm
 *   kernels' subgroup variant (shuffles instead of workgroup memory, fp32 accumulation) becomes a tuner
 *   candidate, and shader modules get their `enable` directives hoisted (webgpuDevice.ts; the backend must
 *   have been created by its registerWebGPUBackend). Not the untimed default: the tuner or forceTile
 *   picks it. Off, or where the check fails: the shared-memory kernels only.
 * - batchNorm: training-mode batch norm, and the generator's LeakyReLU after it, as fused forward/backward
 *   kernels (4 + 4 dispatches a layer, the LeakyReLU included).
 * - layerNorm: layer normalisation's core and its first and second derivatives, one dispatch each.
 * - fusedLayers: conv + bias (+ LeakyReLU) and dense + bias in one forward dispatch (fusedLayers.ts).
 * - movingAverage: the batch-norm moving statistics' update in one dispatch.
 * - losses: binary and softmax cross-entropy from logits, one dispatch forward and one backward.
 * - affineLeaky: a layer norm's γ·x̂ + β and the LeakyReLU after it in one dispatch, and its gradients (affineLeaky.ts).
 * - columnSum: sums over leading axes (bias and broadcast gradients) without a transpose (columnSum.ts).
 * - penalty: WGAN-GP's interpolation, gradient norms and (‖g‖ − 1)² penalty in fused kernels (gradientPenalty.ts).
 * - attention: the ViT and Swin critics' softmax attention (scores, bias, mask, softmax, weighted sum,
 *   head split and merge) in one dispatch forward and four backward (fusedAttention.ts).
 * - submitBatch: dispatches recorded per submit (tfjs's WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE, default 15).
 * - dispatch: uniforms uploaded once per distinct content, bind groups and layouts cached (dispatchPath.ts).
 */
export interface FastWebGPUOptions {
  /** Base seed of unseeded GPU draws (the GAN trainer seeds all of its own, dropout masks included). */
  seed?: number;
  random?: boolean;
  uploads?: boolean;
  gradients?: boolean;
  adam?: boolean;
  kernels?: boolean;
  /** This project's implicit-GEMM convolution kernels (forward, input and filter gradients). */
  convGemm?: boolean;
  /** The convGemm kernels' subgroup variant as a candidate, where the feature check passes (webgpuDevice.ts). */
  subgroups?: boolean;
  batchNorm?: boolean;
  layerNorm?: boolean;
  fusedLayers?: boolean;
  movingAverage?: boolean;
  losses?: boolean;
  /** A layer norm's affine part and the LeakyReLU after it as fused kernels (affineLeaky.ts). */
  affineLeaky?: boolean;
  /** Sums over leading axes, and Multiply's gradient for operands broadcast over them, without a transpose (columnSum.ts). */
  columnSum?: boolean;
  /** WGAN-GP's gradient-penalty interpolation and norm penalty as fused kernels (gradientPenalty.ts). */
  penalty?: boolean;
  /** Fused softmax attention for the transformer discriminators (fusedAttention.ts). */
  attention?: boolean;
  /** tfjs's tiled (matmul-like) Conv2DBackpropInput instead of its default direct kernel (WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE false). */
  convTransposeMM?: boolean;
  submitBatch?: number;
  dispatch?: boolean;
}

export interface FastWebGPU {
  readonly options: Required<FastWebGPUOptions>;
  readonly uploads: UploadStats | null;
  readonly dispatch: DispatchStats | null;
  disable(): void;
}

export const DEFAULT_SUBMIT_BATCH = 64;

let active: FastWebGPU | null = null;

/** Whether the fast path is enabled now. */
export function fastWebGPUEnabled(): boolean {
  return active !== null;
}

/**
 * Enable the fast path on the current backend, which must be webgpu. Enabling while enabled returns
 * the active handle unchanged (disable it first to change options).
 */
export function enableFastWebGPU(opts: FastWebGPUOptions = {}): FastWebGPU {
  if (active) return active;
  if (tf.getBackend() !== 'webgpu') throw new Error(`enableFastWebGPU needs the webgpu backend, but the current backend is ${tf.getBackend() ?? 'none'}`);
  const options: Required<FastWebGPUOptions> = {
    seed: opts.seed ?? 0x2545f491,
    random: opts.random ?? true,
    uploads: opts.uploads ?? true,
    gradients: opts.gradients ?? true,
    adam: opts.adam ?? true,
    kernels: opts.kernels ?? true,
    convGemm: opts.convGemm ?? true,
    subgroups: opts.subgroups ?? true,
    batchNorm: opts.batchNorm ?? true,
    layerNorm: opts.layerNorm ?? true,
    fusedLayers: opts.fusedLayers ?? true,
    movingAverage: opts.movingAverage ?? true,
    losses: opts.losses ?? true,
    columnSum: opts.columnSum ?? true,
    affineLeaky: opts.affineLeaky ?? true,
    penalty: opts.penalty ?? true,
    attention: opts.attention ?? true,
    convTransposeMM: opts.convTransposeMM ?? false,
    submitBatch: opts.submitBatch ?? DEFAULT_SUBMIT_BATCH,
    dispatch: opts.dispatch ?? true,
  };
  if (!(Number.isInteger(options.submitBatch) && options.submitBatch >= 1)) throw new Error(`submitBatch must be a positive integer, got ${options.submitBatch}`);
  const backend = tf.backend() as WebGPUBackend;
  const undo: Restore[] = [];
  // SwiftShader runs the GPU on a few CPU threads: split reductions into fewer, longer slices there.
  const swiftshader = ((backend.adapterInfo as unknown as { architecture?: string }).architecture ?? '') === 'swiftshader';
  let uploads: UploadStats | null = null;
  let dispatch: DispatchStats | null = null;

  if (options.uploads) {
    const u = installUploadPath(backend);
    uploads = u.stats;
    undo.push(u.restore);
  }
  if (options.dispatch) {
    const d = installDispatchPath(backend);
    dispatch = d.stats;
    undo.push(d.restore);
  }
  if (options.random) {
    setRandomOps(createGpuRandomOps(options.seed));
    undo.push(() => setRandomOps(null), installFusedDropout());
  }
  if (options.gradients) undo.push(installReductionGradients(), installLeakyReluGrad(), installGatherGrad());
  if (options.adam) {
    setAdamFactory((lr, b1, b2) => new FusedAdamOptimizer(lr, b1, b2));
    undo.push(() => setAdamFactory(null));
  }
  if (options.kernels) {
    setBackpropFilterParallelism(swiftshader ? 1 << 11 : 1 << 17);
    undo.push(overrideKernel('Conv2DBackpropFilter', 'webgpu', makeConv2dBackpropFilterKernel(originalKernel('Conv2DBackpropFilter', 'webgpu'))));
  }
  if (options.convGemm) {
    // The filter gradient's slices: a few workgroups per SwiftShader thread, about 8 per SM on a large GPU.
    setTunerAdapter(adapterKeyOf(backend), swiftshader ? 16 : 1024, swiftshader);
    const lanes = options.subgroups ? fixedSubgroupSize(backend.device) : 0;
    if (lanes) undo.push(installDirectiveHoisting(backend.device));
    setSubgroupLanes(lanes);
    undo.push(() => setSubgroupLanes(0), installConvKernels());
  }
  /** Register a part's kernels, then point its shared/nn (or shared/gan) hook at them; undone in reverse. */
  const hook = <T>(on: boolean, install: () => Restore, set: (impl: T | null) => void, impl: T) => {
    if (!on) return;
    undo.push(install());
    set(impl);
    undo.push(() => set(null));
  };
  if (options.batchNorm) setBatchNormParallelism(swiftshader ? 1 << 8 : 1 << 15);
  hook(options.batchNorm, installBatchNormTrain, setBatchNormTrain, (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number, alpha?: number) => (tf.getBackend() === 'webgpu' ? batchNormTrainWebGPU(x, gamma, beta, eps, alpha) : tfjsBatchNormTrain(x, gamma, beta, eps, alpha)));
  hook(options.layerNorm, installLayerNorm, setLayerNormalize, layerNormalizeWebGPU);
  hook(options.fusedLayers, installFusedLayers, setFusedLayerOps, webgpuFusedLayerOps);
  hook(options.movingAverage, installMovingAverage, setMovingAverage, movingAverageWebGPU);
  hook(options.losses, installFusedLosses, setFusedLosses, webgpuFusedLosses);
  hook(options.penalty, installGradientPenalty, setFusedPenalty, webgpuFusedPenalty);
  hook(options.affineLeaky, installAffineLeaky, setAffineLeaky, webgpuAffineLeaky);
  if (options.columnSum) {
    setColumnSumParallelism(swiftshader ? 1 : 1 << 15);
    undo.push(installColumnSum());
  }
  hook(options.attention, installFusedAttention, setAttentionCore, webgpuAttentionCore);
  if (options.convTransposeMM) {
    const f = 'WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE';
    const old = tf.env().get(f);
    tf.env().set(f, false);
    undo.push(() => tf.env().set(f, old));
  }
  const flag = 'WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE';
  const oldBatch = tf.env().get(flag);
  tf.env().set(flag, options.submitBatch);
  undo.push(() => tf.env().set(flag, oldBatch));

  const handle: FastWebGPU = {
    options,
    uploads,
    dispatch,
    disable() {
      if (active !== handle) return;
      while (undo.length) undo.pop()!();
      active = null;
    },
  };
  active = handle;
  return handle;
}
