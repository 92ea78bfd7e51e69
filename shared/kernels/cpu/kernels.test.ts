import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../rng.ts';
import { conv2dBackpropFilterNHWC, conv2dBackpropInputNHWC, conv2dNHWC } from './conv2d.ts';
import { resizeNearestNeighborGradNHWC } from './resizeNearestNeighborGrad.ts';

/** Plain reference: direct convolution with explicit padding, in float64. */
function refConv(x: Float64Array, [b, h, w, ci]: number[], k: Float64Array, [kh, kw, , co]: number[], stride: number, info: tf.backend_util.Conv2DInfo) {
  const { outHeight: oh, outWidth: ow } = info;
  const out = new Float64Array(b * oh * ow * co);
  for (let n = 0; n < b; n++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++)
        for (let o = 0; o < co; o++) {
          let s = 0;
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++)
              for (let c = 0; c < ci; c++) {
                const iy = y * stride + i - info.padInfo.top;
                const ix = xx * stride + j - info.padInfo.left;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                s += x[((n * h + iy) * w + ix) * ci + c] * k[((i * kw + j) * ci + c) * co + o];
              }
          out[((n * oh + y) * ow + xx) * co + o] = s;
        }
  return out;
}

const shapes: [number[], number, number, number, 'same' | 'valid'][] = [
  // [x shape], kernel, outChannels, stride, pad
  [[1, 5, 5, 1], 3, 1, 1, 'same'],
  [[2, 7, 6, 3], 3, 4, 2, 'same'],
  [[3, 8, 8, 2], 3, 5, 2, 'valid'],
  [[1, 9, 9, 4], 1, 3, 1, 'same'],
  [[2, 6, 6, 3], 5, 2, 3, 'same'],
];

describe.each(shapes)('conv kernels x=%j k=%i co=%i stride=%i %s', (xShape, k, co, stride, pad) => {
  const rng = new Rng(xShape.reduce((a, b) => a * 7 + b, k));
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const ci = xShape[3];
  const info = tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], [k, k, ci, co], stride, 1, pad);
  const x = rand(xShape.reduce((a, b) => a * b));
  const w = rand(k * k * ci * co);
  const dy = rand(info.outShape.reduce((a, b) => a * b));
  const y = refConv(Float64Array.from(x), xShape, Float64Array.from(w), [k, k, ci, co], stride, info);
  const close = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    expect(a.length).toBe(b.length);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-4 * (1 + Math.abs(b[i])));
  };

  it('forward matches the direct reference', () => close(conv2dNHWC(x, xShape, w, info), y));

  it('input and filter gradients are the adjoints of the forward (⟨dy, conv(x, w)⟩ identities)', () => {
    // ⟨dy, conv(x, w)⟩ = ⟨backpropInput(dy, w), x⟩ = ⟨backpropFilter(x, dy), w⟩
    const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * b[i], 0);
    const lhs = dot(dy, y);
    expect(dot(conv2dBackpropInputNHWC(dy, w, info), x)).toBeCloseTo(lhs, 3);
    expect(dot(conv2dBackpropFilterNHWC(x, xShape, dy, info), w)).toBeCloseTo(lhs, 3);
  });

  it('registered kernels give tf.conv2d and its gradients the same values', () => {
    const xt = tf.tensor4d(x, xShape as [number, number, number, number]);
    const wt = tf.tensor4d(w, [k, k, ci, co]);
    close(tf.conv2d(xt, wt, stride, pad).dataSync(), y);
    const dyt = tf.tensor(dy, info.outShape);
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad), dyt)))([xt, wt]);
    close(gx.dataSync(), conv2dBackpropInputNHWC(dy, w, info));
    close(gw.dataSync(), conv2dBackpropFilterNHWC(x, xShape, dy, info));
    tf.dispose([xt, wt, dyt, gx, gw]);
  });
});

describe('ResizeNearestNeighborGrad', () => {
  it.each([
    [[2, 3, 3, 2], [6, 6], false, false],
    [[3, 2, 4, 1], [5, 7], false, true],
    [[2, 4, 4, 3], [7, 3], true, false],
  ] as const)('is the adjoint of the forward resize for %j → %j (alignCorners %s, halfPixel %s)', (shape, size, alignCorners, halfPixelCenters) => {
    const rng = new Rng(5);
    const x = tf.tensor4d(Float32Array.from({ length: (shape as readonly number[]).reduce((a, b) => a * b, 1) }, () => rng.normal()), shape as unknown as [number, number, number, number]);
    const y = tf.image.resizeNearestNeighbor(x, size as unknown as [number, number], alignCorners, halfPixelCenters);
    const dy = Float32Array.from({ length: y.size }, () => rng.normal());
    const dx = resizeNearestNeighborGradNHWC(dy, shape, y.shape, alignCorners, halfPixelCenters);
    const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * b[i], 0);
    expect(dot(dx, x.dataSync())).toBeCloseTo(dot(dy, y.dataSync()), 3);
    // and the registered kernel serves tf.grad (the stock one is wrong for batch > 1)
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.image.resizeNearestNeighbor(v as tf.Tensor4D, size as unknown as [number, number], alignCorners, halfPixelCenters), tf.tensor(dy, y.shape))))(x);
    expect(Array.from(g.dataSync())).toEqual(Array.from(dx));
  });
});
