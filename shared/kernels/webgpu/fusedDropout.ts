import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { PHILOX_WGSL, philoxKey } from './philox.ts';
import { SAMPLERS, type DrawId } from './gpuRandom.ts';
import { installWebGPUKernels, type Restore } from './overrides.ts';

/**
 * Inverted dropout as one dispatch: y = x · m, with the mask m drawn inside the kernel from the same
 * Philox words as `gpuDropoutMask` (element i uses word i mod 4 of block ⌊i/4⌋ for the draw's key and
 * stream), so y is bit for bit x · gpuDropoutMask(…). The mask is never stored: the gradient,
 * dy · m, is the same kernel applied to dy with the same draw, and so is every higher derivative.
 * Before: a mask dispatch and a multiplication forward, a multiplication backward.
 */
export const DROPOUT = 'FedganDropout';

interface DropoutAttrs {
  rate: number;
  key0: number;
  key1: number;
  stream: number;
}

class DropoutProgram implements WebGPUProgram {
  variableNames = ['x'];
  outputShape: number[];
  shaderKey = 'fedganDropout';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  uniforms = 'key0 : u32, key1 : u32, stream : u32, a : f32, b : f32,';
  size = true;
  /** Keys and streams differ on every draw: the dispatch path does not cache these uniforms. */
  readonly volatileUniforms = true;
  constructor(shape: number[]) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = [Math.ceil(Math.ceil(tf.util.sizeFromShape(shape) / 4) / 64), 1, 1];
  }
  getUserCode(): string {
    return `
      ${PHILOX_WGSL}
      ${SAMPLERS.dropoutMask}
      fn main(block : i32) {
        let first = block * 4;
        if (first >= uniforms.size) {
          return;
        }
        let m = sample4(philox(vec4<u32>(u32(block), uniforms.stream, 0u, 0u), vec2<u32>(uniforms.key0, uniforms.key1)));
        for (var j = 0; j < 4; j = j + 1) {
          let i = first + j;
          if (i < uniforms.size) {
            setOutputAtIndex(i, x[i] * m[j]);
          }
        }
      }`;
  }
}

function kernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const x = inputs.x as TensorInfo;
  const { rate, key0, key1, stream } = attrs as unknown as DropoutAttrs;
  return (backend as WebGPUBackend).runWebGPUProgram(new DropoutProgram(x.shape), [x], 'float32', [
    { type: 'uint32', data: [key0] },
    { type: 'uint32', data: [key1] },
    { type: 'uint32', data: [stream] },
    { type: 'float32', data: [rate] },
    { type: 'float32', data: [1 / (1 - rate)] },
  ]);
}

/** x · gpuDropoutMask(x.shape, rate, id), in one dispatch (webgpu, float32; the kernel must be installed). */
export function gpuDropout(x: tf.Tensor, rate: number, id: DrawId): tf.Tensor {
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout rate must be in [0, 1), got ${rate}`);
  const [key0, key1] = philoxKey(id.seed);
  return tf.engine().runKernel(DROPOUT, { x }, { rate, key0, key1, stream: id.stream >>> 0 } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

export function fusedDropoutInstalled(): boolean {
  return tf.getKernel(DROPOUT, 'webgpu') != null;
}

export function installFusedDropout(): Restore {
  return installWebGPUKernels({ [DROPOUT]: kernel }, [
    {
      kernelName: DROPOUT,
      gradFunc: (dy, _saved, attrs) => ({ x: () => tf.engine().runKernel(DROPOUT, { x: dy as tf.Tensor }, attrs as tf.NamedAttrMap) as tf.Tensor }),
    },
  ]);
}
