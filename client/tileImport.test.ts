import { zipSync } from 'fflate';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import type { ImportItem } from './api.ts';
import { encodePngRgb } from './png.ts';
import { importTiles, sha256Hex, tileBytes, type DecodedImage } from './tileImport.ts';
import { TileStore } from './tileStore.ts';

const CLASSES = ['MSIH', 'nonMSIH'];

function png(value: number, size = 8): Uint8Array {
  return encodePngRgb(new Uint8Array(size * size * 3).fill(value), size, size);
}

function item(path: string, bytes: Uint8Array): ImportItem {
  return { path, file: new Blob([bytes as Uint8Array<ArrayBuffer>]) };
}

async function decodePng(bytes: Uint8Array): Promise<DecodedImage> {
  try {
    const p = PNG.sync.read(Buffer.from(bytes));
    return { width: p.width, height: p.height, rgba: new Uint8Array(p.data) };
  } catch {
    throw new Error('the file could not be decoded as an image (damaged, or not really an image)');
  }
}

let stores = 0;
/** A TileStore on an in-memory IndexedDB (fake-indexeddb). */
async function memoryStore(): Promise<TileStore> {
  const auto = 'fake-indexeddb/auto';
  await import(auto);
  return TileStore.open(`import-test-${++stores}`);
}

async function storedTiles(store: TileStore) {
  return (await store.listTiles({ limit: 1e6 })).tiles;
}

describe('importTiles', () => {
  it('imports folders and ZIPs, skips duplicates by content, sets aside an image filed under two classes, and lists every refused file with its reason', async () => {
    const store = await memoryStore();
    const zip = zipSync({ 'MSIH/z1.png': png(10), 'nonMSIH/z2.png': png(20), 'nonMSIH/dup-of-a.png': png(100), 'Stroma/s.png': png(30), '__MACOSX/._x': new Uint8Array([1]) });
    const items = [
      item('export/MSIH/a.png', png(100)),
      item('export/MSIH/a-copy.png', png(100)),
      item('export/nonMSIH/b.png', png(200)),
      item('export/nonMSIH/notes.txt', new TextEncoder().encode('hello')),
      item('export/nonMSIH/broken.png', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3])),
      item('loose.png', png(50)),
      item('tiles.zip', zip),
      item('bad.zip', new Uint8Array([1, 2, 3, 4])),
      item('export/.DS_Store', new Uint8Array([0])),
    ];
    const progress: number[] = [];
    const r = await importTiles(items, { store, classes: CLASSES, size: 4, decode: decodePng, freeBytes: async () => 1e9, onProgress: (p) => progress.push(p.done), batchSize: 2 });
    // a.png, b.png, z1.png, z2.png were written; a.png is also in nonMSIH/, so it waits for staff's decision.
    expect(r.added).toBe(3);
    expect(r.duplicates).toBe(1);
    expect(r.ignored).toBe(2);
    expect(r.conflicts).toEqual([{ path: 'tiles/nonMSIH/dup-of-a.png', label: 'nonMSIH', otherLabels: ['MSIH'] }]);
    expect(r.stopped).toBeUndefined();
    expect(r.rejected.sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      { path: 'bad.zip', reason: expect.stringMatching(/^not a readable ZIP archive/) },
      { path: 'export/nonMSIH/broken.png', reason: 'the file could not be decoded as an image (damaged, or not really an image)' },
      { path: 'export/nonMSIH/notes.txt', reason: 'not an image (.txt file)' },
      { path: 'loose.png', reason: expect.stringMatching(/^not in a class folder/) },
      { path: 'tiles/Stroma/s.png', reason: 'unknown class folder "Stroma": this federation\'s classes are "MSIH", "nonMSIH"' },
    ]);
    const byName = new Map((await storedTiles(store)).map((t) => [t.name, t]));
    expect([...byName.keys()].sort()).toEqual(['export/nonMSIH/b.png', 'tiles/MSIH/z1.png', 'tiles/nonMSIH/z2.png']);
    const b = byName.get('export/nonMSIH/b.png')!;
    expect(b.label).toBe('nonMSIH');
    expect(b.size).toBe(4);
    expect(b.hash).toBe(await sha256Hex(png(200)));
    expect(Array.from(b.pixels)).toEqual(new Array(4 * 4 * 3).fill(200));
    expect(byName.get('tiles/MSIH/z1.png')!.label).toBe('MSIH');
    const [a] = await store.listConflicts();
    expect(a.hash).toBe(await sha256Hex(png(100)));
    expect(a.claims).toEqual([
      { label: 'MSIH', name: 'export/MSIH/a.png' },
      { label: 'nonMSIH', name: 'tiles/nonMSIH/dup-of-a.png' },
    ]);
    expect(Array.from(a.pixels)).toEqual(new Array(4 * 4 * 3).fill(100));
    // Candidates: a, a-copy, b, broken, z1, z2, dup-of-a (the rest is refused by path).
    expect(progress[progress.length - 1]).toBe(7);

    // A second import of the same files adds nothing.
    const again = await importTiles([item('MSIH/a.png', png(100)), item('MSIH/b.png', png(200)), item('MSIH/z1.png', png(10))], { store, classes: CLASSES, size: 4, decode: decodePng, freeBytes: async () => 1e9 });
    expect(again).toMatchObject({ added: 0, duplicates: 2, rejected: [] });
    // …except b.png now also found as MSIH: a new conflict.
    expect(again.conflicts).toEqual([{ path: 'MSIH/b.png', label: 'MSIH', otherLabels: ['nonMSIH'] }]);
    expect(await store.conflictCount()).toBe(2);

    // Once staff choose a class, the other folder's copy is skipped when imported again.
    await store.resolveConflict(a.hash, 'MSIH');
    const third = await importTiles([item('tiles/nonMSIH/dup-of-a.png', png(100))], { store, classes: CLASSES, size: 4, decode: decodePng, freeBytes: async () => 1e9 });
    expect(third).toMatchObject({ added: 0, duplicates: 1, rejected: [], conflicts: [] });
  });

  it('keeps the first of two identical files in drop order, even when the second is read first', async () => {
    const store = await memoryStore();
    const slow = (bytes: Uint8Array, ms: number): ImportItem['file'] =>
      ({ arrayBuffer: () => new Promise<ArrayBuffer>((r) => setTimeout(() => r(bytes.slice().buffer as ArrayBuffer), ms)) }) as unknown as Blob;
    const items: ImportItem[] = [
      { path: 'MSIH/first.png', file: slow(png(7), 40) },
      { path: 'MSIH/second.png', file: slow(png(7), 0) },
      { path: 'nonMSIH/third.png', file: slow(png(7), 0) },
    ];
    const r = await importTiles(items, { store, classes: CLASSES, size: 4, decode: decodePng, freeBytes: async () => 1e9 });
    expect(r).toMatchObject({ added: 0, duplicates: 1, rejected: [] });
    expect(r.conflicts).toEqual([{ path: 'nonMSIH/third.png', label: 'nonMSIH', otherLabels: ['MSIH'] }]);
    expect((await store.listConflicts()).map((c) => c.claims.map((x) => x.name))).toEqual([['MSIH/first.png', 'nonMSIH/third.png']]);
    expect(await storedTiles(store)).toEqual([]);
  });

  it('labels loose files with the chosen class', async () => {
    const store = await memoryStore();
    const r = await importTiles([item('one.png', png(1)), item('two.png', png(2))], { store, classes: CLASSES, size: 4, looseClass: 'nonMSIH', decode: decodePng, freeBytes: async () => 1e9 });
    expect(r.added).toBe(2);
    expect((await storedTiles(store)).map((t) => t.label)).toEqual(['nonMSIH', 'nonMSIH']);
  });

  it('refuses an import that does not fit the free storage before writing anything', async () => {
    const store = await memoryStore();
    const items = Array.from({ length: 10 }, (_, i) => item(`MSIH/${i}.png`, png(i)));
    const r = await importTiles(items, { store, classes: CLASSES, size: 64, decode: decodePng, freeBytes: async () => 5 * tileBytes(64) });
    expect(r.added).toBe(0);
    expect(await store.tileCount()).toBe(0);
    expect(r.stopped).toMatch(/^not enough browser storage: 10 tiles need about 0\.1 MB, but only 0\.1 MB is free/);
  });

  it('stops when storage runs out during the import and keeps what was saved', async () => {
    const store = await memoryStore();
    let free = 1e9;
    const items = Array.from({ length: 6 }, (_, i) => item(`MSIH/${i}.png`, png(i)));
    const r = await importTiles(items, {
      store: { lookup: (h) => store.lookup(h), addConflicts: (c) => store.addConflicts(c), putTiles: async (b) => {
        await store.putTiles(b);
        free = 0;
      } },
      classes: CLASSES,
      size: 4,
      decode: decodePng,
      freeBytes: async () => free,
      batchSize: 2,
      concurrency: 1,
    });
    expect(r.added).toBe(2);
    expect(r.stopped).toMatch(/^browser storage is full \(0\.0 MB free\): the import stopped; 2 tiles were saved\./);
  });
});
