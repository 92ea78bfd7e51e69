import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { LocalDataset } from './localDataset.ts';
import type { TileRecord } from './tileStore.ts';

const CFG = { classes: ['MSIH', 'nonMSIH'], imageSize: 4 };

/** A tile store whose reads take a few milliseconds, like IndexedDB. */
function slowStore(n = 6) {
  let reads = 0;
  const tiles: TileRecord[] = Array.from({ length: n }, (_, i) => ({ hash: `h${i}`, label: CFG.classes[i % 2], name: `t${i}`, size: 4, pixels: new Uint8Array(48).fill(i), addedAt: 0 }));
  return {
    get reads() {
      return reads;
    },
    loadTiles: async (labels: readonly string[], size: number) => {
      reads++;
      await new Promise((r) => setTimeout(r, 5));
      return tiles.filter((t) => labels.includes(t.label) && t.size === size);
    },
  };
}

describe('LocalDataset (the worker’s training tiles on the device)', () => {
  it('two overlapping loads build one dataset: no tile tensor is left behind', async () => {
    const store = slowStore();
    const ds = new LocalDataset(store);
    const before = tf.memory().numTensors;
    const [a, b] = await Promise.all([ds.get(CFG), ds.get(CFG)]);
    expect(a).toBe(b);
    expect(store.reads).toBe(1);
    expect(tf.memory().numTensors).toBe(before + 2); // images and labels, once
    await ds.reset();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a load overlapping a change of the tiles replaces the dataset and frees the old one', async () => {
    const store = slowStore();
    const ds = new LocalDataset(store);
    const before = tf.memory().numTensors;
    const first = ds.get(CFG);
    await new Promise((r) => setTimeout(r, 1)); // the first load is reading the store
    expect(store.reads).toBe(1);
    ds.changed();
    const second = ds.get(CFG);
    const [a, b] = await Promise.all([first, second]);
    expect(a).not.toBe(b);
    expect(a.count).toBe(6);
    expect(tf.memory().numTensors).toBe(before + 2);
    // A reset while a load runs frees what that load built.
    const third = ds.get(CFG);
    ds.changed();
    await new Promise((r) => setTimeout(r, 1));
    expect(store.reads).toBe(3);
    const reset = ds.reset();
    await Promise.all([third, reset]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('names the missing tiles', async () => {
    const ds = new LocalDataset(slowStore());
    await expect(ds.get({ classes: ['MSIH'], imageSize: 8 })).rejects.toThrow(/no tiles of 8×8 px for classes MSIH on this computer: import tiles first/);
  });
});
