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

export class TileStore {
  private constructor(private db: IDBPDatabase<HospitalDB>) {}

  static async open(name = DB_NAME): Promise<TileStore> {
    const db = await openDB<HospitalDB>(name, DB_VERSION, {
      upgrade(d) {
        const tiles = d.createObjectStore('tiles', { keyPath: 'hash' });
        tiles.createIndex('label', 'label');
        d.createObjectStore('meta');
        d.createObjectStore('models');
      },
    });
    return new TileStore(db);
  }

  close(): void {
    this.db.close();
  }

  /** Close and delete the whole database (every tile, the identity, the token and the models). */
  async destroy(name = DB_NAME): Promise<void> {
    this.db.close();
    await deleteDB(name);
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
