import { unzipSync } from 'fflate';
import { resizeToRGB } from '../shared/image/resize.ts';
import type { ImportItem, ImportReport } from './api.ts';
import { classifyPath, isSystemFile, pathParts } from './tilePaths.ts';
import type { HashStatus, TileClaim, TileRecord } from './tileStore.ts';

/**
 * Import dropped files as tiles, in the worker: open ZIPs, sort files into classes by folder, hash each
 * file (SHA-256 of its bytes) to skip duplicates, decode it off the main thread, resize it to the
 * federation's image size with the shared resizer, and write tiles to IndexedDB in batches after
 * checking the storage quota. Every file that is not imported is either a duplicate, an operating-system
 * file, or listed with the reason. An image found under two classes (in this import, or already stored
 * under another class) is recorded as a conflict for staff to settle: it is not trained on until then.
 */

/** Decoded pixels of one image (RGBA, row-major). */
export interface DecodedImage {
  width: number;
  height: number;
  rgba: Uint8Array | Uint8ClampedArray;
}

export interface ImportDeps {
  store: {
    lookup(hash: string): Promise<HashStatus | undefined>;
    putTiles(t: readonly TileRecord[]): Promise<void>;
    addConflicts(claims: readonly ({ hash: string } & TileClaim)[]): Promise<string[]>;
  };
  classes: readonly string[];
  size: number;
  /** Class of files picked without any folder. */
  looseClass?: string;
  /** Decode image bytes; throws if they are not a readable image. Default: createImageBitmap + OffscreenCanvas. */
  decode?: (bytes: Uint8Array) => Promise<DecodedImage>;
  /** Free storage in bytes, or undefined when unknown. Default: navigator.storage.estimate(). */
  freeBytes?: () => Promise<number | undefined>;
  onProgress?: (p: { done: number; total: number; added: number; duplicates: number; rejected: number }) => void;
  /** Tiles written per transaction (default 64). */
  batchSize?: number;
  /** Files decoded at once (default 4). */
  concurrency?: number;
  now?: () => number;
}

/** Bytes a stored tile takes, roughly: pixels plus record overhead. */
export function tileBytes(size: number): number {
  return size * size * 3 + 256;
}

interface Candidate {
  path: string;
  label: string;
  read: () => Promise<Uint8Array>;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  let s = '';
  for (const b of digest) s += b.toString(16).padStart(2, '0');
  return s;
}

let canvas: OffscreenCanvas | undefined;
let ctx2d: OffscreenCanvasRenderingContext2D | null = null;

/** Browser decoder: createImageBitmap without colour conversion, pixels read back through an OffscreenCanvas. */
export async function decodeWithImageBitmap(bytes: Uint8Array): Promise<DecodedImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>]), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new Error('the file could not be decoded as an image (damaged, or not really an image)');
  }
  try {
    const { width, height } = bitmap;
    if (width < 1 || height < 1) throw new Error('the image is empty (0 pixels)');
    canvas ??= new OffscreenCanvas(width, height);
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
      ctx2d = null;
    }
    ctx2d ??= canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx2d) throw new Error('this browser cannot read image pixels in a worker (no OffscreenCanvas 2D)');
    ctx2d.clearRect(0, 0, width, height);
    ctx2d.drawImage(bitmap, 0, 0);
    return { width, height, rgba: ctx2d.getImageData(0, 0, width, height).data };
  } finally {
    bitmap.close();
  }
}

export async function storageFreeBytes(): Promise<number | undefined> {
  const storage = (globalThis as { navigator?: { storage?: { estimate?: () => Promise<{ usage?: number; quota?: number }> } } }).navigator?.storage;
  if (!storage?.estimate) return undefined;
  const { usage = 0, quota } = await storage.estimate();
  return quota === undefined ? undefined : Math.max(0, quota - usage);
}

function formatMB(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes < 10e6 ? 1 : 0)} MB`;
}

/** Expand the dropped items into tile candidates (opening ZIPs); everything else goes to the report. */
export async function expandItems(items: readonly ImportItem[], classes: readonly string[], looseClass: string | undefined, report: ImportReport): Promise<Candidate[]> {
  const out: Candidate[] = [];
  for (const item of items) {
    const v = classifyPath(item.path, classes, looseClass);
    if (v.kind === 'system') {
      report.ignored++;
    } else if (v.kind === 'rejected') {
      report.rejected.push({ path: item.path, reason: v.reason });
    } else if (v.kind === 'tile') {
      out.push({ path: item.path, label: v.label, read: async () => new Uint8Array(await item.file.arrayBuffer()) });
    } else {
      let entries: Record<string, Uint8Array>;
      try {
        let system = 0;
        entries = unzipSync(new Uint8Array(await item.file.arrayBuffer()), {
          filter: (f) => {
            if (f.name.endsWith('/')) return false;
            if (isSystemFile(f.name)) return void system++, false;
            return true;
          },
        });
        report.ignored += system;
      } catch (e) {
        report.rejected.push({ path: item.path, reason: `not a readable ZIP archive (${(e as Error).message})` });
        continue;
      }
      // A ZIP counts as a folder named like the archive: MSIH.zip may hold MSIH tiles directly.
      const base = pathParts(item.path.replace(/\.zip$/i, '')).join('/');
      for (const [name, bytes] of Object.entries(entries)) {
        const path = `${base}/${name}`;
        const ev = classifyPath(path, classes);
        if (ev.kind === 'tile') out.push({ path, label: ev.label, read: async () => bytes });
        else if (ev.kind === 'zip') report.rejected.push({ path, reason: 'a ZIP inside a ZIP: unpack the inner archive first' });
        else if (ev.kind === 'rejected') report.rejected.push({ path, reason: ev.reason });
        else report.ignored++;
      }
    }
  }
  return out;
}

export async function importTiles(items: readonly ImportItem[], deps: ImportDeps): Promise<ImportReport> {
  const now = deps.now ?? (() => Date.now());
  const t0 = now();
  const report: ImportReport = { added: 0, duplicates: 0, ignored: 0, rejected: [], conflicts: [], seconds: 0 };
  const decode = deps.decode ?? decodeWithImageBitmap;
  const freeBytes = deps.freeBytes ?? storageFreeBytes;
  const batchSize = deps.batchSize ?? 64;
  const per = tileBytes(deps.size);

  const candidates = await expandItems(items, deps.classes, deps.looseClass, report);
  const total = candidates.length;
  let done = 0;
  let lastProgress = 0;
  const progress = (force = false) => {
    const t = now();
    if (!force && t - lastProgress < 100) return;
    lastProgress = t;
    deps.onProgress?.({ done, total, added: report.added, duplicates: report.duplicates, rejected: report.rejected.length });
  };
  progress(true);

  // Up-front quota check: refuse an import that cannot fit rather than fill the disk half-way.
  const free = await freeBytes();
  if (free !== undefined && total * per > free) {
    report.stopped = `not enough browser storage: ${total} tiles need about ${formatMB(total * per)}, but only ${formatMB(free)} is free. Free up disk space or import fewer tiles at a time.`;
    report.seconds = (now() - t0) / 1000;
    return report;
  }

  /** Hash → what is known of it, updated by the files of this import (decided in the order dropped). */
  const seen = new Map<string, HashStatus>();
  /** Images found under a class other than the one they are stored (or taken in this import) under. */
  const claims: ({ hash: string } & TileClaim)[] = [];
  /** Hashes of the tiles this import takes (stored as training tiles). */
  const taken = new Set<string>();
  let pending: TileRecord[] = [];
  let stop: string | undefined;
  const flush = async () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    const f = await freeBytes();
    if (f !== undefined && batch.length * per * 2 > f) {
      stop = `browser storage is full (${formatMB(f)} free): the import stopped; ${report.added} tiles were saved.`;
      return;
    }
    try {
      await deps.store.putTiles(batch);
      report.added += batch.length;
    } catch (e) {
      const name = (e as { name?: string }).name;
      stop = name === 'QuotaExceededError' ? `browser storage is full: the import stopped; ${report.added} tiles were saved.` : `could not save tiles: ${(e as Error).message}`;
    }
  };

  // Files are read, hashed and decoded in parallel, but the duplicate decision is taken in the order the
  // files were dropped, so the first of two identical files is the one kept, whatever finishes first.
  let decided = 0;
  const turns = new Map<number, () => void>();
  const awaitTurn = (i: number) => (i === decided ? Promise.resolve() : new Promise<void>((resolve) => turns.set(i, resolve)));
  const passTurn = () => {
    decided++;
    turns.get(decided)?.();
    turns.delete(decided);
  };

  let next = 0;
  const worker = async () => {
    while (!stop && next < candidates.length) {
      const i = next++;
      const c = candidates[i];
      try {
        let bytes: Uint8Array | undefined;
        let hash: string | undefined;
        let readError: unknown;
        try {
          bytes = await c.read();
          hash = await sha256Hex(bytes);
        } catch (e) {
          readError = e;
        }
        let take = false;
        await awaitTurn(i);
        try {
          if (readError !== undefined) throw readError;
          const known = seen.get(hash!) ?? (await deps.store.lookup(hash!));
          if (known === undefined) {
            seen.set(hash!, { kind: 'tile', label: c.label, overruled: [] });
            taken.add(hash!);
            take = true;
          } else {
            const labels = known.kind === 'tile' ? [known.label] : known.labels;
            // Staff already decided this image is not of this class (relabel or settled conflict).
            const overruled = known.kind === 'tile' && known.overruled.includes(c.label);
            if (labels.includes(c.label) || overruled) {
              report.duplicates++;
            } else {
              claims.push({ hash: hash!, label: c.label, name: c.path });
              report.conflicts.push({ path: c.path, label: c.label, otherLabels: [...labels] });
              seen.set(hash!, { kind: 'conflict', labels: [...labels, c.label] });
            }
          }
        } finally {
          passTurn();
        }
        if (take) {
          const img = await decode(bytes!);
          const pixels = resizeToRGB(img.rgba, img.width, img.height, 4, deps.size);
          pending.push({ hash: hash!, label: c.label, name: c.path, size: deps.size, pixels, addedAt: now() });
          if (pending.length >= batchSize) await flush();
        }
      } catch (e) {
        report.rejected.push({ path: c.path, reason: (e as Error).message || String(e) });
      }
      done++;
      progress();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, deps.concurrency ?? 4) }, worker));
  if (!stop) await flush();
  // After the tiles are written, so that an image taken and claimed again in this import is stored.
  try {
    // A tile this import stored that is now a conflict is not counted as added (it is not trained on).
    for (const h of await deps.store.addConflicts(claims)) if (taken.has(h)) report.added--;
  } catch (e) {
    stop ??= `could not record the images found in two classes: ${(e as Error).message}`;
  }
  if (stop) report.stopped = stop;
  progress(true);
  report.seconds = (now() - t0) / 1000;
  return report;
}
