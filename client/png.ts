import { zlibSync } from 'fflate';
import { crc32 } from '../shared/codec/crc32.ts';

/**
 * A small PNG encoder for 8-bit RGB images (colour type 2), used for the synthetic-image export. Pure
 * JS (fflate's zlib), so the export is byte-for-byte the same in the browser worker and in Node tests.
 * Each row uses the "Up" filter (type 2) except the first ("None"), which compresses smooth tissue well.
 */

const SIGNATURE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** Encode `width × height` RGB bytes (row-major) as a PNG file. */
export function encodePngRgb(rgb: Uint8Array, width: number, height: number): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new Error(`bad PNG size ${width}×${height}`);
  if (rgb.length !== width * height * 3) throw new Error(`PNG pixels: ${rgb.length} bytes, expected ${width * height * 3} for ${width}×${height} RGB`);
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  // compression 0, filter 0, interlace 0
  const stride = width * 3;
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    const row = rgb.subarray(y * stride, (y + 1) * stride);
    if (y === 0) {
      raw[o] = 0;
      raw.set(row, o + 1);
    } else {
      raw[o] = 2;
      const prev = y - 1;
      for (let x = 0; x < stride; x++) raw[o + 1 + x] = (row[x] - rgb[prev * stride + x]) & 0xff;
    }
  }
  const parts = [SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', zlibSync(raw, { level: 6 })), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
