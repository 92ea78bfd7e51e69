/**
 * Lay out RGB tiles (size × size × 3 bytes each) in a grid of `rows` rows (one per class) and `cols`
 * columns with a `gap`-pixel white border, returning RGBA bytes ready for a PNG encoder or ImageData.
 */
export function tileGrid(tiles: readonly Uint8Array[], size: number, rows: number, cols: number, gap = 2): { width: number; height: number; rgba: Uint8ClampedArray } {
  const width = cols * size + (cols + 1) * gap;
  const height = rows * size + (rows + 1) * gap;
  const rgba = new Uint8ClampedArray(width * height * 4).fill(255);
  tiles.forEach((t, k) => {
    const r = Math.floor(k / cols);
    const c = k % cols;
    if (r >= rows) return;
    const ox = gap + c * (size + gap);
    const oy = gap + r * (size + gap);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const s = (y * size + x) * 3;
        const d = ((oy + y) * width + ox + x) * 4;
        rgba[d] = t[s];
        rgba[d + 1] = t[s + 1];
        rgba[d + 2] = t[s + 2];
        rgba[d + 3] = 255;
      }
    }
  });
  return { width, height, rgba };
}

/** Convert generator output in [-1, 1] (flat NHWC float data) into one RGB byte array per image. */
export function toRgbBytes(data: Float32Array, count: number, size: number): Uint8Array[] {
  const per = size * size * 3;
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const img = new Uint8Array(per);
    for (let j = 0; j < per; j++) img[j] = Math.max(0, Math.min(255, Math.round((data[i * per + j] + 1) * 127.5)));
    out.push(img);
  }
  return out;
}
