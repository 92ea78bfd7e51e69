import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { MASKED, relativePositionIndex, roll, shiftedWindowMask, windowPartition, windowReverse } from './windows.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A [1, h, w, 2] map whose channels are each pixel's own (row, col). */
function coordinates(h: number, w: number): tf.Tensor4D {
  const data: number[] = [];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.push(y, x);
  return tf.tensor4d(data, [1, h, w, 2]);
}

function matrix(mask: Float32Array, window: number, mm: number): number[][] {
  return Array.from({ length: mm }, (_, i) => Array.from(mask.subarray(window * mm * mm + i * mm, window * mm * mm + (i + 1) * mm)));
}

describe('roll', () => {
  it('shifts cyclically like torch.roll along H and W', () => {
    const x = tf.tensor4d([0, 1, 2, 3, 4, 5, 6, 7, 8], [1, 3, 3, 1]);
    expect(Array.from(roll(x, -1).dataSync())).toEqual([4, 5, 3, 7, 8, 6, 1, 2, 0]);
    expect(Array.from(roll(x, 1).dataSync())).toEqual([8, 6, 7, 2, 0, 1, 5, 3, 4]);
    expect(Array.from(roll(roll(x, -2), 2).dataSync())).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(roll(x, 3).dataSync())).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

describe('windowPartition / windowReverse', () => {
  it('cuts a map into row-major windows of row-major tokens, and back', () => {
    // 2 images of 4×4, one channel holding 100·image + pixel index.
    const data = Array.from({ length: 32 }, (_, i) => 100 * Math.floor(i / 16) + (i % 16));
    const x = tf.tensor4d(data, [2, 4, 4, 1]);
    const w = windowPartition(x, 2);
    expect(w.shape).toEqual([8, 4, 1]);
    const rows = Array.from({ length: 8 }, (_, i) => Array.from(w.dataSync().subarray(i * 4, i * 4 + 4)));
    expect(rows).toEqual([
      [0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15],
      [100, 101, 104, 105], [102, 103, 106, 107], [108, 109, 112, 113], [110, 111, 114, 115],
    ]);
    expect(Array.from(windowReverse(w, 4, 4, 2).dataSync())).toEqual(data);
    expect(() => windowPartition(x, 3)).toThrow(/window size 3 does not divide the 4×4 map/);
  });
});

describe('shiftedWindowMask', () => {
  it('has the exact values for a 4×4 map, 2×2 windows, shift 1', () => {
    const mask = shiftedWindowMask(4, 4, 2, 1);
    expect(mask.length).toBe(4 * 4 * 4);
    const M = MASKED;
    // Window (0,0): rows 0–1, cols 0–1, one region.
    expect(matrix(mask, 0, 4)).toEqual([
      [0, 0, 0, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ]);
    // Window (0,1): cols 2 and 3 are different regions (col 3 wrapped around).
    expect(matrix(mask, 1, 4)).toEqual([
      [0, M, 0, M],
      [M, 0, M, 0],
      [0, M, 0, M],
      [M, 0, M, 0],
    ]);
    // Window (1,0): rows 2 and 3 differ.
    expect(matrix(mask, 2, 4)).toEqual([
      [0, 0, M, M],
      [0, 0, M, M],
      [M, M, 0, 0],
      [M, M, 0, 0],
    ]);
    // Window (1,1): four regions, each token alone.
    expect(matrix(mask, 3, 4)).toEqual([
      [0, M, M, M],
      [M, 0, M, M],
      [M, M, 0, M],
      [M, M, M, 0],
    ]);
    expect(Array.from(shiftedWindowMask(4, 4, 2, 0)).every((v) => v === 0)).toBe(true);
    expect(() => shiftedWindowMask(6, 6, 4, 2)).toThrow(/window size 4 does not divide the 6×6 map/);
  });

  it.each([
    [4, 2, 1],
    [8, 4, 2],
    [8, 2, 1],
  ])('on a %i×%i toy map (window %i, shift %i): keeps exactly the pairs that were neighbours before the shift', (size, m, shift) => {
    // Shift a map of its own coordinates and cut it into windows: two tokens of a window may attend to
    // each other iff their original offset equals their offset in the window, i.e. no wrap-around seam lies between them.
    const tokens = windowPartition(roll(coordinates(size, size), -shift), m).arraySync();
    const mask = shiftedWindowMask(size, size, m, shift);
    const mm = m * m;
    let cut = 0;
    tokens.forEach((win, w) => {
      for (let i = 0; i < mm; i++) {
        for (let j = 0; j < mm; j++) {
          const dy = Math.floor(i / m) - Math.floor(j / m);
          const dx = (i % m) - (j % m);
          const neighbours = win[i][0] - win[j][0] === dy && win[i][1] - win[j][1] === dx;
          const value = mask[(w * mm + i) * mm + j];
          expect(value).toBe(neighbours ? 0 : MASKED);
          if (!neighbours) cut++;
        }
      }
    });
    expect(cut).toBeGreaterThan(0);
  });
});

describe('relativePositionIndex', () => {
  it('indexes (Δy + M − 1)(2M − 1) + (Δx + M − 1) for every token pair', () => {
    expect(Array.from(relativePositionIndex(2))).toEqual([
      4, 3, 1, 0,
      5, 4, 2, 1,
      7, 6, 4, 3,
      8, 7, 5, 4,
    ]);
    const idx = relativePositionIndex(4);
    expect(Math.min(...idx)).toBe(0);
    expect(Math.max(...idx)).toBe(48);
    for (let i = 0; i < 16; i++) expect(idx[i * 16 + i]).toBe(24);
  });
});
