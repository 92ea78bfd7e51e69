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
import { convOperands, convSecondOrder, diff, hostConv, recordPrograms, useWebGPU, type ConvPassCase, type Diff } from './pageSupport.ts';

// Before any page function initialises the backend: its device then asks for `subgroups` where offered.
const registered = registerWebGPUBackend();

export interface SubgroupCase extends ConvPassCase {
  /** Tile configuration to force (a subgroup one, `sg…`, or a shared-memory one). */
  tile: string;
  activation?: 'linear' | 'relu' | 'leakyrelu' | 'sigmoid';
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

/**
 * The convolution kernels of convKernels.ts with the subgroup variant available (lanes from the feature
 * check, `enable` hoisting on the device) and `tile` forced, around `fn`; everything restored after.
 */
async function withConvKernels<T>(c: { tile: string; subgroups?: boolean; fallback?: boolean }, fn: () => T): Promise<{ value: T; programs: string[]; validation: string | null; compileErrors: string[]; lanes: number }> {
  const d = device();
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
  const programs = recordPrograms();
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
    programs.stop();
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
  return { value, programs: programs.keys, validation: err ? err.message : null, compileErrors, lanes };
}

/** One pass with the forced configuration against stock tfjs-webgpu's kernel and the host's loops. */
async function subgroupConv(c: SubgroupCase): Promise<SubgroupDiff> {
  await useWebGPU();
  const ops = convOperands(c);
  const ref = ops.run();
  const r = await withConvKernels(c, ops.run);
  const got = await r.value.data();
  const d = diff(got, await ref.data());
  const host = diff(got, hostConv(c, await ops.x.data(), await ops.filter.data(), await ops.bias.data(), await ops.dy.data(), ops.yShape));
  ops.dispose();
  tf.dispose([ref, r.value]);
  return { ...d, host, programs: r.programs, lanes: r.lanes, validation: r.validation, compileErrors: r.compileErrors };
}

/** Several passes of one shape in one page call. */
async function subgroupConvPasses(c: Omit<SubgroupCase, 'pass'> & { passes: SubgroupCase['pass'][] }): Promise<Record<string, SubgroupDiff>> {
  const out: Record<string, SubgroupDiff> = {};
  for (const pass of c.passes) out[pass] = await subgroupConv({ ...c, pass, seed: c.seed + pass.length });
  return out;
}

/**
 * Second order through the convolutions (pageSupport.ts convSecondOrder) with the forced configuration,
 * against stock tfjs.
 */
async function subgroupSecondOrder(c: SubgroupCase): Promise<{ dW: Diff; dx: Diff; programs: string[]; lanes: number; validation: string | null }> {
  await useWebGPU();
  const ops = convSecondOrder(c);
  const ref = ops.run();
  const r = await withConvKernels(c, ops.run);
  const out = { dW: diff(await r.value[0].data(), await ref[0].data()), dx: diff(await r.value[1].data(), await ref[1].data()), programs: r.programs, lanes: r.lanes, validation: r.validation };
  ops.dispose();
  tf.dispose([...ref, ...r.value]);
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
