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

export class ActivityStore {
  private counts = { log: 0, losses: 0 };
  /** Writes in order, so a clear() waits for the writes before it. */
  private queue: Promise<unknown> = Promise.resolve();

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
    return this.add('log', e, MAX_LOG);
  }

  addLoss(p: LossPoint): Promise<void> {
    return this.add('losses', p, MAX_LOSSES);
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
    return this.enqueue(async (db) => {
      const tx = db.transaction(['log', 'losses', 'meta'], 'readwrite');
      await Promise.all([tx.objectStore('log').clear(), tx.objectStore('losses').clear(), tx.objectStore('meta').clear(), tx.done]);
      this.counts = { log: 0, losses: 0 };
    });
  }

  private add(store: 'log' | 'losses', value: ActivityEntry | LossPoint, max: number): Promise<void> {
    return this.enqueue(async (db) => {
      const tx = db.transaction(store, 'readwrite');
      const os = tx.objectStore(store);
      await os.add(value as never);
      this.counts[store]++;
      // Drop the oldest in batches, not one per write.
      if (this.counts[store] > max + Math.ceil(max / 10)) {
        let excess = this.counts[store] - max;
        let cursor = await os.openCursor();
        while (cursor && excess > 0) {
          await cursor.delete();
          excess--;
          this.counts[store]--;
          cursor = await cursor.continue();
        }
      }
      await tx.done;
    });
  }

  private enqueue(fn: (db: IDBPDatabase<ActivityDB>) => Promise<void>): Promise<void> {
    const run = this.queue.then(() => (this.db ? fn(this.db) : undefined));
    // A failed write (storage full, the database closed by another tab) loses that line only.
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
