import { deleteDB, openDB, type DBSchema, type IDBPDatabase } from 'idb';

/**
 * The hospital's local store, in the browser's IndexedDB (through idb). Nothing in it ever leaves the
 * browser except the trained weights, which the federation client sends.
 *
 * - `tiles`: one record per imported tile, keyed by the SHA-256 of the original file's bytes (so the same
 *   file imported twice is stored once): the class name, the file's path as dropped, and the pixels
 *   resized to the federation's image size (RGB bytes, `size × size × 3`). Staff can relabel or remove
 *   a single tile.
 * - `conflicts`: images found in two (or more) class folders, keyed by the same hash. Such an image is
 *   not a training tile (its class is unknown) until staff choose its class or drop it.
 * - `meta`: small values: this installation's client id, the access token once the user has joined, the
 *   last federation config seen, …
 * - `models`: the latest global weights (FGW1 bytes) with the GAN config that built them, for samples and
 *   export when offline; and this hospital's own last weights (FedBN keeps local batch-norm tensors).
 */

export const DB_NAME = 'fedgan-hospital';
/** 1: tiles, meta, models. 2: conflicts. */
const DB_VERSION = 2;

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
  /**
   * Classes staff decided this image is not (a relabel, or a resolved conflict): importing it again from
   * one of these class folders is skipped as already decided instead of raising a new conflict.
   */
  overruled?: string[];
}

/** One class folder an image was found in. */
export interface TileClaim {
  label: string;
  /** Path of the file as dropped. */
  name: string;
}

/** An image found under two or more classes, waiting for staff to choose its class or drop it. */
export interface ConflictRecord {
  hash: string;
  /** Every class it was found under, the first found first (at least two different labels). */
  claims: TileClaim[];
  size: number;
  pixels: Uint8Array;
  addedAt: number;
}

/** What the store knows about an image's content hash. */
export type HashStatus = { kind: 'tile'; label: string; overruled: readonly string[] } | { kind: 'conflict'; labels: readonly string[] };

/** One page of the tile list. */
export interface TilePage {
  /** Tiles matching the filter (all pages). */
  total: number;
  offset: number;
  tiles: TileRecord[];
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
  conflicts: { key: string; value: ConflictRecord };
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
      upgrade(d, oldVersion) {
        if (oldVersion < 1) {
          const tiles = d.createObjectStore('tiles', { keyPath: 'hash' });
          tiles.createIndex('label', 'label');
          d.createObjectStore('meta');
          d.createObjectStore('models');
        }
        if (oldVersion < 2) d.createObjectStore('conflicts', { keyPath: 'hash' });
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

  /** The class of the stored tile with this content hash, if any (undefined for a conflict). */
  async labelOf(hash: string): Promise<string | undefined> {
    return (await this.db.get('tiles', hash))?.label;
  }

  /** Whether this image is stored as a tile (and its class), waits as a conflict, or is unknown. */
  async lookup(hash: string): Promise<HashStatus | undefined> {
    const tx = this.db.transaction(['tiles', 'conflicts']);
    const [tile, conflict] = await Promise.all([tx.objectStore('tiles').get(hash), tx.objectStore('conflicts').get(hash), tx.done]);
    if (tile) return { kind: 'tile', label: tile.label, overruled: tile.overruled ?? [] };
    if (conflict) return { kind: 'conflict', labels: conflict.claims.map((c) => c.label) };
    return undefined;
  }

  /** Write tiles in one transaction (all or none). */
  async putTiles(tiles: readonly TileRecord[]): Promise<void> {
    if (tiles.length === 0) return;
    const tx = this.db.transaction('tiles', 'readwrite');
    await Promise.all([...tiles.map((t) => tx.store.put(t)), tx.done]);
  }

  /**
   * Record that stored images were also found under other classes (in one transaction). A stored tile
   * claimed by a new class becomes a conflict (it leaves the training tiles); a conflict gains the new
   * class. A claim by the tile's own class, by a class staff already overruled, or for an image that is
   * not stored changes nothing. Returns the hashes that are conflicts now because of these claims.
   */
  async addConflicts(claims: readonly ({ hash: string } & TileClaim)[]): Promise<string[]> {
    if (claims.length === 0) return [];
    const tx = this.db.transaction(['tiles', 'conflicts'], 'readwrite');
    const tiles = tx.objectStore('tiles');
    const conflicts = tx.objectStore('conflicts');
    const changed = new Set<string>();
    for (const c of claims) {
      const existing = await conflicts.get(c.hash);
      if (existing) {
        if (existing.claims.some((x) => x.label === c.label)) continue;
        existing.claims.push({ label: c.label, name: c.name });
        await conflicts.put(existing);
        changed.add(c.hash);
        continue;
      }
      const tile = await tiles.get(c.hash);
      if (!tile || tile.label === c.label || tile.overruled?.includes(c.label)) continue;
      await conflicts.put({ hash: tile.hash, claims: [{ label: tile.label, name: tile.name }, { label: c.label, name: c.name }], size: tile.size, pixels: tile.pixels, addedAt: tile.addedAt });
      await tiles.delete(c.hash);
      changed.add(c.hash);
    }
    await tx.done;
    return [...changed];
  }

  /** Images waiting for staff to choose their class, oldest first. */
  async listConflicts(): Promise<ConflictRecord[]> {
    return (await this.db.getAll('conflicts')).sort((a, b) => a.addedAt - b.addedAt || a.hash.localeCompare(b.hash));
  }

  async conflictCount(): Promise<number> {
    return this.db.count('conflicts');
  }

  /**
   * Settle a conflict: `label` makes the image a training tile of that class (the other classes it was
   * found under are remembered as overruled); null drops the image. Throws when there is no such conflict
   * or the label is not one it was found under.
   */
  async resolveConflict(hash: string, label: string | null): Promise<void> {
    const tx = this.db.transaction(['tiles', 'conflicts'], 'readwrite');
    const conflicts = tx.objectStore('conflicts');
    const c = await conflicts.get(hash);
    if (!c) {
      tx.abort();
      await tx.done.catch(() => {});
      throw new Error('this image is no longer waiting for a decision (it was settled or deleted, perhaps in another tab)');
    }
    if (label !== null) {
      const claim = c.claims.find((x) => x.label === label);
      if (!claim) {
        tx.abort();
        await tx.done.catch(() => {});
        throw new Error(`this image was found under ${c.claims.map((x) => `"${x.label}"`).join(' and ')}, not under "${label}"`);
      }
      const overruled = [...new Set(c.claims.map((x) => x.label).filter((l) => l !== label))];
      await tx.objectStore('tiles').put({ hash, label, name: claim.name, size: c.size, pixels: c.pixels, addedAt: c.addedAt, overruled });
    }
    await conflicts.delete(hash);
    await tx.done;
  }

  /**
   * Give one stored tile another class. Its old class is remembered as overruled, so importing the same
   * folder again does not bring the mistake back as a conflict. Throws when the tile is not stored.
   */
  async relabelTile(hash: string, label: string): Promise<void> {
    if (!label) throw new Error('choose the class to give this tile');
    const tx = this.db.transaction('tiles', 'readwrite');
    const t = await tx.store.get(hash);
    if (!t) {
      tx.abort();
      await tx.done.catch(() => {});
      throw new Error('this tile is no longer stored (removed, or deleted in another tab)');
    }
    if (t.label !== label) {
      const overruled = [...new Set([...(t.overruled ?? []), t.label])].filter((l) => l !== label);
      await tx.store.put({ ...t, label, overruled });
    }
    await tx.done;
  }

  /**
   * Remove one image: a training tile or one waiting in a conflict. Importing the same file again adds it
   * again. Throws when it is not stored.
   */
  async removeTile(hash: string): Promise<void> {
    const tx = this.db.transaction(['tiles', 'conflicts'], 'readwrite');
    const [tile, conflict] = await Promise.all([tx.objectStore('tiles').getKey(hash), tx.objectStore('conflicts').getKey(hash)]);
    if (tile === undefined && conflict === undefined) {
      tx.abort();
      await tx.done.catch(() => {});
      throw new Error('this tile is no longer stored (removed, or deleted in another tab)');
    }
    await Promise.all([tx.objectStore('tiles').delete(hash), tx.objectStore('conflicts').delete(hash), tx.done]);
  }

  /**
   * One page of the stored tiles, grouped by class (then by hash): only `label`'s tiles when given.
   * `offset` past the end gives an empty page.
   */
  async listTiles(q: { label?: string; offset?: number; limit: number }): Promise<TilePage> {
    const offset = Math.max(0, Math.floor(q.offset ?? 0));
    const limit = Math.max(0, Math.floor(q.limit));
    const tx = this.db.transaction('tiles');
    const index = tx.store.index('label');
    const range = q.label === undefined ? null : IDBKeyRange.only(q.label);
    const total = await index.count(range ?? undefined);
    const tiles: TileRecord[] = [];
    if (offset < total && limit > 0) {
      let cursor = await index.openCursor(range);
      if (cursor && offset > 0) cursor = await cursor.advance(offset);
      while (cursor && tiles.length < limit) {
        tiles.push(cursor.value);
        cursor = await cursor.continue();
      }
    }
    await tx.done;
    return { total, offset, tiles };
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
