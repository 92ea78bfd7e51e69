/**
 * Convert a tfjs LayersModel (channels-last Keras layers) into an ONNX inference graph, so the
 * pretrained feature networks that ship inside nsfwjs can run on ONNX Runtime's native CPU kernels.
 *
 * The ONNX graph takes the model's NHWC input, transposes it once to NCHW, and maps each layer 1:1;
 * ONNX Runtime's graph optimiser then folds batch norms into the convolutions and fuses activations.
 * "same" padding is written as explicit pads computed the way TensorFlow does (the extra pixel at the
 * end), average pools exclude padding as TensorFlow does, and 4-d outputs and flattens go back to
 * channels-last so the values come out in the same order as tfjs's.
 *
 * Only inference layers are supported; anything else is refused by name.
 */
import type * as tf from '@tensorflow/tfjs';
import type { OnnxGraph, OnnxInitializer, OnnxNode } from './protobuf.ts';

interface InboundNode {
  inboundLayers: tf.layers.Layer[];
  nodeIndices: number[];
  tensorIndices: number[];
  inputShapes: Shape | Shape[];
}

type Shape = (number | null)[];

/** TensorFlow's "same" padding for one spatial axis: [begin, end]. */
export function samePadding(size: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const effective = (kernel - 1) * dilation + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + effective - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function pads(padding: string, shape: Shape, kernel: number[], strides: number[], dilation: number[] = [1, 1], layer: string): number[] {
  if (padding === 'valid') return [0, 0, 0, 0];
  if (padding !== 'same') throw new Error(`layer ${layer}: padding '${padding}' is not supported (valid or same)`);
  const [h, w] = [shape[1], shape[2]];
  if (typeof h !== 'number' || typeof w !== 'number') throw new Error(`layer ${layer}: 'same' padding needs a static input size, got [${shape}]`);
  const [top, bottom] = samePadding(h, kernel[0], strides[0], dilation[0]);
  const [left, right] = samePadding(w, kernel[1], strides[1], dilation[1]);
  return [top, left, bottom, right];
}

function pair(v: number | number[]): number[] {
  return Array.isArray(v) ? v : [v, v];
}

/** HWIO (tfjs conv kernel) → OIHW (ONNX Conv weight). */
function convKernel(k: Float32Array, [kh, kw, ci, co]: readonly [number, number, number, number]): Float32Array {
  const out = new Float32Array(k.length);
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++)
      for (let c = 0; c < ci; c++)
        for (let o = 0; o < co; o++) out[((o * ci + c) * kh + i) * kw + j] = k[((i * kw + j) * ci + c) * co + o];
  return out;
}

/** Depthwise kernel [kh, kw, C, mult] → grouped-conv weight [C·mult, 1, kh, kw] (output channel c·mult + m, as TF orders it). */
function depthwiseKernel(k: Float32Array, [kh, kw, c, mult]: readonly [number, number, number, number]): Float32Array {
  const out = new Float32Array(k.length);
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++)
      for (let ch = 0; ch < c; ch++)
        for (let m = 0; m < mult; m++) out[((ch * mult + m) * kh + i) * kw + j] = k[((i * kw + j) * c + ch) * mult + m];
  return out;
}

export interface ConvertOptions {
  /** Name of the ONNX input (default "input"), NHWC float32 with a dynamic batch. */
  inputName?: string;
  /** Name of the ONNX output (default "output"). */
  outputName?: string;
}

/**
 * Convert a single-input, single-output LayersModel. The ONNX input keeps the model's NHWC shape
 * (batch dynamic); the output has the model's output shape and element order.
 */
export function layersModelToOnnx(model: tf.LayersModel, opts: ConvertOptions = {}): OnnxGraph {
  const inputName = opts.inputName ?? 'input';
  const outputName = opts.outputName ?? 'output';
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error(`ONNX export supports one input and one output, the model has ${model.inputs.length} and ${model.outputs.length}`);
  const nodes: OnnxNode[] = [];
  const inits: OnnxInitializer[] = [];
  /** Layer name → ONNX value holding its output, in NCHW when 4-d. */
  const values = new Map<string, string>();
  const inputShape = model.inputs[0].shape as Shape;
  if (inputShape.length !== 4) throw new Error(`ONNX export expects an image model with NHWC input, got input shape [${inputShape}]`);

  const init = (name: string, dims: number[], data: Float32Array | BigInt64Array) => {
    inits.push({ name, dims, data });
    return name;
  };
  const weightsOf = (layer: tf.layers.Layer) => layer.getWeights().map((w) => w.dataSync() as Float32Array);

  for (const layer of model.layers) {
    const cls = layer.getClassName();
    const name = layer.name;
    const cfg = layer.getConfig() as Record<string, unknown>;
    const out = `${name}:out`;
    if (cls === 'InputLayer') {
      nodes.push({ op: 'Transpose', inputs: [inputName], outputs: [out], attrs: { perm: [0, 3, 1, 2] }, name });
      values.set(name, out);
      continue;
    }
    const inbound = (layer as unknown as { inboundNodes: InboundNode[] }).inboundNodes[0];
    const ins = inbound.inboundLayers.map((l, i) => {
      if (inbound.nodeIndices[i] !== 0 || inbound.tensorIndices[i] !== 0) throw new Error(`layer ${name}: shared layers are not supported`);
      const v = values.get(l.name);
      if (!v) throw new Error(`layer ${name}: input ${l.name} has not been converted (layers out of order)`);
      return v;
    });
    const shapes = inbound.inputShapes;
    const inShape = (Array.isArray(shapes[0]) ? shapes[0] : shapes) as Shape;
    const activation = (cfg.activation as string | undefined) ?? 'linear';
    let result = out;
    const withActivation = (pre: string) => {
      if (activation === 'linear') return pre;
      if (activation === 'relu') {
        nodes.push({ op: 'Relu', inputs: [pre], outputs: [out], name: `${name}/relu` });
        return out;
      }
      throw new Error(`layer ${name}: activation '${activation}' is not supported`);
    };

    switch (cls) {
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const w = weightsOf(layer);
        const kernelShape = layer.getWeights()[0].shape as [number, number, number, number];
        const kernel = pair(cfg.kernelSize as number | number[]);
        const strides = pair(cfg.strides as number | number[]);
        const dilations = pair((cfg.dilationRate as number | number[]) ?? 1);
        if (cfg.dataFormat && cfg.dataFormat !== 'channelsLast') throw new Error(`layer ${name}: data format ${cfg.dataFormat} is not supported`);
        const depthwise = cls === 'DepthwiseConv2D';
        const weight = depthwise ? depthwiseKernel(w[0], kernelShape) : convKernel(w[0], kernelShape);
        const outChannels = depthwise ? kernelShape[2] * kernelShape[3] : kernelShape[3];
        const weightDims = depthwise ? [outChannels, 1, kernelShape[0], kernelShape[1]] : [outChannels, kernelShape[2], kernelShape[0], kernelShape[1]];
        const inputs = [ins[0], init(`${name}/W`, weightDims, weight)];
        if (cfg.useBias) inputs.push(init(`${name}/B`, [outChannels], w[1]));
        const pre = activation === 'linear' ? out : `${name}:pre`;
        nodes.push({
          op: 'Conv',
          inputs,
          outputs: [pre],
          name,
          attrs: { kernel_shape: kernel, strides, dilations, pads: pads(cfg.padding as string, inShape, kernel, strides, dilations, name), group: depthwise ? kernelShape[2] : 1 },
        });
        result = withActivation(pre);
        break;
      }
      case 'BatchNormalization': {
        const axis = cfg.axis as number;
        if (axis !== 3 && axis !== -1) throw new Error(`layer ${name}: batch norm over axis ${axis} is not supported (channels only)`);
        const w = weightsOf(layer);
        const c = inShape[3] as number;
        let k = 0;
        const gamma = cfg.scale ? w[k++] : new Float32Array(c).fill(1);
        const beta = cfg.center ? w[k++] : new Float32Array(c);
        const mean = w[k++];
        const variance = w[k++];
        nodes.push({
          op: 'BatchNormalization',
          inputs: [ins[0], init(`${name}/scale`, [c], gamma), init(`${name}/bias`, [c], beta), init(`${name}/mean`, [c], mean), init(`${name}/var`, [c], variance)],
          outputs: [out],
          name,
          attrs: { epsilon: { float: cfg.epsilon as number } },
        });
        break;
      }
      case 'Activation':
        if (activation === 'linear') nodes.push({ op: 'Identity', inputs: ins, outputs: [out], name });
        else if (activation === 'relu') nodes.push({ op: 'Relu', inputs: ins, outputs: [out], name });
        else throw new Error(`layer ${name}: activation '${activation}' is not supported`);
        break;
      case 'ReLU': {
        if ((cfg.negativeSlope as number | undefined) || (cfg.threshold as number | undefined)) throw new Error(`layer ${name}: leaky or thresholded ReLU is not supported`);
        const max = cfg.maxValue as number | null | undefined;
        if (max == null) nodes.push({ op: 'Relu', inputs: ins, outputs: [out], name });
        else nodes.push({ op: 'Clip', inputs: [ins[0], init(`${name}/min`, [], new Float32Array([0])), init(`${name}/max`, [], new Float32Array([max]))], outputs: [out], name });
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const kernel = pair(cfg.poolSize as number | number[]);
        const strides = pair((cfg.strides as number | number[] | null) ?? kernel);
        const attrs: Record<string, number | number[]> = { kernel_shape: kernel, strides, pads: pads(cfg.padding as string, inShape, kernel, strides, [1, 1], name) };
        if (cls === 'AveragePooling2D') attrs.count_include_pad = 0;
        nodes.push({ op: cls === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool', inputs: ins, outputs: [out], name, attrs });
        break;
      }
      case 'ZeroPadding2D': {
        const p = cfg.padding as number[][];
        nodes.push({ op: 'Pad', inputs: [ins[0], init(`${name}/pads`, [8], BigInt64Array.from([0, 0, p[0][0], p[1][0], 0, 0, p[0][1], p[1][1]].map(BigInt)))], outputs: [out], name });
        break;
      }
      case 'Concatenate': {
        const axis = cfg.axis as number;
        if (axis !== 3 && axis !== -1) throw new Error(`layer ${name}: concatenation over axis ${axis} is not supported (channels only)`);
        nodes.push({ op: 'Concat', inputs: ins, outputs: [out], name, attrs: { axis: 1 } });
        break;
      }
      case 'Add': {
        let acc = ins[0];
        for (let i = 1; i < ins.length; i++) {
          const y = i === ins.length - 1 ? out : `${name}:sum${i}`;
          nodes.push({ op: 'Add', inputs: [acc, ins[i]], outputs: [y], name: `${name}/${i}` });
          acc = y;
        }
        break;
      }
      case 'Flatten': {
        const nhwc = `${name}:nhwc`;
        nodes.push({ op: 'Transpose', inputs: ins, outputs: [nhwc], name: `${name}/nhwc`, attrs: { perm: [0, 2, 3, 1] } });
        nodes.push({ op: 'Flatten', inputs: [nhwc], outputs: [out], name, attrs: { axis: 1 } });
        values.set(name, out);
        continue;
      }
      case 'Dropout':
        nodes.push({ op: 'Identity', inputs: ins, outputs: [out], name });
        break;
      default:
        throw new Error(`layer ${name}: ${cls} layers cannot be exported to ONNX here`);
    }
    values.set(name, result);
  }

  const last = model.outputs[0].sourceLayer.name;
  const final = values.get(last);
  if (!final) throw new Error(`output layer ${last} was not converted`);
  const outShape = model.outputs[0].shape as Shape;
  const finalIsFlat = outShape.length === 2;
  nodes.push(finalIsFlat ? { op: 'Identity', inputs: [final], outputs: [outputName], name: 'output' } : { op: 'Transpose', inputs: [final], outputs: [outputName], name: 'output', attrs: { perm: [0, 2, 3, 1] } });
  const dims = (s: Shape) => s.map((d, i) => (i === 0 ? 'batch' : (d as number)));
  return {
    name: model.name,
    nodes,
    initializers: inits,
    inputs: [{ name: inputName, shape: dims(inputShape) }],
    outputs: [{ name: outputName, shape: dims(outShape) }],
    opset: 13,
    producer: 'fedgan layersModelToOnnx',
  };
}
