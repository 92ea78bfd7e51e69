import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { Tile } from '../shared/data/dataset.ts';
import { resizeToRGB } from '../shared/image/resize.ts';
import { CliError } from './cliError.ts';

/** A tile read from a labelled folder, with what the manifest says about it. */
export interface FolderTile extends Tile {
  file: string;
  className: string;
  patient?: string;
  site?: string;
}

export interface ManifestRow {
  file: string;
  label?: string;
  patient?: string;
  site?: string;
  split?: string;
}

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png']);

/** Parse a simple CSV (no quoted commas) with a header row into objects. */
export function parseCsv(text: string, source: string): Record<string, string>[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) return [];
  const header = lines[0].split(',').map((h) => h.trim());
  return lines.slice(1).map((line, i) => {
    const cells = line.split(',');
    if (cells.length !== header.length) throw new CliError(`${source}: line ${i + 2} has ${cells.length} fields, the header has ${header.length}`);
    return Object.fromEntries(header.map((h, j) => [h, cells[j].trim()]));
  });
}

/** manifest.csv in the folder or its parent, indexed by file name (tile names are unique). */
export function readManifest(dir: string): Map<string, ManifestRow> | null {
  for (const candidate of [join(dir, 'manifest.csv'), join(dirname(resolve(dir)), 'manifest.csv')]) {
    if (!existsSync(candidate)) continue;
    const rows = parseCsv(readFileSync(candidate, 'utf8'), candidate);
    if (rows.length && !('file' in rows[0])) throw new CliError(`${candidate}: needs a "file" column`);
    return new Map(rows.map((r) => [basename(r.file), r as unknown as ManifestRow]));
  }
  return null;
}

/** Decode a JPEG or PNG file to RGBA. Throws a CliError naming the file if it cannot be read. */
export function decodeImage(path: string): { width: number; height: number; rgba: Uint8Array } {
  const buf = readFileSync(path);
  try {
    if (buf[0] === 0x89 && buf[1] === 0x50) {
      const png = PNG.sync.read(buf);
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    }
    if (buf[0] === 0xff && buf[1] === 0xd8) {
      const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 256 });
      return { width: img.width, height: img.height, rgba: img.data };
    }
  } catch (e) {
    throw new CliError(`cannot read image ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  throw new CliError(`cannot read image ${path}: not a JPEG or PNG file`);
}

export interface ReadOptions {
  classes: readonly string[];
  size: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Read a folder laid out `<label>/<tile>.jpg|png`, decode and resize every tile to `size` px.
 * Every label folder must be one of `classes`; every class must have at least one tile.
 */
export function readTileFolder(dir: string, opts: ReadOptions): FolderTile[] {
  if (!existsSync(dir)) throw new CliError(`data folder ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new CliError(`data path ${dir} is not a folder`);
  const labelDirs = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && !d.name.startsWith('.'));
  if (labelDirs.length === 0) throw new CliError(`data folder ${dir} has no label folders (expected ${opts.classes.map((c) => `${c}/`).join(', ')})`);
  const unknown = labelDirs.map((d) => d.name).filter((n) => !opts.classes.includes(n));
  if (unknown.length) {
    throw new CliError(`label folder${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')} in ${dir} ${unknown.length > 1 ? 'are' : 'is'} not among the configured classes (${opts.classes.join(', ')})`);
  }
  const files: { path: string; className: string }[] = [];
  for (const className of opts.classes) {
    const d = join(dir, className);
    if (!existsSync(d)) throw new CliError(`class "${className}" has no folder in ${dir}`);
    const names = readdirSync(d).filter((n) => IMAGE_EXT.has(extname(n).toLowerCase())).sort();
    if (names.length === 0) throw new CliError(`class folder ${d} holds no .jpg or .png tiles`);
    for (const n of names) files.push({ path: join(d, n), className });
  }
  const manifest = readManifest(dir);
  const tiles: FolderTile[] = [];
  files.forEach(({ path, className }, i) => {
    const img = decodeImage(path);
    const pixels = resizeToRGB(img.rgba, img.width, img.height, 4, opts.size);
    const row = manifest?.get(basename(path));
    tiles.push({ pixels, label: opts.classes.indexOf(className), file: path, className, patient: row?.patient, site: row?.site });
    opts.onProgress?.(i + 1, files.length);
  });
  return tiles;
}
