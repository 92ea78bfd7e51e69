/**
 * Resize an RGB(A) image to `size × size` RGB by area averaging (box filter) when shrinking and
 * bilinear interpolation when enlarging. Pure JS so every host (worker, Node, server) resizes alike.
 * `channels` is the source's channel count (3 or 4); alpha is dropped.
 */
export function resizeToRGB(src: Uint8Array | Uint8ClampedArray, width: number, height: number, channels: 3 | 4, size: number): Uint8Array {
  if (src.length < width * height * channels) throw new Error(`image buffer holds ${src.length} bytes, expected ${width * height * channels} for ${width}×${height}×${channels}`);
  const out = new Uint8Array(size * size * 3);
  const sx = width / size;
  const sy = height / size;
  if (sx >= 1 && sy >= 1) {
    for (let oy = 0; oy < size; oy++) {
      const y0 = oy * sy;
      const y1 = y0 + sy;
      for (let ox = 0; ox < size; ox++) {
        const x0 = ox * sx;
        const x1 = x0 + sx;
        let r = 0, g = 0, b = 0, wsum = 0;
        for (let y = Math.floor(y0); y < Math.min(height, Math.ceil(y1)); y++) {
          const wy = Math.min(y + 1, y1) - Math.max(y, y0);
          for (let x = Math.floor(x0); x < Math.min(width, Math.ceil(x1)); x++) {
            const w = wy * (Math.min(x + 1, x1) - Math.max(x, x0));
            const i = (y * width + x) * channels;
            r += src[i] * w;
            g += src[i + 1] * w;
            b += src[i + 2] * w;
            wsum += w;
          }
        }
        const o = (oy * size + ox) * 3;
        out[o] = Math.round(r / wsum);
        out[o + 1] = Math.round(g / wsum);
        out[o + 2] = Math.round(b / wsum);
      }
    }
    return out;
  }
  for (let oy = 0; oy < size; oy++) {
    const fy = Math.max(0, Math.min(height - 1, (oy + 0.5) * sy - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(height - 1, y0 + 1);
    const ty = fy - y0;
    for (let ox = 0; ox < size; ox++) {
      const fx = Math.max(0, Math.min(width - 1, (ox + 0.5) * sx - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(width - 1, x0 + 1);
      const tx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const a = src[(y0 * width + x0) * channels + c] * (1 - tx) + src[(y0 * width + x1) * channels + c] * tx;
        const b = src[(y1 * width + x0) * channels + c] * (1 - tx) + src[(y1 * width + x1) * channels + c] * tx;
        out[(oy * size + ox) * 3 + c] = Math.round(a * (1 - ty) + b * ty);
      }
    }
  }
  return out;
}
