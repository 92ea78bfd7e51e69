import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { PHILOX_WGSL, philoxKey } from './philox.ts';

/**
 * Random tensors drawn on the GPU with Philox4x32-10: nothing is generated or uploaded by the host.
 * Each thread computes one Philox block (four 32-bit words) for its four output elements, so one
 * dispatch fills a tensor. A draw is fixed by (seed, stream): the same pair gives the same tensor.
 */
export type RandomKind = 'uniform' | 'normal' | 'uniformInt' | 'dropoutMask';

/** WGSL `sample4`: four Philox words to four values of each kind (shared with the fused dropout kernel). */
export const SAMPLERS: Record<RandomKind, string> = {
  // a + (b − a)·u, u ∈ [0, 1)
  uniform: `
    fn sample4(r: vec4<u32>) -> vec4<f32> {
      let u = vec4<f32>(philoxToUnit(r.x), philoxToUnit(r.y), philoxToUnit(r.z), philoxToUnit(r.w));
      return vec4<f32>(uniforms.a) + (uniforms.b - uniforms.a) * u;
    }`,
  // Box–Muller on two pairs: mean a, standard deviation b.
  normal: `
    fn sample4(r: vec4<u32>) -> vec4<f32> {
      let r0 = sqrt(-2.0 * log(philoxToUnitOpen(r.x)));
      let r1 = sqrt(-2.0 * log(philoxToUnitOpen(r.z)));
      let t0 = 6.283185307179586 * philoxToUnit(r.y);
      let t1 = 6.283185307179586 * philoxToUnit(r.w);
      let z = vec4<f32>(r0 * cos(t0), r0 * sin(t0), r1 * cos(t1), r1 * sin(t1));
      return vec4<f32>(uniforms.a) + uniforms.b * z;
    }`,
  // Integers in [a, b): floor(a + (b − a)·u), clamped against rounding up to b.
  uniformInt: `
    fn sample4(r: vec4<u32>) -> vec4<f32> {
      let u = vec4<f32>(philoxToUnit(r.x), philoxToUnit(r.y), philoxToUnit(r.z), philoxToUnit(r.w));
      return min(floor(vec4<f32>(uniforms.a) + (uniforms.b - uniforms.a) * u), vec4<f32>(uniforms.b - 1.0));
    }`,
  // Inverted dropout: keep (value b = 1/(1 − rate)) where u ≥ rate (a), else 0 — as tf.dropout.
  dropoutMask: `
    fn sample4(r: vec4<u32>) -> vec4<f32> {
      let u = vec4<f32>(philoxToUnit(r.x), philoxToUnit(r.y), philoxToUnit(r.z), philoxToUnit(r.w));
      return select(vec4<f32>(0.0), vec4<f32>(uniforms.b), u >= vec4<f32>(uniforms.a));
    }`,
};

class PhiloxRandomProgram implements WebGPUProgram {
  variableNames: string[] = [];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  uniforms = 'key0 : u32, key1 : u32, stream : u32, a : f32, b : f32,';
  size = true;
  /** Keys and streams differ on every draw: the dispatch path does not cache these uniforms. */
  readonly volatileUniforms = true;
  private readonly kind: RandomKind;
  private readonly isInt: boolean;

  constructor(kind: RandomKind, shape: number[], isInt: boolean) {
    this.kind = kind;
    this.isInt = isInt;
    this.outputShape = shape;
    this.shaderKey = `philox_${kind}_${isInt ? 'i' : 'f'}`;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    const blocks = Math.ceil(tf.util.sizeFromShape(shape) / 4);
    this.dispatch = [Math.ceil(blocks / this.workgroupSize[0]), 1, 1];
  }

  getUserCode(): string {
    const store = this.isInt ? 'setOutputAtIndexI32(i, i32(v[j]))' : 'setOutputAtIndex(i, v[j])';
    return `
      ${PHILOX_WGSL}
      ${SAMPLERS[this.kind]}
      fn main(block : i32) {
        let first = block * 4;
        if (first >= uniforms.size) {
          return;
        }
        let v = sample4(philox(vec4<u32>(u32(block), uniforms.stream, 0u, 0u), vec2<u32>(uniforms.key0, uniforms.key1)));
        for (var j = 0; j < 4; j = j + 1) {
          let i = first + j;
          if (i < uniforms.size) {
            ${store};
          }
        }
      }`;
  }
}

export interface DrawId {
  seed: number;
  stream: number;
}

function draw(kind: RandomKind, shape: number[], dtype: 'float32' | 'int32', a: number, b: number, id: DrawId): tf.Tensor {
  const n = tf.util.sizeFromShape(shape);
  if (n === 0) return tf.zeros(shape, dtype);
  if (n / 4 > 65535 * 64 * 65535) throw new Error(`random tensor of ${n} elements is too large for one dispatch`);
  const backend = tf.backend() as WebGPUBackend;
  const [k0, k1] = philoxKey(id.seed);
  const program = new PhiloxRandomProgram(kind, shape, dtype === 'int32');
  const info = backend.runWebGPUProgram(program, [], dtype, [
    { type: 'uint32', data: [k0] },
    { type: 'uint32', data: [k1] },
    { type: 'uint32', data: [id.stream >>> 0] },
    { type: 'float32', data: [a] },
    { type: 'float32', data: [b] },
  ]);
  return tf.engine().makeTensorFromTensorInfo(info);
}

/** Uniform floats in [min, max). */
export function gpuRandomUniform(shape: number[], min: number, max: number, id: DrawId): tf.Tensor {
  return draw('uniform', shape, 'float32', min, max, id);
}

/** Normal floats with the given mean and standard deviation (Box–Muller). */
export function gpuRandomNormal(shape: number[], mean: number, std: number, id: DrawId): tf.Tensor {
  return draw('normal', shape, 'float32', mean, std, id);
}

/** Uniform int32 in [min, max). */
export function gpuRandomUniformInt(shape: number[], min: number, max: number, id: DrawId): tf.Tensor {
  if (!Number.isInteger(min) || !Number.isInteger(max) || max <= min) throw new Error(`integer range [${min}, ${max}) is empty or not integral`);
  return draw('uniformInt', shape, 'int32', min, max, id);
}

/** Inverted-dropout mask: 1/(1 − rate) with probability 1 − rate, else 0. */
export function gpuDropoutMask(shape: number[], rate: number, id: DrawId): tf.Tensor {
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout rate must be in [0, 1), got ${rate}`);
  return draw('dropoutMask', shape, 'float32', rate, 1 / (1 - rate), id);
}
