import * as tf from '@tensorflow/tfjs-core';
import { runStockWasmKernel, type WasmBackend } from './wasmBackend.ts';

/**
 * Conv2DBackpropInput for the wasm backend as a forward convolution on wasm's XNNPACK Conv2D (stock
 * wasm runs it as a scalar loop, ~12× slower):
 *
 *   dx[b, iy, ix, ci] = Σ_{kh, kw, co} P[b, iy + kh, ix + kw, co] · Wf[kh, kw, co, ci]
 *
 * a stride-1 'valid' correlation of P, the output gradient dilated by the stride (s − 1 zeros between
 * rows and columns) and padded so that P[r] = dy_dilated[r + top − (kH − 1)], with the filter flipped in
 * space and its channel axes swapped: Wf[kh, kw, co, ci] = w[kH−1−kh, kW−1−kw, ci, co].
 */
export function conv2dBackpropInputWasm(dy: tf.TensorInfo, filter: tf.TensorInfo, backend: WasmBackend, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { batchSize: batch, inHeight: inH, inWidth: inW, inChannels: inC, outHeight: oH, outWidth: oW, outChannels: outC, filterHeight: kH, filterWidth: kW, strideHeight: sH, strideWidth: sW } = info;
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) throw new Error('Conv2DBackpropInput on wasm supports dilation 1 only');
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const pH = inH + kH - 1;
  const pW = inW + kW - 1;
  const padded = backend.makeOutput([batch, pH, pW, outC], 'float32');
  const flipped = backend.makeOutput([kH, kW, outC, inC], 'float32');
  const p = backend.typedArrayFromHeap(padded) as Float32Array;
  p.fill(0);
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  const shiftY = top - (kH - 1);
  const shiftX = left - (kW - 1);
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < oH; oy++) {
      const r = oy * sH - shiftY; // P row that holds dy row oy
      if (r < 0 || r >= pH) continue;
      for (let ox = 0; ox < oW; ox++) {
        const col = ox * sW - shiftX;
        if (col < 0 || col >= pW) continue;
        const src = ((b * oH + oy) * oW + ox) * outC;
        p.set(g.subarray(src, src + outC), ((b * pH + r) * pW + col) * outC);
      }
    }
  }
  const w = backend.typedArrayFromHeap(filter) as Float32Array;
  const f = backend.typedArrayFromHeap(flipped) as Float32Array;
  for (let kh = 0; kh < kH; kh++) {
    for (let kw = 0; kw < kW; kw++) {
      const srcBase = ((kH - 1 - kh) * kW + (kW - 1 - kw)) * inC * outC;
      const dstBase = (kh * kW + kw) * outC * inC;
      for (let ci = 0; ci < inC; ci++) for (let co = 0; co < outC; co++) f[dstBase + co * inC + ci] = w[srcBase + ci * outC + co];
    }
  }
  const dx = runStockWasmKernel('Conv2D', { x: padded, filter: flipped }, backend, {
    strides: [1, 1],
    pad: 'valid',
    dataFormat: 'NHWC',
    dilations: [1, 1],
    dimRoundingMode: undefined,
  });
  backend.disposeData(padded.dataId);
  backend.disposeData(flipped.dataId);
  return dx;
}
