import { tileGrid, toRgbBytes } from '../image/grid.ts';
import { generate, type Gan } from './gan.ts';

/**
 * The sample grid everything shows (the web app's Training panel, the simulation's samples.png): one row
 * per class of `perClass` tiles generated from fixed latents (`seed`), so grids of successive models can
 * be compared tile by tile. RGBA bytes with a `gap`-pixel white border (shared/image/grid.ts).
 */
export async function generateSampleGrid(gan: Gan, perClass: number, seed: number, gap = 2): Promise<{ width: number; height: number; rgba: Uint8ClampedArray }> {
  const { classes, imageSize } = gan.cfg;
  const labels = classes.flatMap((_, c) => new Array<number>(perClass).fill(c));
  const t = generate(gan, labels, seed);
  const data = (await t.data()) as Float32Array;
  t.dispose();
  return tileGrid(toRgbBytes(data, labels.length, imageSize), imageSize, classes.length, perClass, gap);
}
