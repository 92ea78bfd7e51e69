/**
 * A disk cache of per-tile features, so the real tiles' InceptionV3 / MobileNetV2 features are computed
 * once and reused by every later evaluation against the same folders (the usual case: one report per
 * checkpoint, always against the same real tiles). Feature extraction is ~90 % of a report's time on a
 * CPU (docs/performance.md).
 *
 * Key: SHA-256 of (format version, extractor name, description, dimension, tile size, the tile's RGB
 * bytes), so a changed tile, size or network never hits. Each entry is one file of `dim` float32
 * values; an entry of the wrong length (a torn write, a foreign file) is recomputed and rewritten.
 * Entries are written to a temporary name and renamed, so concurrent runs never read half a file.
 * Node only (eval/).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { features, type Features } from '../../shared/metrics/features.ts';
import type { ExtractOptions, FeatureExtractor } from '../../shared/features/types.ts';

const FORMAT = 'fedgan-feature-cache-v1';

export interface CacheStats {
  hits: number;
  misses: number;
}

export interface CachedExtractor extends FeatureExtractor {
  /** Hits and misses of the last extract() call. */
  readonly lastStats: CacheStats;
}

function tileKey(prefix: Buffer, tile: Uint8Array): string {
  return createHash('sha256').update(prefix).update(tile).digest('hex');
}

export function withFeatureCache(inner: FeatureExtractor, dir: string): CachedExtractor {
  const stats: CacheStats = { hits: 0, misses: 0 };
  const pathOf = (key: string) => join(dir, inner.name, key.slice(0, 2), `${key}.f32`);
  const read = (key: string): Float32Array | null => {
    let bytes: Buffer;
    try {
      bytes = readFileSync(pathOf(key));
    } catch {
      return null;
    }
    if (bytes.length !== inner.dim * 4) return null;
    const v = new Float32Array(inner.dim);
    new Uint8Array(v.buffer).set(bytes);
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return null;
    return v;
  };
  const write = (key: string, v: Float32Array) => {
    const path = pathOf(key);
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(tmp, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    renameSync(tmp, path);
  };
  return {
    name: inner.name,
    description: inner.description,
    dim: inner.dim,
    get lastStats() {
      return { ...stats };
    },
    async extract(tiles: readonly Uint8Array[], size: number, opts: ExtractOptions = {}): Promise<Features> {
      const prefix = Buffer.from(`${FORMAT}\n${inner.name}\n${inner.description}\n${inner.dim}\n${size}\n`);
      const keys = tiles.map((t) => tileKey(prefix, t));
      const out = new Float32Array(tiles.length * inner.dim);
      const missing: number[] = [];
      keys.forEach((k, i) => {
        const v = read(k);
        if (v) out.set(v, i * inner.dim);
        else missing.push(i);
      });
      stats.hits = tiles.length - missing.length;
      stats.misses = missing.length;
      let reported = -1;
      const report = (done: number) => {
        if (done > reported) opts.onProgress?.((reported = done), tiles.length);
      };
      if (stats.hits) report(stats.hits);
      if (missing.length) {
        const hits = stats.hits;
        const f = await inner.extract(
          missing.map((i) => tiles[i]),
          size,
          { ...opts, onProgress: (done) => report(hits + done) },
        );
        missing.forEach((tileIndex, r) => {
          const v = Float32Array.from(f.data.subarray(r * inner.dim, (r + 1) * inner.dim));
          out.set(v, tileIndex * inner.dim);
          write(keys[tileIndex], v);
        });
      }
      report(tiles.length);
      return features(out, tiles.length, inner.dim, `${inner.name} features`);
    },
    dispose() {
      inner.dispose();
    },
  };
}
