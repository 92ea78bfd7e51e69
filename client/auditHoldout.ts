import { AUDIT_HOLDOUT_FRACTION, splitForAudit, type AuditHoldoutSetting } from '../shared/privacy/auditHoldout.ts';
import type { AuditHoldoutState } from './api.ts';
import type { TileRecord, TileStore } from './tileStore.ts';

/**
 * The audit hold-out in this browser (shared/privacy/auditHoldout.ts): staff's setting, kept in the tile
 * store's meta, and the tile source training reads through, which leaves the held-out tiles out while the
 * hold-out is on. The quality check's membership audit compares the tiles trained on with those held out.
 */
export const AUDIT_HOLDOUT_META = 'auditHoldout';

export function readAuditHoldout(store: Pick<TileStore, 'getMeta'>): Promise<AuditHoldoutSetting | undefined> {
  return store.getMeta<AuditHoldoutSetting>(AUDIT_HOLDOUT_META);
}

/**
 * Turn the hold-out on or off. Turning it on records whether this hospital had already trained a round in
 * this browser (its own weights are stored after every round): then the held-out tiles were trained on
 * before and the audit says so.
 */
export async function writeAuditHoldout(store: Pick<TileStore, 'getMeta' | 'setMeta' | 'getModel'>, on: boolean, now = Date.now()): Promise<AuditHoldoutSetting> {
  const current = await readAuditHoldout(store);
  if (current && current.on === on) return current;
  const setting: AuditHoldoutSetting = on
    ? { on: true, fraction: AUDIT_HOLDOUT_FRACTION, since: now, trainedBefore: (await store.getModel('local')) !== undefined }
    : { on: false, fraction: AUDIT_HOLDOUT_FRACTION, since: now, trainedBefore: false };
  await store.setMeta(AUDIT_HOLDOUT_META, setting);
  return setting;
}

/** The setting with this hospital's counts of tiles at `size` held out and trained on. */
export async function auditHoldoutState(store: Pick<TileStore, 'getMeta' | 'loadTiles'>, classes: readonly string[] | undefined, size: number | undefined): Promise<AuditHoldoutState> {
  const setting = await readAuditHoldout(store);
  const tiles = classes && size ? await store.loadTiles(classes, size) : [];
  const { training, heldOut } = splitForAudit(tiles, setting);
  return {
    on: setting?.on ?? false,
    fraction: setting?.fraction ?? AUDIT_HOLDOUT_FRACTION,
    ...(setting?.on ? { since: setting.since } : {}),
    trainedBefore: setting?.on ? setting.trainedBefore : false,
    heldOut: heldOut.length,
    training: training.length,
  };
}

/** The tiles training reads: all of them, less the held-out ones while the hold-out is on. */
export function trainingTiles(store: Pick<TileStore, 'getMeta' | 'loadTiles'>): Pick<TileStore, 'loadTiles'> {
  return {
    loadTiles: async (labels: readonly string[], size: number): Promise<TileRecord[]> => splitForAudit(await store.loadTiles(labels, size), await readAuditHoldout(store)).training,
  };
}
