import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { ActivityEntry, LossPoint } from './api.ts';

/**
 * What the page shows of this hospital's past, kept in the browser's IndexedDB so that a reload or a
 * reopened tab shows it again: the activity log, this hospital's loss readings (the loss chart's lines),
 * and the round attempt being trained (so that the page can say, after a reload, that the work of that
 * attempt was lost). Its own database, next to the tiles' (tileStore.ts); "Delete my data" clears it.
 * Nothing in it leaves the browser.
 */

export const ACTIVITY_DB_NAME = 'fedgan-activity';
const DB_VERSION = 1;

/** Most log lines and loss readings kept (the oldest go first); the page shows at most these. */
export const MAX_LOG = 200;
export const MAX_LOSSES = 4000;

interface ActivityDB extends DBSchema {
  log: { key: number; value: ActivityEntry };
  losses: { key: number; value: LossPoint };
  meta: { key: string; value: unknown };
}

export interface TrainingTask {
  round: number;
  attempt: number;
}

type Batch = { log: ActivityEntry[]; losses: LossPoint[] };

export class ActivityStore {
  private counts = { log: 0, losses: 0 };
  /** Writes in order, so a clear() waits for the writes before it. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The lines and readings that the queued write not started yet will take, and that write. */
  private batch?: { items: Batch; written: Promise<void> };

  private constructor(private db: IDBPDatabase<ActivityDB> | undefined) {}

  /**
   * Open (or create) the store. Without IndexedDB, or when it cannot be opened, the store keeps nothing
   * (the page works as before, without history after a reload): the history is a convenience.
   */
  static async open(name = ACTIVITY_DB_NAME): Promise<ActivityStore> {
    if (typeof indexedDB === 'undefined') return new ActivityStore(undefined);
    try {
      const store = new ActivityStore(undefined);
      const db = await openDB<ActivityDB>(name, DB_VERSION, {
        upgrade(d) {
          d.createObjectStore('log', { autoIncrement: true });
          d.createObjectStore('losses', { autoIncrement: true });
          d.createObjectStore('meta');
        },
        // Another tab deletes or upgrades it: let it.
        blocking() {
          db.close();
          store.db = undefined;
        },
      });
      store.db = db;
      return store;
    } catch {
      return new ActivityStore(undefined);
    }
  }

  /** Everything kept, oldest first. */
  async load(): Promise<{ log: ActivityEntry[]; losses: LossPoint[]; task?: TrainingTask }> {
    const db = this.db;
    if (!db) return { log: [], losses: [] };
    const tx = db.transaction(['log', 'losses', 'meta'], 'readonly');
    const [log, losses, task] = await Promise.all([tx.objectStore('log').getAll(), tx.objectStore('losses').getAll(), tx.objectStore('meta').get('task')]);
    this.counts = { log: log.length, losses: losses.length };
    return { log: log.slice(-MAX_LOG), losses: losses.slice(-MAX_LOSSES), ...(isTask(task) ? { task } : {}) };
  }

  addLog(e: ActivityEntry): Promise<void> {
    return this.add('log', e);
  }

  addLoss(p: LossPoint): Promise<void> {
    return this.add('losses', p);
  }

  /** The round attempt this page trains now, or undefined when its part in it is over. */
  setTask(task: TrainingTask | undefined): Promise<void> {
    return this.enqueue(async (db) => {
      if (task) await db.put('meta', { round: task.round, attempt: task.attempt }, 'task');
      else await db.delete('meta', 'task');
    });
  }

  /** Forget everything ("Delete my data"). Clearing, unlike deleting the database, is never blocked by another tab. */
  clear(): Promise<void> {
    // What is added from now on is written after the clear (what was added before, before it).
    this.batch = undefined;
    return this.enqueue(async (db) => {
      const tx = db.transaction(['log', 'losses', 'meta'], 'readwrite');
      await Promise.all([tx.objectStore('log').clear(), tx.objectStore('losses').clear(), tx.objectStore('meta').clear(), tx.done]);
      this.counts = { log: 0, losses: 0 };
    });
  }

  /**
   * Keep a line or a reading. It joins the queued write that has not started yet (or starts one), which
   * writes everything added until it starts in one transaction. A worker busy training on the CPU backend
   * turns its event loop about once a step; with a transaction of its own per reading the store fell
   * seconds behind the page, and a reload lost readings the page had already drawn.
   */
  private add(store: 'log' | 'losses', value: ActivityEntry | LossPoint): Promise<void> {
    if (!this.batch) {
      const batch: Batch = { log: [], losses: [] };
      this.batch = { items: batch, written: this.enqueue((db) => this.write(db, batch)) };
    }
    (this.batch.items[store] as (ActivityEntry | LossPoint)[]).push(value);
    return this.batch.written;
  }

  private async write(db: IDBPDatabase<ActivityDB>, batch: Batch): Promise<void> {
    // Started: what is added from now on goes to the next write.
    if (this.batch?.items === batch) this.batch = undefined;
    const stores = (['log', 'losses'] as const).filter((s) => batch[s].length > 0);
    if (stores.length === 0) return;
    const tx = db.transaction(stores, 'readwrite');
    for (const s of stores) {
      const os = tx.objectStore(s);
      await Promise.all(batch[s].map((v) => os.add(v as never)));
      this.counts[s] += batch[s].length;
      // Drop the oldest in batches, not one per write.
      const max = s === 'log' ? MAX_LOG : MAX_LOSSES;
      if (this.counts[s] > max + Math.ceil(max / 10)) {
        let excess = this.counts[s] - max;
        let cursor = await os.openCursor();
        while (cursor && excess > 0) {
          await cursor.delete();
          excess--;
          this.counts[s]--;
          cursor = await cursor.continue();
        }
      }
    }
    await tx.done;
  }

  private enqueue(fn: (db: IDBPDatabase<ActivityDB>) => Promise<void>): Promise<void> {
    const run = this.queue.then(() => (this.db ? fn(this.db) : undefined));
    // A failed write (storage full, the database closed by another tab) loses its lines and readings only.
    this.queue = run.catch(() => {});
    return run.then(
      () => {},
      () => {},
    );
  }
}

function isTask(v: unknown): v is TrainingTask {
  return typeof v === 'object' && v !== null && Number.isSafeInteger((v as TrainingTask).round) && Number.isSafeInteger((v as TrainingTask).attempt);
}
