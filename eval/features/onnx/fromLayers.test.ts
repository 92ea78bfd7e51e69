import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { loadOnnxRuntime } from '../onnxExtractor.ts';
import { layersModelToOnnx, samePadding } from './fromLayers.ts';
import { encodeModel } from './protobuf.ts';

/** Run a LayersModel through the ONNX export and ONNX Runtime; return [onnx, tfjs] outputs for x. */
async function both(model: tf.LayersModel, x: tf.Tensor): Promise<[Float32Array, Float32Array, readonly number[]]> {
  const ort = await loadOnnxRuntime();
  const session = await ort.InferenceSession.create(encodeModel(layersModelToOnnx(model)), { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  try {
    const out = await session.run({ input: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) });
    const y = model.predict(x) as tf.Tensor;
    const ref = y.dataSync() as Float32Array;
    expect(out.output.dims).toEqual(y.shape);
    y.dispose();
    return [out.output.data as Float32Array, ref, out.output.dims];
  } finally {
    await session.release();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Give every weight a deterministic non-trivial value (batch-norm variances positive). */
function randomiseWeights(model: tf.LayersModel, seed: number) {
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    layer.setWeights(ws.map((w, i) => (layer.getClassName() === 'BatchNormalization' && i === ws.length - 1 ? tf.randomUniform(w.shape, 0.5, 2, 'float32', seed + i) : tf.randomNormal(w.shape, 0, 0.3, 'float32', seed + i))));
  }
}

describe('tfjs LayersModel → ONNX (run on ONNX Runtime)', () => {
  it('computes TensorFlow "same" padding, with the extra pixel at the end', () => {
    expect(samePadding(299, 3, 1)).toEqual([1, 1]);
    expect(samePadding(8, 3, 2)).toEqual([0, 1]);
    expect(samePadding(7, 3, 2)).toEqual([1, 1]);
    expect(samePadding(35, 1, 1)).toEqual([0, 0]);
    expect(samePadding(10, 3, 1, 2)).toEqual([2, 2]);
  });

  it('gives the same outputs as tfjs for every supported layer (InceptionV3 and MobileNetV2 building blocks)', async () => {
    const input = tf.input({ shape: [13, 13, 3] });
    const c1 = tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'valid', useBias: false }).apply(input) as tf.SymbolicTensor;
    const b1 = tf.layers.batchNormalization({ scale: false, epsilon: 0.001 }).apply(c1) as tf.SymbolicTensor;
    const a1 = tf.layers.activation({ activation: 'relu' }).apply(b1) as tf.SymbolicTensor;
    // Odd size with stride 2 and "same": padding is asymmetric in TensorFlow.
    const c2 = tf.layers.conv2d({ filters: 5, kernelSize: [1, 3], strides: 1, padding: 'same', activation: 'relu' }).apply(a1) as tf.SymbolicTensor;
    const pad = tf.layers.zeroPadding2d({ padding: [[0, 1], [1, 0]] }).apply(a1) as tf.SymbolicTensor;
    const dw = tf.layers.depthwiseConv2d({ kernelSize: 2, depthMultiplier: 2, padding: 'valid', useBias: false }).apply(pad) as tf.SymbolicTensor;
    const b2 = tf.layers.batchNormalization({ epsilon: 0.001 }).apply(dw) as tf.SymbolicTensor;
    const r6 = tf.layers.reLU({ maxValue: 6 }).apply(b2) as tf.SymbolicTensor;
    const c3 = tf.layers.conv2d({ filters: 5, kernelSize: 1, padding: 'same' }).apply(r6) as tf.SymbolicTensor;
    const sum = tf.layers.add().apply([c2, c3]) as tf.SymbolicTensor;
    const avg = tf.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same' }).apply(sum) as tf.SymbolicTensor;
    const max = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(a1) as tf.SymbolicTensor;
    const c4 = tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same' }).apply(avg) as tf.SymbolicTensor;
    const cat = tf.layers.concatenate({ axis: -1 }).apply([max, c4]) as tf.SymbolicTensor;
    const drop = tf.layers.dropout({ rate: 0.5 }).apply(cat) as tf.SymbolicTensor;
    const flat = tf.layers.flatten().apply(drop) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: flat });
    randomiseWeights(model, 7);
    const x = tf.randomUniform([3, 13, 13, 3], 0, 1, 'float32', 11);
    const [onnx, ref, dims] = await both(model, x);
    expect(dims).toEqual([3, 3 * 3 * 10]);
    // Flatten keeps tfjs's channels-last order, so the values line up one for one.
    expect(maxAbsDiff(onnx, ref)).toBeLessThan(1e-5);
    expect(ref.some((v) => v !== 0)).toBe(true);
  });

  it('keeps a 4-d output channels-last', async () => {
    const input = tf.input({ shape: [6, 5, 2] });
    const out = tf.layers.conv2d({ filters: 3, kernelSize: 2, padding: 'same' }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    randomiseWeights(model, 3);
    const [onnx, ref, dims] = await both(model, tf.randomNormal([2, 6, 5, 2], 0, 1, 'float32', 5));
    expect(dims).toEqual([2, 6, 5, 3]);
    expect(maxAbsDiff(onnx, ref)).toBeLessThan(1e-5);
  });

  it('refuses a layer it cannot export, naming the layer', () => {
    const input = tf.input({ shape: [4, 4, 1] });
    const up = tf.layers.upSampling2d({ size: [2, 2], name: 'up_1' }).apply(input) as tf.SymbolicTensor;
    expect(() => layersModelToOnnx(tf.model({ inputs: input, outputs: up }))).toThrow('layer up_1: UpSampling2D layers cannot be exported to ONNX here');
    const input2 = tf.input({ shape: [4, 4, 1] });
    const elu = tf.layers.activation({ activation: 'elu', name: 'act_elu' }).apply(input2) as tf.SymbolicTensor;
    expect(() => layersModelToOnnx(tf.model({ inputs: input2, outputs: elu }))).toThrow("layer act_elu: activation 'elu' is not supported");
  });
});
