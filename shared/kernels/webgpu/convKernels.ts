import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { convFilterGrad, convForward, convInputGrad, EPILOGUE_ACTIVATIONS, geometryOf, type Activation } from './convGemm.ts';
import { chooseTile, filterGradWorkgroups } from './convTuner.ts';
import { originalKernel, overrideKernel, type Restore } from './overrides.ts';

/**
 * tfjs kernel functions for Conv2D, FusedConv2D, Conv2DBackpropInput and Conv2DBackpropFilter on webgpu
 * that run this project's implicit-GEMM convolutions (convGemm.ts) for NHWC float32 with dilation 1, and
 * hand everything else (NCHW, dilations, other dtypes, PReLU, empty tensors) to tfjs's own kernel.
 * Being registered kernels, they serve every path that reaches these ops, the gradients of gradients
 * included (tfjs differentiates Conv2DBackpropInput into Conv2D and Conv2DBackpropFilter).
 */

type ConvAttrs = NamedAttrMap & {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

const dilated = (d: ConvAttrs['dilations']) => d != null && (Array.isArray(d) ? d.some((v) => v !== 1) : d !== 1);
const empty = (...t: TensorInfo[]) => t.some((x) => x.shape.some((s) => s === 0));
const usable = (attrs: ConvAttrs, ...t: TensorInfo[]) => attrs.dataFormat !== 'NCHW' && !dilated(attrs.dilations) && t.every((x) => x.dtype === 'float32') && !empty(...t);

function info(xShape: number[], filterShape: number[], attrs: ConvAttrs) {
  return tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape as [number, number, number, number], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
}

export function makeConv2DKernel(fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as ConvAttrs;
    if (!usable(attrs, x, filter)) return fallback(args);
    const g = geometryOf(info(x.shape, filter.shape, attrs));
    return convForward(args.backend as WebGPUBackend, x, filter, null, g, chooseTile('forward', g));
  };
}

export function makeFusedConv2DKernel(fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
    const attrs = args.attrs as ConvAttrs & { activation?: string; leakyreluAlpha?: number };
    const activation = (attrs.activation ?? 'linear') as Activation;
    const outC = filter.shape[3];
    const biasOk = bias == null || (bias.dtype === 'float32' && tf.util.sizeFromShape(bias.shape) === outC && bias.shape[bias.shape.length - 1] === outC);
    if (!usable(attrs, x, filter) || preluActivationWeights != null || !biasOk || !EPILOGUE_ACTIVATIONS.includes(activation)) return fallback(args);
    const g = geometryOf(info(x.shape, filter.shape, attrs));
    return convForward(args.backend as WebGPUBackend, x, filter, bias ?? null, g, chooseTile('forward', g), activation, attrs.leakyreluAlpha ?? 0.2);
  };
}

export function makeConv2DBackpropInputKernel(fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as ConvAttrs & { inputShape: [number, number, number, number] };
    if (!usable(attrs, dy, filter) || attrs.inputShape.some((s) => s === 0)) return fallback(args);
    const g = geometryOf(info(attrs.inputShape, filter.shape, attrs));
    return convInputGrad(args.backend as WebGPUBackend, dy, filter, g, chooseTile('inputGrad', g));
  };
}

export function makeConv2DBackpropFilterGemmKernel(fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const attrs = args.attrs as ConvAttrs & { filterShape: [number, number, number, number] };
    if (!usable(attrs, x, dy)) return fallback(args);
    const g = geometryOf(info(x.shape, attrs.filterShape, attrs));
    return convFilterGrad(args.backend as WebGPUBackend, x, dy, g, chooseTile('filterGrad', g), filterGradWorkgroups());
  };
}

/** Which of the three passes to replace (all by default). */
export interface ConvKernelParts {
  forward?: boolean;
  inputGrad?: boolean;
  filterGrad?: boolean;
}

/** Register the implicit-GEMM convolutions for webgpu in place of tfjs's; the undo puts tfjs's back. */
export function installConvKernels(parts: ConvKernelParts = {}): Restore {
  const undo: Restore[] = [];
  if (parts.forward ?? true) {
    undo.push(overrideKernel('Conv2D', 'webgpu', makeConv2DKernel(originalKernel('Conv2D', 'webgpu'))));
    undo.push(overrideKernel('FusedConv2D', 'webgpu', makeFusedConv2DKernel(originalKernel('FusedConv2D', 'webgpu'))));
  }
  if (parts.inputGrad ?? true) undo.push(overrideKernel('Conv2DBackpropInput', 'webgpu', makeConv2DBackpropInputKernel(originalKernel('Conv2DBackpropInput', 'webgpu'))));
  if (parts.filterGrad ?? true) undo.push(overrideKernel('Conv2DBackpropFilter', 'webgpu', makeConv2DBackpropFilterGemmKernel(originalKernel('Conv2DBackpropFilter', 'webgpu'))));
  return () => {
    while (undo.length) undo.pop()!();
  };
}
