import type { Features } from '../metrics/features.ts';

export interface ExtractOptions {
  /** Images per forward pass (default depends on the extractor). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Turns RGB tiles into feature vectors. Tiles are `size × size × 3` bytes, row-major, all the same size.
 * Every extractor is deterministic: the same tiles give the same features.
 */
export interface FeatureExtractor {
  /** Short id, e.g. 'inception-v3'. */
  readonly name: string;
  /** How the features must be labelled in a report (where the weights come from, what to compare with). */
  readonly description: string;
  readonly dim: number;
  extract(tiles: readonly Uint8Array[], size: number, opts?: ExtractOptions): Promise<Features>;
  dispose(): void;
}

export function checkTiles(tiles: readonly Uint8Array[], size: number, who: string): void {
  if (!Number.isInteger(size) || size < 1) throw new Error(`${who}: tile size must be a positive integer, got ${size}`);
  const per = size * size * 3;
  tiles.forEach((t, i) => {
    if (t.length !== per) throw new Error(`${who}: tile ${i} has ${t.length} bytes, expected ${per} (${size}×${size} RGB)`);
  });
}
