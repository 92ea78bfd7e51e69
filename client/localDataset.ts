import type { GanConfig } from '../shared/config/ganConfig.ts';
import { datasetFromTiles, type Dataset } from '../shared/data/dataset.ts';
import type { TileStore } from './tileStore.ts';

/**
 * This hospital's training tiles on the device, built from the tile store for a round's classes and image
 * size and kept until the tiles or the federation's model change.
 *
 * Loads are serialised: a call waits for the one before it, then reuses its dataset or replaces it. Two
 * overlapping loads therefore never both build a dataset (the first one's image tensor would be replaced
 * without being disposed: a leak of the whole tile set on the GPU).
 */
export class LocalDataset {
  private current?: { key: string; ds: Dataset };
  private version = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly store: Pick<TileStore, 'loadTiles'>) {}

  /** Tiles changed (import, delete): the next load rebuilds the dataset. */
  changed(): void {
    this.version++;
  }

  /** The tiles of `cfg.classes` at `cfg.imageSize`, as a dataset owned by this object (do not dispose it). */
  get(cfg: Pick<GanConfig, 'classes' | 'imageSize'>): Promise<Dataset> {
    return this.serial(() => this.load(cfg));
  }

  /** Dispose the dataset (after the current load, if one is running). */
  reset(): Promise<void> {
    this.version++;
    return this.serial(async () => {
      this.current?.ds.dispose();
      this.current = undefined;
    });
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => {});
    return run;
  }

  private async load(cfg: Pick<GanConfig, 'classes' | 'imageSize'>): Promise<Dataset> {
    const key = `${cfg.classes.join(',')}|${cfg.imageSize}|${this.version}`;
    if (this.current?.key === key) return this.current.ds;
    this.current?.ds.dispose();
    this.current = undefined;
    const tiles = await this.store.loadTiles(cfg.classes, cfg.imageSize);
    if (tiles.length === 0) throw new Error(`no tiles of ${cfg.imageSize}×${cfg.imageSize} px for classes ${cfg.classes.join(', ')} on this computer: import tiles first`);
    const ds = datasetFromTiles(
      tiles.map((t) => ({ pixels: t.pixels, label: cfg.classes.indexOf(t.label) })),
      cfg.imageSize,
      cfg.classes.length,
    );
    this.current = { key, ds };
    return ds;
  }
}
