import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

/**
 * A one-thread-per-element webgpu program over same-shaped inputs: `value` is a WGSL expression of the
 * inputs indexed at `i` (e.g. `select(dy[i] * uniforms.alpha, dy[i], x[i] > 0.0)`) and of `uniforms`.
 * Inputs that broadcast to `shape` (numpy rules) are read through tfjs's generated getters instead, e.g.
 * `getDyByOutputIndex(i)` for an input named `dy` of shape [B, 1, 1, 1].
 */
export class ElementwiseProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;
  constructor(
    readonly variableNames: string[],
    shape: number[],
    readonly shaderKey: string,
    readonly uniforms: string,
    private readonly value: string,
  ) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = [Math.ceil(tf.util.sizeFromShape(shape) / 64), 1, 1];
  }
  /** The statements run for element `i` (in range): by default, store `value` there. */
  protected body(): string {
    return `setOutputAtIndex(i, ${this.value});`;
  }
  getUserCode(): string {
    return `
      fn main(i : i32) {
        if (i >= uniforms.size) { return; }
        ${this.body()}
      }`;
  }
}

