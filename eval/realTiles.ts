import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { decodeImage, readManifest } from '../node/tileFolder.ts';
import { resizeToRGB } from '../shared/image/resize.ts';
import { Rng } from '../shared/rng.ts';
import { EvalError } from './evalError.ts';

/** A real tile, decoded and resized. */
export interface RealTile {
  /** `size × size × 3` RGB bytes at the evaluation size. */
  pixels: Uint8Array;
  label: number;
  className: string;
  /** Path of the file. */
  file: string;
  patient?: string;
  /** The hospital (tissue-source site) manifest.csv names for the tile, if any. */
  site?: string;
}

export interface RealTileSet {
  dir: string;
  tiles: RealTile[];
  /** Width = height of every source file. */
  sourceSize: number;
  /** True when manifest.csv names a patient for every tile. */
  hasPatients: boolean;
}

export interface ReadRealOptions {
  classes: readonly string[];
  /** Evaluation size in px (the generator's image size). */
  size: number;
  /** Which flag the folder came from, for error messages, e.g. '--real-test'. */
  flag: string;
  /** What the folder is, e.g. 'test set'. */
  role: string;
  /** Use at most this many tiles per class (a seeded random subset). */
  maxPerClass?: number;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png']);

/**
 * Read `<dir>/<class>/<tile>.jpg|png`. Every configured class must have tiles, every label folder
 * must be a configured class, and every tile must be square and of one size, at least `size` px
 * (real tiles are never upsampled: that would blur them and flatter the generator).
 */
export function readRealTiles(dir: string, opts: ReadRealOptions): RealTileSet {
  if (!existsSync(dir)) throw new EvalError(`${opts.flag} folder ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new EvalError(`${opts.flag} ${dir} is not a folder`);
  const labelDirs = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name);
  const unknown = labelDirs.filter((n) => !opts.classes.includes(n));
  if (unknown.length) {
    throw new EvalError(`${opts.flag} ${dir}: label folder${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')} not among the checkpoint's classes (${opts.classes.join(', ')})`);
  }
  const files: { path: string; className: string; label: number }[] = [];
  const rng = new Rng(opts.seed ?? 0);
  opts.classes.forEach((className, label) => {
    const d = join(dir, className);
    const names = existsSync(d) ? readdirSync(d).filter((n) => IMAGE_EXT.has(extname(n).toLowerCase())).sort() : [];
    if (names.length === 0) {
      throw new EvalError(`class "${className}" is missing from the ${opts.role} (${opts.flag} ${dir} has no ${className}/ tiles); every class of the checkpoint (${opts.classes.join(', ')}) needs tiles`);
    }
    const chosen = opts.maxPerClass !== undefined && names.length > opts.maxPerClass ? rng.fork(className).shuffle(names.slice()).slice(0, opts.maxPerClass).sort() : names;
    for (const n of chosen) files.push({ path: join(d, n), className, label });
  });
  const manifest = readManifest(dir);
  let sourceSize = 0;
  let first = '';
  const tiles: RealTile[] = files.map(({ path, className, label }, i) => {
    const img = decodeImage(path);
    if (img.width !== img.height) throw new EvalError(`image size mismatch: ${path} is ${img.width}×${img.height}; tiles must be square`);
    if (i === 0) {
      sourceSize = img.width;
      first = path;
      if (sourceSize < opts.size) {
        throw new EvalError(
          `image size mismatch: ${opts.flag} tiles are ${sourceSize}×${sourceSize} px but the checkpoint generates ${opts.size}×${opts.size}; real tiles must be at least the generator's size (they are never upsampled)`,
        );
      }
    } else if (img.width !== sourceSize) {
      throw new EvalError(`image size mismatch: ${path} is ${img.width}×${img.height} but ${first} is ${sourceSize}×${sourceSize}; all tiles in ${opts.flag} must share one size`);
    }
    const pixels = resizeToRGB(img.rgba, img.width, img.height, 4, opts.size);
    opts.onProgress?.(i + 1, files.length);
    const row = manifest?.get(basename(path));
    return { pixels, label, className, file: path, patient: row?.patient || undefined, site: row?.site || undefined };
  });
  return { dir, tiles, sourceSize, hasPatients: tiles.every((t) => t.patient) };
}
