import { beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEntry, LossPoint } from './api.ts';
import { ActivityStore, MAX_LOSSES } from './activityStore.ts';

let n = 0;
/** A store on an in-memory IndexedDB (fake-indexeddb), a database of its own each time. */
const openStore = () => ActivityStore.open(`activity-test-${++n}`);
const loss = (i: number): LossPoint => ({ round: 1, x: i / 100, dLoss: i, gLoss: -i });
const line = (i: number): ActivityEntry => ({ level: 'info', message: `line ${i}`, at: 1_700_000_000_000 + i });

/** Read-write transactions begun on any database while `fn` runs. */
async function countWrites(fn: () => Promise<void>): Promise<number> {
  const proto = (globalThis as unknown as { IDBDatabase: { prototype: { transaction: (...a: unknown[]) => unknown } } }).IDBDatabase.prototype;
  const original = proto.transaction;
  let writes = 0;
  proto.transaction = function (this: unknown, ...args: unknown[]) {
    if (args[1] === 'readwrite') writes++;
    return original.apply(this, args);
  };
  try {
    await fn();
  } finally {
    proto.transaction = original;
  }
  return writes;
}

beforeAll(async () => {
  const auto = 'fake-indexeddb/auto';
  await import(auto);
});

describe('ActivityStore', () => {
  it('keeps log lines and loss readings in the order they came, across a reopen', async () => {
    const name = `activity-test-${++n}`;
    const store = await ActivityStore.open(name);
    const writes = [store.addLoss(loss(1)), store.addLog(line(1)), store.addLoss(loss(2)), store.addLog(line(2)), store.addLoss(loss(3))];
    await store.setTask({ round: 1, attempt: 2 });
    await Promise.all(writes);
    const again = await (await ActivityStore.open(name)).load();
    expect(again.losses).toEqual([loss(1), loss(2), loss(3)]);
    expect(again.log).toEqual([line(1), line(2)]);
    expect(again.task).toEqual({ round: 1, attempt: 2 });
  });

  it('writes a burst of readings in one or two transactions, not one each (a worker training on the CPU backend turns its event loop once a step)', async () => {
    const store = await openStore();
    const writes = await countWrites(async () => {
      const pending: Promise<void>[] = [];
      for (let i = 0; i < 30; i++) pending.push(store.addLoss(loss(i)), store.addLog(line(i)));
      await Promise.all(pending);
    });
    expect(writes).toBeLessThanOrEqual(2);
    const { losses, log } = await store.load();
    expect(losses.map((p) => p.dLoss)).toEqual([...Array(30).keys()]);
    expect(log.map((l) => l.message)).toEqual([...Array(30).keys()].map((i) => `line ${i}`));
  });

  it('clear() forgets what was added before it, even if not yet written, and keeps what is added after it', async () => {
    const store = await openStore();
    await store.addLoss(loss(0));
    const before = [store.addLoss(loss(1)), store.addLog(line(1))];
    const cleared = store.clear();
    const after = [store.addLoss(loss(2)), store.addLog(line(2))];
    await Promise.all([...before, cleared, ...after]);
    const { losses, log } = await store.load();
    expect(losses).toEqual([loss(2)]);
    expect(log).toEqual([line(2)]);
  });

  it(`keeps the newest ${MAX_LOSSES} readings when more come`, async () => {
    const store = await openStore();
    const total = MAX_LOSSES + Math.ceil(MAX_LOSSES / 10) + 5;
    const pending: Promise<void>[] = [];
    for (let i = 0; i < total; i++) pending.push(store.addLoss(loss(i)));
    await Promise.all(pending);
    const { losses } = await store.load();
    expect(losses).toHaveLength(MAX_LOSSES);
    expect(losses[0].dLoss).toBe(total - MAX_LOSSES);
    expect(losses.at(-1)!.dLoss).toBe(total - 1);
  });
});
