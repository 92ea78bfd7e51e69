import type * as tf from '@tensorflow/tfjs-core';

/**
 * Faster convolution kernels for tfjs's pure-JS `cpu` backend (NHWC, float32, no dilation).
 *
 * The stock kernel reads every element through `TensorBuffer.get` with the output channel innermost in
 * a strided gather, which made it ~95 % of a GAN step on CPU (11.7 s of 12.3 s at 32 px). This one
 * walks the output gradient once and accumulates rank-1 updates over contiguous channel rows:
 *   dW[kh, kw, ci, co] += x[b, y·s + kh − pad, x·s + kw − pad, ci] · dy[b, y, x, co]
 * It computes the same sums in a different order (float32 storage, float64 accumulation per row).
 */
export function conv2dBackpropFilterNHWC(
  x: Float32Array,
  xShape: readonly number[],
  dy: Float32Array,
  info: tf.backend_util.Conv2DInfo,
): Float32Array {
  const [batch, inH, inW, inC] = xShape;
  const { outHeight, outWidth, outChannels: outC, filterHeight: kH, filterWidth: kW, strideHeight: sH, strideWidth: sW } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const dW = new Float32Array(kH * kW * inC * outC);
  const acc = new Float64Array(dW.length);
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const dyOff = ((b * outHeight + oy) * outWidth + ox) * outC;
        for (let kh = 0; kh < kH; kh++) {
          const iy = oy * sH + kh - top;
          if (iy < 0 || iy >= inH) continue;
          for (let kw = 0; kw < kW; kw++) {
            const ix = ox * sW + kw - left;
            if (ix < 0 || ix >= inW) continue;
            const xOff = ((b * inH + iy) * inW + ix) * inC;
            const wOff = (kh * kW + kw) * inC * outC;
            for (let ci = 0; ci < inC; ci++) {
              const xv = x[xOff + ci];
              if (xv === 0) continue;
              const row = wOff + ci * outC;
              for (let co = 0; co < outC; co++) acc[row + co] += xv * dy[dyOff + co];
            }
          }
        }
      }
    }
  }
  for (let i = 0; i < dW.length; i++) dW[i] = acc[i];
  return dW;
}


/** out[b, oy, ox, co] = Σ x[b, oy·s + kh − pad, ox·s + kw − pad, ci] · w[kh, kw, ci, co] (NHWC, HWIO). */
export function conv2dNHWC(x: Float32Array, xShape: readonly number[], w: Float32Array, info: tf.backend_util.Conv2DInfo): Float32Array {
  const [batch, inH, inW, inC] = xShape;
  const { outHeight, outWidth, outChannels: outC, filterHeight: kH, filterWidth: kW, strideHeight: sH, strideWidth: sW } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const out = new Float32Array(batch * outHeight * outWidth * outC);
  const acc = new Float64Array(outC);
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        acc.fill(0);
        for (let kh = 0; kh < kH; kh++) {
          const iy = oy * sH + kh - top;
          if (iy < 0 || iy >= inH) continue;
          for (let kw = 0; kw < kW; kw++) {
            const ix = ox * sW + kw - left;
            if (ix < 0 || ix >= inW) continue;
            const xOff = ((b * inH + iy) * inW + ix) * inC;
            const wOff = (kh * kW + kw) * inC * outC;
            for (let ci = 0; ci < inC; ci++) {
              const xv = x[xOff + ci];
              if (xv === 0) continue;
              const row = wOff + ci * outC;
              for (let co = 0; co < outC; co++) acc[co] += xv * w[row + co];
            }
          }
        }
        const o = ((b * outHeight + oy) * outWidth + ox) * outC;
        for (let co = 0; co < outC; co++) out[o + co] = acc[co];
      }
    }
  }
  return out;
}

/** dx[b, iy, ix, ci] = Σ dy[b, oy, ox, co] · w[kh, kw, ci, co] over the (oy, ox, kh, kw) that read (iy, ix). */
export function conv2dBackpropInputNHWC(dy: Float32Array, w: Float32Array, info: tf.backend_util.Conv2DInfo): Float32Array {
  const { batchSize: batch, inHeight: inH, inWidth: inW, inChannels: inC, outHeight, outWidth, outChannels: outC, filterHeight: kH, filterWidth: kW, strideHeight: sH, strideWidth: sW } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const acc = new Float64Array(batch * inH * inW * inC);
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const dyOff = ((b * outHeight + oy) * outWidth + ox) * outC;
        for (let kh = 0; kh < kH; kh++) {
          const iy = oy * sH + kh - top;
          if (iy < 0 || iy >= inH) continue;
          for (let kw = 0; kw < kW; kw++) {
            const ix = ox * sW + kw - left;
            if (ix < 0 || ix >= inW) continue;
            const xOff = ((b * inH + iy) * inW + ix) * inC;
            const wOff = (kh * kW + kw) * inC * outC;
            for (let ci = 0; ci < inC; ci++) {
              const row = wOff + ci * outC;
              let s = 0;
              for (let co = 0; co < outC; co++) s += dy[dyOff + co] * w[row + co];
              acc[xOff + ci] += s;
            }
          }
        }
      }
    }
  }
  return Float32Array.from(acc);
}
