import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { BindGroupCache } from './dispatchPath.ts';

/**
 * Adam whose update is one WGSL dispatch per variable on the webgpu backend, in place:
 *
 *   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,  w ← w − lr · (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε)
 *
 * computed in the same float32 operation order as tfjs's AdamOptimizer (which spends about ten
 * dispatches and ten new tensors per variable). All variables of one `applyGradients` go into one
 * command buffer and one submit, after the pending tfjs work is submitted, so GPU order matches program
 * order. Moments live in the same variables tfjs's Adam keeps (`getWeights`/`setWeights`/`dispose` are
 * inherited). Variables whose buffer is shared with other tensors (or is a shared constant) are
 * updated out of place and re-assigned, like tfjs does. On any other backend this is tfjs's Adam.
 */
interface AdamInternals {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[];
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[];
}

interface TensorData {
  values: unknown;
  resource?: unknown;
  external?: boolean;
  refCount: number;
}

const SHADER = (inPlace: boolean) => /* wgsl */ `
struct Params { lr : f32, beta1 : f32, beta2 : f32, oneMinusBeta1 : f32, oneMinusBeta2 : f32, oneMinusAccBeta1 : f32, oneMinusAccBeta2 : f32, epsilon : f32 };
@group(0) @binding(0) var<storage, read_write> w : array<f32>;
@group(0) @binding(1) var<storage, read_write> m : array<f32>;
@group(0) @binding(2) var<storage, read_write> v : array<f32>;
@group(0) @binding(3) var<storage, read> g : array<f32>;
@group(0) @binding(4) var<uniform> p : Params;
${inPlace ? '' : '@group(0) @binding(5) var<storage, read> wIn : array<f32>;'}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid : vec3<u32>, @builtin(num_workgroups) nwg : vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= arrayLength(&m)) { return; }
  let gi = g[i];
  let mi = m[i] * p.beta1 + gi * p.oneMinusBeta1;
  let vi = v[i] * p.beta2 + (gi * gi) * p.oneMinusBeta2;
  m[i] = mi;
  v[i] = vi;
  let mHat = mi / p.oneMinusAccBeta1;
  let vHat = vi / p.oneMinusAccBeta2;
  w[i] = (mHat / (sqrt(vHat) + p.epsilon)) * (-p.lr) + ${inPlace ? 'w[i]' : 'wIn[i]'};
}`;

interface Pipelines {
  inPlace: GPUComputePipeline;
  outOfPlace: GPUComputePipeline;
}
const pipelines = new WeakMap<GPUDevice, Pipelines>();

function pipelinesFor(device: GPUDevice): Pipelines {
  let p = pipelines.get(device);
  if (!p) {
    const make = (inPlace: boolean) =>
      device.createComputePipeline({
        label: inPlace ? 'FusedAdamProgram' : 'FusedAdamOutOfPlaceProgram',
        layout: 'auto',
        compute: { module: device.createShaderModule({ code: SHADER(inPlace), label: 'FusedAdam' }), entryPoint: 'main' },
      });
    p = { inPlace: make(true), outOfPlace: make(false) };
    pipelines.set(device, p);
  }
  return p;
}

const UNIFORM = 0x40 | 0x8; // UNIFORM | COPY_DST

export class FusedAdamOptimizer extends tf.AdamOptimizer {
  private uniform: GPUBuffer | null = null;
  private uniformDevice: GPUDevice | null = null;
  /** Bind groups per (pipeline, buffers): variables and moments keep their buffers, gradients come from the pool. */
  private groups: BindGroupCache | null = null;
  private groupsDevice: GPUDevice | null = null;
  private readonly params = new Float32Array(8);
  /** Whether the last update ran fused (for tests and the benchmark). */
  lastUpdateFused = false;

  override applyGradients(variableGradients: { [name: string]: tf.Variable } | { name: string; tensor: tf.Tensor }[]): void {
    if (tf.getBackend() !== 'webgpu') {
      this.lastUpdateFused = false;
      this.syncAccumulatedBetas();
      super.applyGradients(variableGradients);
      return;
    }
    this.lastUpdateFused = true;
    const self = this as unknown as AdamInternals;
    const backend = tf.backend() as WebGPUBackend;
    const device = backend.device;
    const tensorMap = backend.tensorMap as unknown as { get(id: object): TensorData };
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    const t = this.iterations + 1;

    const jobs: { w: tf.Variable; m: tf.Variable; v: tf.Variable; g: tf.Tensor; out: tf.TensorInfo | null }[] = [];
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name];
      if (self.accumulatedFirstMoment[i] == null) {
        self.accumulatedFirstMoment[i] = { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      }
      if (self.accumulatedSecondMoment[i] == null) {
        self.accumulatedSecondMoment[i] = { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      }
      const g = Array.isArray(variableGradients) ? variableGradients[i].tensor : variableGradients[name];
      if (g == null) return;
      if (g.dtype !== 'float32' || value.dtype !== 'float32' || g.size !== value.size) throw new Error(`Adam: gradient of ${name} must be float32 of size ${value.size}`);
      jobs.push({ w: value, m: self.accumulatedFirstMoment[i].variable, v: self.accumulatedSecondMoment[i].variable, g, out: null });
    });

    for (const j of jobs) for (const x of [j.w, j.m, j.v, j.g]) backend.uploadToGPU(x.dataId);
    // Everything recorded so far (the gradients) is submitted before the update.
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.submitQueue();

    if (!this.uniform || this.uniformDevice !== device) {
      this.uniform = device.createBuffer({ size: 32, usage: UNIFORM, label: 'FusedAdam params' });
      this.uniformDevice = device;
    }
    const p = this.params;
    p[0] = this.learningRate;
    p[1] = this.beta1;
    p[2] = this.beta2;
    p[3] = 1 - this.beta1;
    p[4] = 1 - this.beta2;
    p[5] = 1 - Math.fround(Math.pow(this.beta1, t));
    p[6] = 1 - Math.fround(Math.pow(this.beta2, t));
    p[7] = this.epsilon;
    device.queue.writeBuffer(this.uniform, 0, p.buffer, 0, 32);

    const pipes = pipelinesFor(device);
    if (!this.groups || this.groupsDevice !== device) {
      this.groups = new BindGroupCache(device, 4096);
      this.groupsDevice = device;
    }
    const groups = this.groups;
    const encoder = device.createCommandEncoder({ label: 'FusedAdam' });
    const pass = encoder.beginComputePass({ label: 'FusedAdam' });
    for (const j of jobs) {
      const wData = tensorMap.get(j.w.dataId);
      const inPlace = wData.refCount === 1 && !wData.external;
      const buf = (x: tf.Tensor) => tensorMap.get(x.dataId).resource as GPUBuffer;
      let pipeline = pipes.inPlace;
      // Bindings 0…5: updated variable, m, v, gradient, parameters, and (out of place) the old variable.
      let bindings: GPUBuffer[];
      if (inPlace) {
        bindings = [buf(j.w), buf(j.m), buf(j.v), buf(j.g), this.uniform];
        wData.values = null; // a cached CPU copy would go stale
      } else {
        pipeline = pipes.outOfPlace;
        j.out = backend.makeTensorInfo(j.w.shape, 'float32');
        backend.uploadToGPU(j.out.dataId);
        bindings = [tensorMap.get(j.out.dataId).resource as GPUBuffer, buf(j.m), buf(j.v), buf(j.g), this.uniform, buf(j.w)];
      }
      for (const s of [j.m, j.v]) tensorMap.get(s.dataId).values = null;
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, groups.get(pipeline, bindings));
      const workgroups = Math.ceil(j.w.size / 256);
      const x = Math.min(workgroups, 65535);
      pass.dispatchWorkgroups(x, Math.ceil(workgroups / x));
    }
    pass.end();
    device.queue.submit([encoder.finish()]);
    for (const j of jobs) {
      if (!j.out) continue;
      const fresh = tf.engine().makeTensorFromTensorInfo(j.out);
      j.w.assign(fresh);
      fresh.dispose();
    }
    this.incrementIterations();
  }

  /** tfjs's Adam reads β1ᵗ, β2ᵗ from its own variables; bring them up to date before falling back to it. */
  private syncAccumulatedBetas(): void {
    const self = this as unknown as AdamInternals;
    const t = this.iterations + 1;
    tf.tidy(() => {
      self.accBeta1.assign(tf.scalar(Math.pow(this.beta1, t)));
      self.accBeta2.assign(tf.scalar(Math.pow(this.beta2, t)));
    });
  }

  override dispose(): void {
    super.dispose();
    this.uniform?.destroy();
    this.uniform = null;
    this.groups = null;
  }
}
