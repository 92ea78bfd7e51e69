/**
 * The web app's held-out tiles for the membership audit. A membership audit compares tiles the model was
 * trained on with tiles it never saw; in the web app a hospital's tiles are all trained on unless staff
 * choose to keep some back. With the hold-out on, a fixed share of the tiles (1 in 10) never enters
 * training; which ones depends only on the tile's hash (its file's SHA-256), so the choice is the same on
 * every reload and for tiles imported later, and no tile moves between the two sides.
 */
import { hashString } from '../rng.ts';

/** Share of a hospital's tiles kept out of training while the hold-out is on. */
export const AUDIT_HOLDOUT_FRACTION = 0.1;

/** Whether the tile with this hash is kept out of training (for the audit) at `fraction`. */
export function isHeldOutForAudit(tileHash: string, fraction = AUDIT_HOLDOUT_FRACTION): boolean {
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`the audit hold-out fraction must be in [0, 1), got ${fraction}`);
  if (!tileHash) throw new RangeError('a tile without a hash cannot be assigned to the audit hold-out');
  return hashString(`audit-holdout:${tileHash}`) / 2 ** 32 < fraction;
}

/** The hold-out as staff set it (kept in the browser's database). */
export interface AuditHoldoutSetting {
  on: boolean;
  fraction: number;
  /** When staff turned it on (ms since 1970). */
  since: number;
  /**
   * This hospital had already trained a round when the hold-out was turned on: the held-out tiles were
   * trained on then, so they are not clean non-members and the audit underestimates leakage.
   */
  trainedBefore: boolean;
}

/** Split tiles into those trained on and those held out, keeping their order. */
export function splitForAudit<T extends { hash: string }>(tiles: readonly T[], setting: Pick<AuditHoldoutSetting, 'on' | 'fraction'> | undefined): { training: T[]; heldOut: T[] } {
  if (!setting?.on) return { training: [...tiles], heldOut: [] };
  const training: T[] = [];
  const heldOut: T[] = [];
  for (const t of tiles) (isHeldOutForAudit(t.hash, setting.fraction) ? heldOut : training).push(t);
  return { training, heldOut };
}
