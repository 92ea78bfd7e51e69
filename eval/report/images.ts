import { encodePng, encodeRgbPng } from '../../node/png.ts';
import { tileGrid } from '../../shared/image/grid.ts';

/** A PNG as a data: URL, for a self-contained HTML page. */
export function pngDataUrl(png: Buffer): string {
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** Tiles laid out one row per class (`perRow` tiles each), as a PNG. */
export function classGridPng(tilesByClass: readonly (readonly Uint8Array[])[], size: number, perRow: number): Buffer {
  const tiles: Uint8Array[] = [];
  const blank = new Uint8Array(size * size * 3).fill(255);
  for (const row of tilesByClass) for (let i = 0; i < perRow; i++) tiles.push(row[i] ?? blank);
  const g = tileGrid(tiles, size, tilesByClass.length, perRow);
  return encodePng(g.width, g.height, g.rgba);
}

export function tilePng(rgb: Uint8Array, size: number): Buffer {
  return encodeRgbPng(rgb, size);
}
