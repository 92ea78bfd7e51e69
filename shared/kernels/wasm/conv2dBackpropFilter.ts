import * as tf from '@tensorflow/tfjs-core';
import { runStockWasmKernel, viewAs, type WasmBackend } from './wasmBackend.ts';

/**
 * Conv2DBackpropFilter for the wasm backend (which has none), as one matrix product on wasm's SIMD
 * BatchMatMul instead of a scalar loop:
 *
 *   dW[k, co] = Σ_n cols[k, n] · dy[n, co],   k = (kh, kw, ci),  n = (b, oy, ox)
 *
 * where cols[k, n] = x[b, oy·s + kh − top, ox·s + kw − left, ci] (0 outside the image) is built here
 * already transposed (K × N), since wasm's matmul is ~12× slower with transposeA. The batch is split
 * into chunks so that cols stays under CHUNK_FLOATS floats; chunk results are summed.
 */
const CHUNK_FLOATS = 1 << 22; // 16 MB of im2col per chunk

export function conv2dBackpropFilterWasm(x: tf.TensorInfo, dy: tf.TensorInfo, backend: WasmBackend, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const [batch, inH, inW, inC] = x.shape;
  const { outHeight: oH, outWidth: oW, outChannels: outC, filterHeight: kH, filterWidth: kW, strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const K = kH * kW * inC;
  const perImage = oH * oW;
  const chunk = Math.max(1, Math.min(batch, Math.floor(CHUNK_FLOATS / (K * perImage))));
  let result: tf.TensorInfo | undefined;
  for (let b0 = 0; b0 < batch; b0 += chunk) {
    const nb = Math.min(chunk, batch - b0);
    const N = nb * perImage;
    const cols = backend.makeOutput([1, K, N], 'float32');
    const c = backend.typedArrayFromHeap(cols) as Float32Array;
    const xs = backend.typedArrayFromHeap(x) as Float32Array;
    for (let kh = 0; kh < kH; kh++) {
      for (let kw = 0; kw < kW; kw++) {
        const kBase = (kh * kW + kw) * inC;
        for (let b = 0; b < nb; b++) {
          for (let oy = 0; oy < oH; oy++) {
            const iy = oy * sH + kh * dH - top;
            const n0 = (b * oH + oy) * oW;
            const rowInside = iy >= 0 && iy < inH;
            for (let ox = 0; ox < oW; ox++) {
              const ix = ox * sW + kw * dW - left;
              const n = n0 + ox;
              if (!rowInside || ix < 0 || ix >= inW) {
                for (let ci = 0; ci < inC; ci++) c[(kBase + ci) * N + n] = 0;
              } else {
                const xo = (((b0 + b) * inH + iy) * inW + ix) * inC;
                for (let ci = 0; ci < inC; ci++) c[(kBase + ci) * N + n] = xs[xo + ci];
              }
            }
          }
        }
      }
    }
    // dy rows for this chunk: a contiguous slice, so view it without copying when it is the whole batch.
    let dyChunk: tf.TensorInfo;
    let dyOwned = false;
    if (nb === batch) {
      dyChunk = viewAs(dy, [1, N, outC]);
    } else {
      dyChunk = backend.makeOutput([1, N, outC], 'float32');
      dyOwned = true;
      const src = backend.typedArrayFromHeap(dy) as Float32Array;
      (backend.typedArrayFromHeap(dyChunk) as Float32Array).set(src.subarray(b0 * perImage * outC, (b0 + nb) * perImage * outC));
    }
    const part = runStockWasmKernel('BatchMatMul', { a: cols, b: dyChunk }, backend, { transposeA: false, transposeB: false });
    backend.disposeData(cols.dataId);
    if (dyOwned) backend.disposeData(dyChunk.dataId);
    if (!result) {
      result = part;
    } else {
      const acc = backend.typedArrayFromHeap(result) as Float32Array;
      const add = backend.typedArrayFromHeap(part) as Float32Array;
      for (let i = 0; i < acc.length; i++) acc[i] += add[i];
      backend.disposeData(part.dataId);
    }
  }
  return viewAs(result!, [kH, kW, inC, outC]);
}
