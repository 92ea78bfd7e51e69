import { describe, expect, it } from 'vitest';
import { DeleteBlockedError, TileStore, type IdbFunctions } from './tileStore.ts';

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
