import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { encodePngRgb } from './png.ts';

describe('encodePngRgb', () => {
  it('writes a PNG that a standard decoder reads back pixel for pixel', () => {
    const w = 7;
    const hgt = 5;
    const rgb = new Uint8Array(w * hgt * 3).map((_, i) => (i * 37 + (i >> 3) * 11) & 0xff);
    const png = PNG.sync.read(Buffer.from(encodePngRgb(rgb, w, hgt)));
    expect([png.width, png.height]).toEqual([w, hgt]);
    for (let p = 0; p < w * hgt; p++) {
      expect([png.data[p * 4], png.data[p * 4 + 1], png.data[p * 4 + 2], png.data[p * 4 + 3]]).toEqual([rgb[p * 3], rgb[p * 3 + 1], rgb[p * 3 + 2], 255]);
    }
  });

  it('refuses a pixel buffer of the wrong length', () => {
    expect(() => encodePngRgb(new Uint8Array(10), 2, 2)).toThrow('PNG pixels: 10 bytes, expected 12 for 2×2 RGB');
    expect(() => encodePngRgb(new Uint8Array(0), 0, 2)).toThrow('bad PNG size 0×2');
  });
});
