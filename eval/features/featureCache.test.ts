import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { features } from '../../shared/metrics/features.ts';
import type { FeatureExtractor } from '../../shared/features/types.ts';
import { withFeatureCache } from './featureCache.ts';

/** A fake network: feature = [sum of bytes, first byte, size]; counts the tiles it is asked for. */
function fakeExtractor(name = 'fake'): FeatureExtractor & { seen: number } {
  const ex = {
    name,
    description: 'fake features',
    dim: 3,
    seen: 0,
    async extract(tiles: readonly Uint8Array[], size: number) {
      ex.seen += tiles.length;
      const data = new Float32Array(tiles.length * 3);
      tiles.forEach((t, i) => data.set([t.reduce((a, b) => a + b, 0), t[0], size], i * 3));
      return features(data, tiles.length, 3);
    },
    dispose() {},
  };
  return ex;
}

const tile = (v: number) => Uint8Array.from({ length: 2 * 2 * 3 }, (_, i) => (v + i) % 256);
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'fedgan-fcache-'));
  dirs.push(d);
  return d;
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('feature cache', () => {
  it('computes each tile once, returns the same features in tile order, and only misses go to the network', async () => {
    const dir = tempDir();
    const inner = fakeExtractor();
    const cached = withFeatureCache(inner, dir);
    const first = await cached.extract([tile(1), tile(2), tile(3)], 2);
    expect(inner.seen).toBe(3);
    expect(cached.lastStats).toEqual({ hits: 0, misses: 3 });
    const progress: number[] = [];
    const second = await withFeatureCache(inner, dir).extract([tile(3), tile(9), tile(1)], 2, { onProgress: (d) => progress.push(d) });
    expect(inner.seen).toBe(4); // only tile(9) was new
    expect(Array.from(second.data)).toEqual([...first.data.slice(6, 9), 12 * 9 + 66, 9, 2, ...first.data.slice(0, 3)]);
    expect(progress.at(-1)).toBe(3);
  });

  it('never hits across tile sizes or networks', async () => {
    const dir = tempDir();
    const a = fakeExtractor('net-a');
    await withFeatureCache(a, dir).extract([tile(1)], 2);
    await withFeatureCache(a, dir).extract([tile(1)], 2);
    expect(a.seen).toBe(1);
    await withFeatureCache(a, dir).extract([tile(1)], 7); // the fake does not check sizes; the key does
    expect(a.seen).toBe(2);
    const b = fakeExtractor('net-b');
    const c = withFeatureCache(b, dir);
    await c.extract([tile(1)], 2);
    expect(c.lastStats).toEqual({ hits: 0, misses: 1 });
  });

  it('recomputes and rewrites a damaged entry', async () => {
    const dir = tempDir();
    const inner = fakeExtractor();
    await withFeatureCache(inner, dir).extract([tile(5)], 2);
    const sub = readdirSync(join(dir, 'fake'))[0];
    const file = readdirSync(join(dir, 'fake', sub))[0];
    writeFileSync(join(dir, 'fake', sub, file), Buffer.from([1, 2, 3])); // torn write
    const again = withFeatureCache(inner, dir);
    const f = await again.extract([tile(5)], 2);
    expect(again.lastStats).toEqual({ hits: 0, misses: 1 });
    expect(Array.from(f.data)).toEqual([12 * 5 + 66, 5, 2]);
    const third = withFeatureCache(inner, dir);
    await third.extract([tile(5)], 2);
    expect(third.lastStats).toEqual({ hits: 1, misses: 0 });
  });
});
