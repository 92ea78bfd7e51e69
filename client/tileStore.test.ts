import { openDB } from 'idb';
import { describe, expect, it } from 'vitest';
import { DeleteBlockedError, TileStore, type IdbFunctions, type TileRecord } from './tileStore.ts';

/**
 * A fake of the part of IndexedDB that "Delete my data" depends on, with the semantics of the IndexedDB
 * spec (deleting a database): every open connection gets a `versionchange` event (idb's `blocking`
 * callback); if some connection is still open after that, the delete request gets a `blocked` event; the
 * deletion completes (and its promise resolves) once every connection has closed.
 */
function fakeIndexedDb() {
  interface Conn {
    name: string;
    closed: boolean;
    blocking?: () => void;
    close(): void;
    get(store: string, key: string): Promise<unknown>;
  }
  const open = new Set<Conn>();
  const pending: { name: string; resolve: () => void }[] = [];
  const deleted: string[] = [];
  const settle = () => {
    for (const p of [...pending]) {
      if ([...open].some((c) => c.name === p.name)) continue;
      pending.splice(pending.indexOf(p), 1);
      deleted.push(p.name);
      p.resolve();
    }
  };
  const connect = (name: string, blocking?: () => void): Conn => {
    const c: Conn = {
      name,
      closed: false,
      blocking,
      close() {
        c.closed = true;
        open.delete(c);
        queueMicrotask(settle);
      },
      get: async () => 'stored value',
    };
    open.add(c);
    return c;
  };
  const idb = {
    openDB: async (name: string, _version: number, callbacks: { blocking?: () => void } = {}) => connect(name, callbacks.blocking),
    deleteDB: (name: string, callbacks: { blocked?: () => void } = {}) =>
      new Promise<void>((resolve) => {
        pending.push({ name, resolve });
        for (const c of [...open]) if (c.name === name) c.blocking?.();
        // The spec fires `blocked` in a later task if connections are still open after `versionchange`.
        setTimeout(() => {
          if ([...open].some((c) => c.name === name)) callbacks.blocked?.();
        }, 0);
        queueMicrotask(settle);
      }),
  };
  return {
    idb: idb as unknown as IdbFunctions,
    open,
    deleted,
    /** A tab of an app version that ignores `versionchange` (keeps its connection open). */
    stubbornTab: (name: string) => connect(name),
  };
}

const within = <T>(p: Promise<T>, ms = 500) => Promise.race([p, new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), ms))]);

describe('TileStore deletion with the app open in another tab', () => {
  it('the other tab closes its connection on versionchange, so "Delete my data" completes', async () => {
    const fake = fakeIndexedDb();
    let otherTabTold = 0;
    const thisTab = await TileStore.open('db', { idb: fake.idb });
    const otherTab = await TileStore.open('db', { idb: fake.idb, onClosedElsewhere: () => otherTabTold++ });
    expect(await otherTab.getMeta('clientId')).toBe('stored value');

    await expect(within(thisTab.destroy())).resolves.toBeUndefined();
    expect(fake.deleted).toEqual(['db']);
    expect(fake.open.size).toBe(0);
    expect(otherTabTold).toBe(1);
    // The other tab's store says why it stopped working instead of failing obscurely.
    await expect(otherTab.getMeta('clientId')).rejects.toThrow(/deleted \(or upgraded\) from another tab or window of this browser: reload this page/);
  });

  it('a tab that keeps the database open makes the deletion fail at once with a clear message, and it finishes once that tab closes', async () => {
    const fake = fakeIndexedDb();
    const thisTab = await TileStore.open('db', { idb: fake.idb });
    const stubborn = fake.stubbornTab('db');

    const result = await within(thisTab.destroy().catch((e: unknown) => e));
    expect(result).toBeInstanceOf(DeleteBlockedError);
    expect((result as Error).message).toMatch(/open in another tab or window of this browser.*Close the app’s other tabs and windows/);
    expect(fake.deleted).toEqual([]);

    stubborn.close();
    await new Promise((r) => setTimeout(r, 10));
    expect(fake.deleted).toEqual(['db']);
  });

  it('a closed store names the reason', async () => {
    const fake = fakeIndexedDb();
    const store = await TileStore.open('db', { idb: fake.idb });
    await store.destroy();
    await expect(store.getMeta('x')).rejects.toThrow(/deleted from this browser/);
  });
});

// ---- tile management, on a real IndexedDB implementation (fake-indexeddb, in memory) --------------------

let dbCount = 0;
async function realStore(): Promise<TileStore> {
  const auto = 'fake-indexeddb/auto';
  await import(auto);
  return TileStore.open(`tiles-${++dbCount}`);
}

function tile(hash: string, label: string, name = `${label}/${hash}.png`): TileRecord {
  return { hash, label, name, size: 2, pixels: new Uint8Array(12).fill(hash.charCodeAt(0)), addedAt: hash.charCodeAt(0) };
}

describe('TileStore tile management', () => {
  it('relabels one tile: counts move, the old class is remembered as overruled, an unknown tile is refused', async () => {
    const store = await realStore();
    await store.putTiles([tile('a', 'MSIH'), tile('b', 'MSIH'), tile('c', 'nonMSIH')]);
    await store.relabelTile('a', 'nonMSIH');
    expect(await store.countsByLabel()).toEqual({ MSIH: 1, nonMSIH: 2 });
    expect(await store.lookup('a')).toEqual({ kind: 'tile', label: 'nonMSIH', overruled: ['MSIH'] });
    expect((await store.loadTiles(['nonMSIH'], 2)).map((t) => t.hash).sort()).toEqual(['a', 'c']);
    // Relabelling back clears the overruled class it now has.
    await store.relabelTile('a', 'MSIH');
    expect(await store.lookup('a')).toEqual({ kind: 'tile', label: 'MSIH', overruled: ['nonMSIH'] });
    await expect(store.relabelTile('zz', 'MSIH')).rejects.toThrow('this tile is no longer stored');
    await expect(store.relabelTile('a', '')).rejects.toThrow('choose the class');
  });

  it('removes one tile and leaves the others', async () => {
    const store = await realStore();
    await store.putTiles([tile('a', 'MSIH'), tile('b', 'MSIH'), tile('c', 'nonMSIH')]);
    await store.removeTile('b');
    expect(await store.countsByLabel()).toEqual({ MSIH: 1, nonMSIH: 1 });
    expect(await store.lookup('b')).toBeUndefined();
    expect(await store.tileCount()).toBe(2);
    await expect(store.removeTile('b')).rejects.toThrow('this tile is no longer stored');
  });

  it('records an image found under a second class as a conflict, out of the training tiles, until staff choose its class', async () => {
    const store = await realStore();
    await store.putTiles([tile('a', 'MSIH', 'site1/MSIH/a.png'), tile('b', 'nonMSIH')]);
    // A claim by its own class, or for an image that is not stored, is not a conflict.
    expect(await store.addConflicts([{ hash: 'a', label: 'MSIH', name: 'again/MSIH/a.png' }, { hash: 'q', label: 'MSIH', name: 'q.png' }])).toEqual([]);
    expect(await store.addConflicts([{ hash: 'a', label: 'nonMSIH', name: 'site1/nonMSIH/a-copy.png' }])).toEqual(['a']);
    expect(await store.lookup('a')).toEqual({ kind: 'conflict', labels: ['MSIH', 'nonMSIH'] });
    expect(await store.countsByLabel()).toEqual({ nonMSIH: 1 });
    expect((await store.loadTiles(['MSIH', 'nonMSIH'], 2)).map((t) => t.hash)).toEqual(['b']);
    expect(await store.conflictCount()).toBe(1);
    const [c] = await store.listConflicts();
    expect(c.claims).toEqual([
      { label: 'MSIH', name: 'site1/MSIH/a.png' },
      { label: 'nonMSIH', name: 'site1/nonMSIH/a-copy.png' },
    ]);
    expect(Array.from(c.pixels)).toEqual(new Array(12).fill('a'.charCodeAt(0)));
    // The same claim again changes nothing; a third class is added.
    expect(await store.addConflicts([{ hash: 'a', label: 'nonMSIH', name: 'other.png' }])).toEqual([]);
    expect(await store.addConflicts([{ hash: 'a', label: 'Stroma', name: 'Stroma/a.png' }])).toEqual(['a']);

    await expect(store.resolveConflict('a', 'ADI')).rejects.toThrow('this image was found under "MSIH" and "nonMSIH" and "Stroma", not under "ADI"');
    await store.resolveConflict('a', 'nonMSIH');
    expect(await store.lookup('a')).toEqual({ kind: 'tile', label: 'nonMSIH', overruled: ['MSIH', 'Stroma'] });
    expect((await store.listTiles({ label: 'nonMSIH', limit: 10 })).tiles.find((t) => t.hash === 'a')?.name).toBe('site1/nonMSIH/a-copy.png');
    expect(await store.conflictCount()).toBe(0);
    // Importing the MSIH copy again does not reopen the decision.
    expect(await store.addConflicts([{ hash: 'a', label: 'MSIH', name: 'site1/MSIH/a.png' }])).toEqual([]);
    await expect(store.resolveConflict('a', 'MSIH')).rejects.toThrow('no longer waiting for a decision');
  });

  it('drops a conflicting image when staff choose neither class; removeTile also removes a conflict', async () => {
    const store = await realStore();
    await store.putTiles([tile('a', 'MSIH'), tile('b', 'MSIH')]);
    await store.addConflicts([
      { hash: 'a', label: 'nonMSIH', name: 'x.png' },
      { hash: 'b', label: 'nonMSIH', name: 'y.png' },
    ]);
    await store.resolveConflict('a', null);
    await store.removeTile('b');
    expect(await store.lookup('a')).toBeUndefined();
    expect(await store.lookup('b')).toBeUndefined();
    expect(await store.conflictCount()).toBe(0);
    expect(await store.tileCount()).toBe(0);
  });

  it('opens a database of the previous version (1: no conflicts store) and keeps its tiles', async () => {
    await realStore();
    const name = `tiles-v1-${++dbCount}`;
    const v1 = await openDB(name, 1, {
      upgrade(d) {
        d.createObjectStore('tiles', { keyPath: 'hash' }).createIndex('label', 'label');
        d.createObjectStore('meta');
        d.createObjectStore('models');
      },
    });
    await v1.put('tiles', tile('a', 'MSIH'));
    await v1.put('meta', 'client-1', 'clientId');
    v1.close();
    const store = await TileStore.open(name);
    expect(await store.countsByLabel()).toEqual({ MSIH: 1 });
    expect(await store.getMeta('clientId')).toBe('client-1');
    expect(await store.addConflicts([{ hash: 'a', label: 'nonMSIH', name: 'b.png' }])).toEqual(['a']);
    expect(await store.conflictCount()).toBe(1);
  });

  it('lists tiles a page at a time, grouped by class, optionally one class only', async () => {
    const store = await realStore();
    await store.putTiles([tile('e', 'nonMSIH'), tile('a', 'MSIH'), tile('d', 'nonMSIH'), tile('c', 'MSIH'), tile('b', 'MSIH')]);
    const page = async (q: { label?: string; offset?: number; limit: number }) => {
      const p = await store.listTiles(q);
      return [p.total, p.tiles.map((t) => t.hash).join('')];
    };
    expect(await page({ limit: 2 })).toEqual([5, 'ab']);
    expect(await page({ offset: 2, limit: 2 })).toEqual([5, 'cd']);
    expect(await page({ offset: 4, limit: 2 })).toEqual([5, 'e']);
    expect(await page({ offset: 6, limit: 2 })).toEqual([5, '']);
    expect(await page({ label: 'nonMSIH', limit: 10 })).toEqual([2, 'de']);
    expect(await page({ label: 'nonMSIH', offset: 1, limit: 10 })).toEqual([2, 'e']);
    expect(await page({ label: 'ADI', limit: 10 })).toEqual([0, '']);
  });
});
