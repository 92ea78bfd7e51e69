import { deleteDB, openDB, type DBSchema, type IDBPDatabase } from 'idb';

/**
 * The hospital's local store, in the browser's IndexedDB (through idb). Nothing in it ever leaves the
 * browser except the trained weights, which the federation client sends.
 *
 * - `tiles`: one record per imported tile, keyed by the SHA-256 of the original file's bytes (so the same
 *   file imported twice is stored once): the class name, the file's path as dropped, and the pixels
 *   resized to the federation's image size (RGB bytes, `size × size × 3`).
 * - `meta`: small values: this installation's client id, the access token once the user has joined, the
 *   last federation config seen, …
 * - `models`: the latest global weights (FGW1 bytes) with the GAN config that built them, for samples and
 *   export when offline; and this hospital's own last weights (FedBN keeps local batch-norm tensors).
 */

export const DB_NAME = 'fedgan-hospital';
const DB_VERSION = 1;

export interface TileRecord {
  /** SHA-256 (hex) of the original file bytes. */
  hash: string;
  /** Class name, as the federation's config spells it. */
  label: string;
  /** Path of the file as dropped or picked (folder/…/name), for the staff's reference. */
  name: string;
  /** Side of the stored square tile in pixels. */
  size: number;
  /** RGB bytes, row-major, `size × size × 3`. */
  pixels: Uint8Array;
  addedAt: number;
}

export interface StoredModel {
  /** Rounds completed when these weights were produced (0: the initial weights). */
  round: number;
  /** FGW1 weights bytes (shared/codec/weightsCodec.ts). */
  bytes: Uint8Array;
  fingerprint: string;
  /** The GAN config (shared/config/ganConfig.ts) the weights belong to. */
  config: Record<string, unknown>;
  savedAt: number;
}

interface HospitalDB extends DBSchema {
  tiles: { key: string; value: TileRecord; indexes: { label: string } };
  meta: { key: string; value: unknown };
  models: { key: 'global' | 'local'; value: StoredModel };
}

/** The idb functions the store uses (tests pass fakes). */
export interface IdbFunctions {
  openDB: typeof openDB;
  deleteDB: typeof deleteDB;
}

export interface TileStoreOptions {
  /**
   * Another tab or window of this app is deleting (or upgrading) the database: this connection has been
   * closed so that it is not in the way, and the store can no longer be used (reload the page).
   */
  onClosedElsewhere?: () => void;
  idb?: IdbFunctions;
}

/** The deletion is waiting for another tab or window of the app that keeps the database open. */
export class DeleteBlockedError extends Error {
  constructor() {
    super(
      'this app is open in another tab or window of this browser that is still using the hospital’s data, so it cannot be deleted yet. Close the app’s other tabs and windows: the deletion then finishes by itself.',
    );
    this.name = 'DeleteBlockedError';
  }
}

/**
 * Several tabs of the app share one database. Each connection closes itself when another tab asks to
 * delete or upgrade the database (IndexedDB's `versionchange`), so a deletion is never held up by a tab
 * that merely has the app open; a deletion that is still blocked (by a tab that does not let go) is
 * reported at once with DeleteBlockedError instead of waiting silently.
 */
export class TileStore {
  private closedBecause?: string;

  private constructor(
    private readonly conn: IDBPDatabase<HospitalDB>,
    private readonly name: string,
    private readonly idb: IdbFunctions,
  ) {}

  static async open(name = DB_NAME, opts: TileStoreOptions = {}): Promise<TileStore> {
    const idb = opts.idb ?? { openDB, deleteDB };
    let store: TileStore | undefined;
    let closedEarly = false;
    const conn = await idb.openDB<HospitalDB>(name, DB_VERSION, {
      upgrade(d) {
        const tiles = d.createObjectStore('tiles', { keyPath: 'hash' });
        tiles.createIndex('label', 'label');
        d.createObjectStore('meta');
        d.createObjectStore('models');
      },
      blocking() {
        // Another tab wants to delete or upgrade the database: get out of its way.
        if (store) store.closeBecause('the hospital’s data was deleted (or upgraded) from another tab or window of this browser: reload this page');
        else closedEarly = true;
        opts.onClosedElsewhere?.();
      },
    });
    store = new TileStore(conn, name, idb);
    if (closedEarly) store.closeBecause('the hospital’s data was deleted (or upgraded) from another tab or window of this browser: reload this page');
    return store;
  }

  /** The open connection; throws once the store was closed. */
  private get db(): IDBPDatabase<HospitalDB> {
    if (this.closedBecause) throw new Error(this.closedBecause);
    return this.conn;
  }

  private closeBecause(reason: string): void {
    if (!this.closedBecause) this.closedBecause = reason;
    this.conn.close();
  }

  close(): void {
    this.closeBecause('the local store is closed');
  }

  /**
   * Close and delete the whole database (every tile, the identity, the token and the models). Rejects with
   * DeleteBlockedError when another tab keeps the database open; the browser then finishes the deletion as
   * soon as that tab closes (a deletion cannot be called off).
   */
  destroy(): Promise<void> {
    this.closeBecause('the hospital’s data was deleted from this browser');
    return new Promise<void>((resolve, reject) => {
      this.idb.deleteDB(this.name, { blocked: () => reject(new DeleteBlockedError()) }).then(resolve, reject);
    });
  }

  // ---- tiles ------------------------------------------------------------------------------------------

  /** The class of the stored tile with this content hash, if any. */
  async labelOf(hash: string): Promise<string | undefined> {
    return (await this.db.get('tiles', hash))?.label;
  }

  /** Write tiles in one transaction (all or none). */
  async putTiles(tiles: readonly TileRecord[]): Promise<void> {
    if (tiles.length === 0) return;
    const tx = this.db.transaction('tiles', 'readwrite');
    await Promise.all([...tiles.map((t) => tx.store.put(t)), tx.done]);
  }

  /** Number of tiles per stored label (including labels the current federation may not use). */
  async countsByLabel(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    const tx = this.db.transaction('tiles');
    let cursor = await tx.store.index('label').openKeyCursor(null, 'nextunique');
    while (cursor) {
      const label = cursor.key;
      out[label] = await tx.store.index('label').count(label);
      cursor = await cursor.continue();
    }
    await tx.done;
    return out;
  }

  /** Number of stored tiles whose size differs from `size` (imported for another federation). */
  async countOtherSizes(size: number): Promise<number> {
    let n = 0;
    let cursor = await this.db.transaction('tiles').store.openCursor();
    while (cursor) {
      if (cursor.value.size !== size) n++;
      cursor = await cursor.continue();
    }
    return n;
  }

  async tileCount(): Promise<number> {
    return this.db.count('tiles');
  }

  /** Every stored tile of the given labels and size (for training and the quality check). */
  async loadTiles(labels: readonly string[], size: number): Promise<TileRecord[]> {
    const out: TileRecord[] = [];
    for (const label of labels) {
      for (const t of await this.db.getAllFromIndex('tiles', 'label', label)) if (t.size === size) out.push(t);
    }
    return out;
  }

  // ---- meta -------------------------------------------------------------------------------------------

  async getMeta<T>(key: string): Promise<T | undefined> {
    return (await this.db.get('meta', key)) as T | undefined;
  }

  async setMeta(key: string, value: unknown): Promise<void> {
    await this.db.put('meta', value, key);
  }

  async deleteMeta(key: string): Promise<void> {
    await this.db.delete('meta', key);
  }

  // ---- models -----------------------------------------------------------------------------------------

  async getModel(which: 'global' | 'local'): Promise<StoredModel | undefined> {
    return this.db.get('models', which);
  }

  async putModel(which: 'global' | 'local', m: StoredModel): Promise<void> {
    await this.db.put('models', m, which);
  }
}
