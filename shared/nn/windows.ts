import * as tf from '@tensorflow/tfjs-core';

/**
 * Window bookkeeping for Swin-style attention (Liu et al. 2021): cyclic shifts, partitioning a feature
 * map into M×M windows and back, the additive mask that keeps shifted windows from attending across
 * the wrap-around seam, and the relative-position index. Only reshape/transpose/slice/concat of rank ≤ 4,
 * so it runs on every tfjs backend and stays twice differentiable.
 */

/** Value added to the attention logits of token pairs that must not attend to each other (as in Swin). */
export const MASKED = -100;

/**
 * Cyclic shift of a [B, H, W, C] map along H and W, like `torch.roll(x, (shift, shift), (1, 2))`:
 * out[i, j] = x[(i − shift) mod H, (j − shift) mod W]. Swin shifts by −⌊M/2⌋ before attention and back after.
 */
export function roll(x: tf.Tensor4D, shift: number): tf.Tensor4D {
  const rollAxis = (t: tf.Tensor4D, axis: 1 | 2): tf.Tensor4D => {
    const n = t.shape[axis];
    const s = ((shift % n) + n) % n;
    if (s === 0) return t;
    const begin = [0, 0, 0, 0];
    const size = [-1, -1, -1, -1];
    const tailBegin = begin.slice();
    tailBegin[axis] = n - s;
    const headSize = size.slice();
    headSize[axis] = n - s;
    return tf.concat([tf.slice(t, tailBegin, size), tf.slice(t, begin, headSize)], axis);
  };
  return rollAxis(rollAxis(x, 1), 2);
}

/**
 * [B, H, W, C] → [B·nW, M·M, C] with nW = (H/M)(W/M) windows per image, windows in row-major order
 * (image-major), tokens in row-major order within a window.
 */
export function windowPartition(x: tf.Tensor4D, m: number): tf.Tensor3D {
  const [b, h, w, c] = x.shape;
  if (h % m !== 0 || w % m !== 0) throw new Error(`window size ${m} does not divide the ${h}×${w} map`);
  // [B·H/M, M, W/M, M·C] → [B·H/M, W/M, M, M·C] → [B·nW, M·M, C]
  const t = tf.transpose(tf.reshape(x, [b * (h / m), m, w / m, m * c]), [0, 2, 1, 3]);
  return tf.reshape(t, [b * (h / m) * (w / m), m * m, c]);
}

/** Inverse of windowPartition: [B·nW, M·M, C] → [B, H, W, C]. */
export function windowReverse(windows: tf.Tensor3D, h: number, w: number, m: number): tf.Tensor4D {
  const [bw, mm, c] = windows.shape;
  if (mm !== m * m) throw new Error(`windows hold ${mm} tokens, expected ${m * m}`);
  const b = bw / ((h / m) * (w / m));
  const t = tf.transpose(tf.reshape(windows, [b * (h / m), w / m, m, m * c]), [0, 2, 1, 3]);
  return tf.reshape(t, [b, h, w, c]);
}

/**
 * The shifted-window attention mask for an H×W map cut into M×M windows after a cyclic shift by −shift:
 * [nW, M², M²] with 0 where two tokens of a window come from the same region of the unshifted map and
 * MASKED where the window wraps around and they do not. Regions are Swin's 3×3 grid of slices
 * [0, H−M), [H−M, H−shift), [H−shift, H) (and likewise for W). Row-major windows, row-major tokens.
 */
export function shiftedWindowMask(h: number, w: number, m: number, shift: number): Float32Array {
  if (h % m !== 0 || w % m !== 0) throw new Error(`window size ${m} does not divide the ${h}×${w} map`);
  if (shift < 0 || shift >= m) throw new Error(`shift ${shift} must lie in [0, ${m})`);
  const region = (i: number, n: number) => (i < n - m ? 0 : i < n - shift ? 1 : 2);
  const label = (y: number, x: number) => region(y, h) * 3 + region(x, w);
  const nWh = h / m;
  const nWw = w / m;
  const mm = m * m;
  const out = new Float32Array(nWh * nWw * mm * mm);
  for (let wy = 0; wy < nWh; wy++) {
    for (let wx = 0; wx < nWw; wx++) {
      const labels: number[] = [];
      for (let ty = 0; ty < m; ty++) for (let tx = 0; tx < m; tx++) labels.push(label(wy * m + ty, wx * m + tx));
      const base = (wy * nWw + wx) * mm * mm;
      for (let i = 0; i < mm; i++) for (let j = 0; j < mm; j++) out[base + i * mm + j] = labels[i] === labels[j] ? 0 : MASKED;
    }
  }
  return out;
}

/**
 * Index into a (2M−1)² relative-position table for every token pair of an M×M window: [M², M²] flattened,
 * index = (Δy + M − 1)(2M − 1) + (Δx + M − 1) with Δ = position(i) − position(j).
 */
export function relativePositionIndex(m: number): Int32Array {
  const mm = m * m;
  const out = new Int32Array(mm * mm);
  for (let i = 0; i < mm; i++) {
    for (let j = 0; j < mm; j++) {
      const dy = Math.floor(i / m) - Math.floor(j / m);
      const dx = (i % m) - (j % m);
      out[i * mm + j] = (dy + m - 1) * (2 * m - 1) + (dx + m - 1);
    }
  }
  return out;
}
