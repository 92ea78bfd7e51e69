/**
 * In-page side of the subgroup checks of kernels.test.ts (its subgroup describe): the implicit-GEMM
 * convolutions' subgroup variant (shared/kernels/webgpu/convGemm.ts) against stock tfjs-webgpu and direct
 * loops on the host, the device with `subgroups` (webgpuDevice.ts), the `enable` hoisting, and the
 * fallbacks. Registered into the page's function table by test/webgpu/page.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { installConvKernels } from '../../shared/kernels/webgpu/convKernels.ts';
import { forceSubgroupFallback } from '../../shared/kernels/webgpu/convGemm.ts';
import { candidateTiles, chooseTile, clearTunings, forceTile, setSubgroupLanes, setTunerAdapter, subgroupLanes, tuneConvolutions, type TuneResult } from '../../shared/kernels/webgpu/convTuner.ts';
import type { ConvGeometry } from '../../shared/kernels/webgpu/convGemm.ts';
import { enableFastWebGPU } from '../../shared/kernels/webgpu/index.ts';
import { fixedSubgroupSize, installDirectiveHoisting, registerWebGPUBackend } from '../../shared/kernels/webgpu/webgpuDevice.ts';
import { diff, useWebGPU, type Diff } from './pageSupport.ts';

// Before any page function initialises the backend: its device then asks for `subgroups` where offered.
const registered = registerWebGPUBackend();

export interface SubgroupCase {
  pass: 'forward' | 'fused' | 'inputGrad' | 'filterGrad';
  x: [number, number, number, number];
  filter: [number, number, number, number];
  stride: number;
  pad: 'same' | 'valid';
  /** Tile configuration to force (a subgroup one, `sg…`, or a shared-memory one). */
  tile: string;
  activation?: 'linear' | 'relu' | 'leakyrelu' | 'sigmoid';
  alpha?: number;
  seed: number;
  /** The feature check's outcome: false runs as where it fails (no subgroup lanes). Default true. */
  subgroups?: boolean;
  /** The subgroup programs' in-shader fallback (no shuffles). */
  fallback?: boolean;
}

export interface SubgroupDiff extends Diff {
  /** Against direct loops on the host. */
  host: Diff;
  /** Shader keys of the programs run. */
  programs: string[];
  /** The subgroup size the kernels were given (the feature check's, 0 when it failed or was forced off). */
  lanes: number;
  /** The validation error scope around the run, and error messages of the shader modules compiled in it. */
  validation: string | null;
  compileErrors: string[];
}

function device(): GPUDevice {
  return (tf.backend() as WebGPUBackend).device;
}

/** What the page's backend was created with. */
async function subgroupDevice(): Promise<{ registered: boolean; adapterHas: boolean; deviceHas: boolean; minSize: number; maxSize: number; lanes: number; candidates: string[]; lanesWhileEnabled: number; lanesAfter: number; hoistingWhileEnabled: boolean; hoistingAfter: boolean }> {
  await useWebGPU();
  const adapter = await navigator.gpu.requestAdapter();
  const info = (adapter?.info ?? {}) as unknown as { subgroupMinSize?: number; subgroupMaxSize?: number };
  const d = device();
  const own = () => Object.prototype.hasOwnProperty.call(d, 'createShaderModule');
  const fast = enableFastWebGPU();
  const lanesWhileEnabled = subgroupLanes();
  const candidates = candidateTiles().map((t) => `${t.name}${t.lanes ? `:${t.wx}x${t.wy}` : ''}`);
  const hoistingWhileEnabled = own();
  fast.disable();
  return {
    registered,
    adapterHas: adapter?.features.has('subgroups') ?? false,
    deviceHas: d.features.has('subgroups'),
    minSize: info.subgroupMinSize ?? 0,
    maxSize: info.subgroupMaxSize ?? 0,
    lanes: fixedSubgroupSize(d),
    candidates,
    lanesWhileEnabled,
    lanesAfter: subgroupLanes(),
    hoistingWhileEnabled,
    hoistingAfter: own(),
  };
}

/** The three passes by direct loops on the host (NHWC, TensorFlow's padding), and the forward's epilogue. */
function hostConv(c: SubgroupCase, x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number>, dy: ArrayLike<number>, ys: number[]): Float64Array {
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
    for (let i = 0; i < out.length; i++) {
      const v = out[i] + bias[i % O];
      const a = c.activation ?? 'linear';
      out[i] = a === 'relu' ? Math.max(v, 0) : a === 'leakyrelu' ? (v >= 0 ? v : alpha * v) : a === 'sigmoid' ? 1 / (1 + Math.exp(-v)) : v;
    }
  }
  return out;
}

/**
 * The convolution kernels of convKernels.ts with the subgroup variant available (lanes from the feature
 * check, `enable` hoisting on the device) and `tile` forced, around `fn`; everything restored after.
 */
async function withConvKernels<T>(c: { tile: string; subgroups?: boolean; fallback?: boolean }, fn: () => T): Promise<{ value: T; programs: string[]; validation: string | null; compileErrors: string[]; lanes: number }> {
  const d = device();
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: { shaderKey: string }, ...rest: unknown[]) => unknown };
  const lanes = c.subgroups === false ? 0 : fixedSubgroupSize(d);
  const undoHoist = lanes ? installDirectiveHoisting(d) : null;
  // Compilation messages of every module created during the run (after the hoisting, which wraps below).
  const modules: Promise<GPUCompilationInfo>[] = [];
  const create = d.createShaderModule;
  const hadOwn = Object.prototype.hasOwnProperty.call(d, 'createShaderModule');
  d.createShaderModule = function (this: GPUDevice, desc: GPUShaderModuleDescriptor) {
    const m = create.call(this, desc);
    modules.push(m.getCompilationInfo());
    return m;
  };
  const run = be.runWebGPUProgram;
  const programs: string[] = [];
  be.runWebGPUProgram = function (this: unknown, p: { shaderKey: string }, ...rest: unknown[]) {
    programs.push(p.shaderKey);
    return run.call(this, p, ...rest);
  };
  setTunerAdapter('test/subgroups', 1024, false); // the filter gradient's slices as on a large GPU: several here
  setSubgroupLanes(lanes);
  forceSubgroupFallback(c.fallback ?? false);
  const restore = installConvKernels();
  forceTile(c.tile);
  d.pushErrorScope('validation');
  let value: T;
  try {
    value = fn();
  } finally {
    forceTile(null);
    restore();
    forceSubgroupFallback(false);
    setSubgroupLanes(0);
    setTunerAdapter('unknown', 1024, false);
    be.runWebGPUProgram = run;
    if (hadOwn) d.createShaderModule = create;
    else delete (d as Partial<GPUDevice>).createShaderModule;
    undoHoist?.();
  }
  // Let tfjs submit what it recorded before the scope closes.
  const probe = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)));
  await probe.data();
  probe.dispose();
  const err = await d.popErrorScope();
  const compileErrors = (await Promise.all(modules)).flatMap((i) => i.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`));
  return { value, programs, validation: err ? err.message : null, compileErrors, lanes };
}

/** One pass with the forced configuration against stock tfjs-webgpu's kernel and the host's loops. */
async function subgroupConv(c: SubgroupCase): Promise<SubgroupDiff> {
  await useWebGPU();
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
  const ref = run();
  const r = await withConvKernels(c, run);
  const got = await r.value.data();
  const d = diff(got, await ref.data());
  const host = diff(got, hostConv(c, await x.data(), await filter.data(), await bias.data(), await dy.data(), yShape));
  tf.dispose([x, filter, bias, dy, ref, r.value]);
  return { ...d, host, programs: r.programs, lanes: r.lanes, validation: r.validation, compileErrors: r.compileErrors };
}

/** Several passes of one shape in one page call. */
async function subgroupConvPasses(c: Omit<SubgroupCase, 'pass'> & { passes: SubgroupCase['pass'][] }): Promise<Record<string, SubgroupDiff>> {
  const out: Record<string, SubgroupDiff> = {};
  for (const pass of c.passes) out[pass] = await subgroupConv({ ...c, pass, seed: c.seed + pass.length });
  return out;
}

/**
 * Second order through the convolutions with the forced configuration, as WGAN-GP's penalty takes it:
 * ‖∂/∂x Σ LeakyReLU(conv(x, W))·w‖² with respect to W and ‖∂/∂x Σ conv(x, W)²·w‖² with respect to x,
 * against stock tfjs.
 */
async function subgroupSecondOrder(c: SubgroupCase): Promise<{ dW: Diff; dx: Diff; programs: string[]; lanes: number; validation: string | null }> {
  await useWebGPU();
  const x = tf.randomNormal(c.x, 0, 1, 'float32', c.seed) as tf.Tensor4D;
  const filter = tf.randomNormal(c.filter, 0, 0.5, 'float32', c.seed + 1) as tf.Tensor4D;
  const yShape = tf.tidy(() => tf.conv2d(x, filter, c.stride, c.pad).shape);
  const w = tf.randomNormal(yShape, 0, 1, 'float32', c.seed + 3);
  const run = () =>
    tf.tidy(() => {
      const inner = (a: tf.Tensor, f: tf.Tensor) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.leakyRelu(tf.conv2d(t as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad), 0.2), w)))(a);
      const dW = tf.grad((f: tf.Tensor) => tf.sum(tf.square(inner(x, f))))(filter);
      const innerSq = (a: tf.Tensor) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.square(tf.conv2d(t as tf.Tensor4D, filter, c.stride, c.pad)), w)))(a);
      const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.square(innerSq(a))))(x);
      return [dW, dx];
    });
  const ref = run();
  const r = await withConvKernels(c, run);
  const out = { dW: diff(await r.value[0].data(), await ref[0].data()), dx: diff(await r.value[1].data(), await ref[1].data()), programs: r.programs, lanes: r.lanes, validation: r.validation };
  tf.dispose([x, filter, w, ...ref, ...r.value]);
  return out;
}

/**
 * A module whose `enable subgroups;` follows a prelude of declarations, as tfjs assembles programs:
 * compiled as written and through the hoisting wrapper; the error messages of each.
 */
async function hoistedModule(): Promise<{ raw: string[]; hoisted: string[]; pipeline: string | null }> {
  await useWebGPU();
  const d = device();
  const code = `
      var<private> localIndex : u32;
      @group(0) @binding(0) var<storage, read_write> result : array<u32>;
      enable subgroups;
      @compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i : u32) {
        result[i] = subgroupAdd(1u);
      }`;
  const errors = async (m: GPUShaderModule) => (await m.getCompilationInfo()).messages.filter((x) => x.type === 'error').map((x) => x.message);
  d.pushErrorScope('validation');
  const raw = await errors(d.createShaderModule({ code }));
  await d.popErrorScope();
  const undo = installDirectiveHoisting(d);
  let module: GPUShaderModule;
  try {
    module = d.createShaderModule({ code });
  } finally {
    undo();
  }
  d.pushErrorScope('validation');
  d.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const err = await d.popErrorScope();
  return { raw, hoisted: await errors(module), pipeline: err ? err.message : null };
}

/**
 * The tuner with the subgroup configurations among its candidates (the feature check's lanes, hoisting
 * on): what it timed (SwiftShader's times, not a GPU's) and chose, and what the kernels then choose; the
 * choices are cleared afterwards.
 */
async function subgroupTune(c: { shapes: { mode: 'forward' | 'inputGrad' | 'filterGrad'; g: ConvGeometry }[]; reps: number }): Promise<{ lanes: number; results: TuneResult[]; chosenAfter: string[] }> {
  await useWebGPU();
  const d = device();
  const lanes = fixedSubgroupSize(d);
  const undo = lanes ? installDirectiveHoisting(d) : null;
  setTunerAdapter('test/subgroups', 16, false);
  setSubgroupLanes(lanes);
  try {
    const results = await tuneConvolutions(c.shapes, c.reps);
    return { lanes, results, chosenAfter: c.shapes.map((s) => chooseTile(s.mode, s.g).name) };
  } finally {
    clearTunings();
    setSubgroupLanes(0);
    setTunerAdapter('unknown', 1024, false);
    undo?.();
  }
}

export const subgroupPageFunctions = { subgroupTune, subgroupDevice, subgroupConv, subgroupConvPasses, subgroupSecondOrder, hoistedModule };
