import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetFromTiles } from '../shared/data/dataset.ts';
import { createGan, type Gan } from '../shared/gan/gan.ts';
import { tinyConfig } from '../shared/gan/testConfig.ts';
import { AUDIT_HOLDOUT_FRACTION, isHeldOutForAudit, splitForAudit } from '../shared/privacy/auditHoldout.ts';
import { Rng } from '../shared/rng.ts';
import { AUDIT_HOLDOUT_META, auditHoldoutState, trainingTiles, writeAuditHoldout } from './auditHoldout.ts';
import type { GlobalModel } from './globalModel.ts';
import { auditPlan, runQualityCheck } from './qualityCheck.ts';
import type { StoredModel, TileRecord } from './tileStore.ts';

/**
 * The Quality panel's membership audit in the worker (client/qualityCheck.ts) and the audit hold-out
 * (client/auditHoldout.ts), on tfjs's CPU backend with an in-memory tile store and the tiny features.
 */

const MODEL = tinyConfig('cgan', { seed: 5 });
const CLASSES = MODEL.classes;

function tileRecords(n: number): TileRecord[] {
  const rng = new Rng(8);
  return Array.from({ length: n }, (_, i) => ({
    hash: `hash-${i}`,
    label: CLASSES[i % 2],
    name: `tile-${i}.png`,
    size: 16,
    pixels: Uint8Array.from({ length: 16 * 16 * 3 }, () => rng.int(256)),
    addedAt: 0,
  }));
}

function memoryStore(tiles: TileRecord[]) {
  const meta = new Map<string, unknown>();
  const models = new Map<string, StoredModel>();
  return {
    meta,
    models,
    loadTiles: async (labels: readonly string[], size: number) => tiles.filter((t) => labels.includes(t.label) && t.size === size),
    getMeta: async <T>(key: string) => meta.get(key) as T | undefined,
    setMeta: async (key: string, value: unknown) => void meta.set(key, value),
    getModel: async (which: 'global' | 'local') => models.get(which),
  };
}

const stored = (round: number, savedAt: number): StoredModel => ({ round, bytes: new Uint8Array(0), fingerprint: 'x', config: {}, savedAt });

describe('the audit hold-out', () => {
  it('keeps about 1 tile in 10 out, chosen by the tile’s hash alone', () => {
    const hashes = Array.from({ length: 5000 }, (_, i) => `sha-${i}`);
    const held = hashes.filter((h) => isHeldOutForAudit(h));
    expect(AUDIT_HOLDOUT_FRACTION).toBe(0.1);
    // Binomial(5000, 0.1): sd 21; 4 sd either side.
    expect(held.length).toBeGreaterThan(500 - 85);
    expect(held.length).toBeLessThan(500 + 85);
    expect(hashes.filter((h) => isHeldOutForAudit(h))).toEqual(held);
    expect(hashes.some((h) => isHeldOutForAudit(h, 0))).toBe(false);
    expect(() => isHeldOutForAudit('a', 1)).toThrow(/fraction must be in \[0, 1\), got 1/);
    expect(() => isHeldOutForAudit('')).toThrow(/without a hash/);
    const tiles = hashes.slice(0, 50).map((hash) => ({ hash }));
    expect(splitForAudit(tiles, undefined)).toEqual({ training: tiles, heldOut: [] });
    const split = splitForAudit(tiles, { on: true, fraction: 0.1 });
    expect([...split.training, ...split.heldOut].sort((a, b) => a.hash.localeCompare(b.hash))).toEqual([...tiles].sort((a, b) => a.hash.localeCompare(b.hash)));
    expect(split.heldOut.every((t) => isHeldOutForAudit(t.hash))).toBe(true);
  });

  it('training leaves the held-out tiles out only while staff keep them back', async () => {
    const tiles = tileRecords(60);
    const store = memoryStore(tiles);
    const source = trainingTiles(store);
    expect(await source.loadTiles(CLASSES, 16)).toHaveLength(60);
    const on = await writeAuditHoldout(store, true, 1000);
    expect(on).toEqual({ on: true, fraction: 0.1, since: 1000, trainedBefore: false });
    expect(store.meta.get(AUDIT_HOLDOUT_META)).toEqual(on);
    const training = await source.loadTiles(CLASSES, 16);
    const heldOut = tiles.filter((t) => isHeldOutForAudit(t.hash));
    expect(heldOut.length).toBeGreaterThan(0);
    expect(training.map((t) => t.hash)).toEqual(tiles.filter((t) => !isHeldOutForAudit(t.hash)).map((t) => t.hash));
    expect(await auditHoldoutState(store, CLASSES, 16)).toEqual({ on: true, fraction: 0.1, since: 1000, trainedBefore: false, heldOut: heldOut.length, training: 60 - heldOut.length });
    // Turning it on again keeps the first date; off trains on every tile again.
    expect(await writeAuditHoldout(store, true, 5000)).toMatchObject({ since: 1000 });
    await writeAuditHoldout(store, false, 6000);
    expect(await source.loadTiles(CLASSES, 16)).toHaveLength(60);
    // A hospital that had trained before turning it on: its held-out tiles were trained on then.
    store.models.set('local', stored(3, 2000));
    expect(await writeAuditHoldout(store, true, 7000)).toEqual({ on: true, fraction: 0.1, since: 7000, trainedBefore: true });
  });

  it('the audit runs only with the hold-out on, a round trained since, and enough tiles on both sides', () => {
    const s = { on: true, fraction: 0.1, trainedBefore: false, heldOut: 6, training: 50 };
    expect(auditPlan({ ...s, on: false }, true)).toMatchObject({ run: false, reason: expect.stringMatching(/^Not measured: all your tiles are used in training/) });
    expect(auditPlan(s, false)).toMatchObject({ run: false, reason: expect.stringMatching(/no round has trained on your tiles since the hold-out was turned on/) });
    expect(auditPlan({ ...s, heldOut: 4 }, true)).toEqual({ run: false, reason: 'Not measured: the audit needs at least 5 tiles trained on and 5 held out; you have 50 and 4.' });
    expect(auditPlan(s, true)).toEqual({ run: true });
  });
});

describe('the quality check’s membership audit', () => {
  let gan: Gan;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    gan = createGan(MODEL);
  });
  afterAll(() => gan.dispose());

  const model = { withGlobalModel: async <T>(_bn: unknown, job: (g: Gan, s: StoredModel) => Promise<T>) => job(gan, stored(4, 500)) } as unknown as GlobalModel;
  const run = (store: ReturnType<typeof memoryStore>) =>
    runQualityCheck({
      store: store as never,
      model,
      classes: CLASSES,
      imageSize: 16,
      batchNorm: 'average',
      opts: { perClass: 8, extractor: 'tiny' },
      onProgress: () => {},
    });

  it('says why it is not measured while every tile is trained on', async () => {
    const r = await run(memoryStore(tileRecords(80)));
    expect(r.membership).toMatchObject({ measured: false, reason: expect.stringMatching(/^Not measured: all your tiles are used in training/), holdout: { on: false, heldOut: 0, training: 80 } });
  });

  it('compares the tiles trained on with the held-out ones: LOGAN’s AUC recomputed from the discriminator', async () => {
    const tiles = tileRecords(120);
    const store = memoryStore(tiles);
    await writeAuditHoldout(store, true, 1000);
    store.models.set('local', stored(5, 2000)); // a round trained since
    const r = await run(store);
    const m = r.membership;
    if (!m.measured) throw new Error(`not measured: ${m.reason}`);
    const heldOut = tiles.filter((t) => isHeldOutForAudit(t.hash));
    expect(m.nonMembers).toBe(heldOut.length);
    expect(heldOut.length).toBeGreaterThanOrEqual(5);
    expect(m.members).toBe(120 - heldOut.length);
    // Independently: the discriminator's output on each tile, and the share of (trained, held-out) pairs ordered right.
    const ds = datasetFromTiles(tiles.map((t) => ({ pixels: t.pixels, label: CLASSES.indexOf(t.label) })), 16, 2);
    const out = tf.tidy(() => gan.D.apply(ds.images, ds.labels, false).score);
    const d = Array.from(await out.data());
    out.dispose();
    ds.dispose();
    const member = tiles.map((t) => !isHeldOutForAudit(t.hash));
    let right = 0;
    let pairs = 0;
    d.forEach((a, i) => {
      if (!member[i]) return;
      d.forEach((b, j) => {
        if (member[j]) return;
        pairs++;
        right += a > b ? 1 : a === b ? 0.5 : 0;
      });
    });
    expect(m.logan.auc).toBeCloseTo(right / pairs, 5);
    expect(m.logan.ci!.low).toBeLessThanOrEqual(m.logan.auc);
    expect(m.ganLeaks.auc).toBeGreaterThanOrEqual(0);
    expect(m.ganLeaks.auc).toBeLessThanOrEqual(1);
    expect(m.ganLeaks.text).toMatch(/^GAN-Leaks \(distance to the nearest generated tile\): AUC \d\.\d{3} \(95 % interval/);
  }, 30_000);
});
