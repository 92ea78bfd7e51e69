import { PNG } from 'pngjs';

/** Encode RGBA bytes as a PNG file. */
export function encodePng(width: number, height: number, rgba: Uint8ClampedArray | Uint8Array): Buffer {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  return PNG.sync.write(png);
}

/** Encode RGB bytes (size × size × 3) as a PNG file. */
export function encodeRgbPng(rgb: Uint8Array, size: number): Buffer {
  const rgba = new Uint8Array(size * size * 4);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgba[j] = rgb[i];
    rgba[j + 1] = rgb[i + 1];
    rgba[j + 2] = rgb[i + 2];
    rgba[j + 3] = 255;
  }
  return encodePng(size, size, rgba);
}
