import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { createTinyExtractor } from '../shared/features/tiny.ts';
import type { FeatureExtractor } from '../shared/features/types.ts';
import { generate } from '../shared/gan/gan.ts';
import { toRgbBytes } from '../shared/image/grid.ts';
import { concatRows, selectRows, type Features } from '../shared/metrics/features.ts';
import { computeQuality } from '../shared/metrics/quality.ts';
import { realFloor } from '../shared/metrics/realFloor.ts';
import { splitForAudit } from '../shared/privacy/auditHoldout.ts';
import { ATTACK_NAMES, describeMembership, ganLeaksScores, leakageLevel, membershipAuc, type MembershipAttack } from '../shared/privacy/membership.ts';
import { discriminatorScores } from '../shared/privacy/membershipDiscriminator.ts';
import { auditHoldoutState, readAuditHoldout } from './auditHoldout.ts';
import type { AuditHoldoutState, MembershipAttackFigures, QualityExtractor, QualityMembership, QualityOptions, QualityReport } from './api.ts';
import type { GlobalModel } from './globalModel.ts';
import { throwIfCancelled, yieldToEvents } from './job.ts';
import type { TileRecord, TileStore } from './tileStore.ts';

/**
 * The Quality panel's computation, in the worker: generate tiles with the global model, extract features
 * of those and of this hospital's own tiles, and compute FID, KID, the memorization check and diversity
 * with the isomorphic metrics of shared/metrics (issue 6), and the real floor: the same FID and KID of
 * held-out real tiles, with as many tiles as the generated side (shared/metrics/realFloor.ts), which the
 * plain-language verdict compares with (shared/metrics/verdict.ts). With the audit hold-out on
 * (./auditHoldout.ts), also the membership-inference audit (shared/privacy/membership.ts): can GAN-Leaks
 * (distance to the nearest generated tile) or LOGAN (the discriminator's output) tell the tiles this
 * hospital trained on from the ones it held out? Nothing leaves the browser. It can be cancelled between
 * batches (`signal`).
 */

export const EXTRACTORS: { id: QualityExtractor; label: string }[] = [
  { id: 'inception-v3', label: 'InceptionV3 (standard FID features; 29 MB, slowest)' },
  { id: 'mobilenet-v2', label: 'MobileNetV2 (faster)' },
];
/** Offered only with ?qualityExtractors=all (tests and quick looks): not comparable with the others. */
export const TEST_EXTRACTOR = { id: 'tiny' as const, label: 'Tiny random projection (quick test only)' };

/** Real tiles used at most (feature extraction is the cost). */
const MAX_REAL = 1000;
const GEN_BATCH = 32;
/** Tiles per feature-extraction call: progress, and a chance to cancel, between them. */
const EXTRACT_CHUNK = 64;
const CLOSEST = 8;
/** KID options of both the check and its floor (the same, so the figures compare). */
const KID = { subsets: 100, seed: 1 };
/** Tiles needed on each side (trained on, held out) for the membership audit. */
export const MIN_AUDIT_TILES = 5;
const AUDIT_BOOTSTRAP = { bootstrap: 1000, seed: 1 };

/**
 * Whether the membership audit can run, or why not in plain words. `trainedSince`: this hospital trained a
 * round after the hold-out was turned on (its weights saved since then).
 */
export function auditPlan(holdout: AuditHoldoutState, trainedSince: boolean): { run: true } | { run: false; reason: string } {
  if (!holdout.on) {
    return {
      run: false,
      reason:
        'Not measured: all your tiles are used in training, so there are no held-out tiles to compare with. Turn on “Keep 1 tile in 10 out of training” below; the audit can run once a round has trained without them.',
    };
  }
  if (!trainedSince) return { run: false, reason: 'Not measured yet: no round has trained on your tiles since the hold-out was turned on. Run the check again after the next round.' };
  if (holdout.heldOut < MIN_AUDIT_TILES || holdout.training < MIN_AUDIT_TILES) {
    return { run: false, reason: `Not measured: the audit needs at least ${MIN_AUDIT_TILES} tiles trained on and ${MIN_AUDIT_TILES} held out; you have ${holdout.training} and ${holdout.heldOut}.` };
  }
  return { run: true };
}

function attackFigures(id: MembershipAttack, members: ArrayLike<number>, nonMembers: ArrayLike<number>): MembershipAttackFigures {
  const r = membershipAuc(members, nonMembers, AUDIT_BOOTSTRAP);
  return { name: ATTACK_NAMES[id], auc: r.auc, ci: r.ci && { low: r.ci.low, high: r.ci.high, level: r.ci.level }, level: leakageLevel(r), text: describeMembership(id, r) };
}

export interface QualityDeps {
  store: TileStore;
  model: GlobalModel;
  classes: string[];
  imageSize: number;
  batchNorm: BatchNormPolicy;
  opts: QualityOptions;
  onProgress(done: number, total: number, stage: string): void;
  /** Cancel: the check stops at the next batch with JobCancelled. */
  signal?: AbortSignal;
}

async function loadExtractor(id: QualityExtractor): Promise<FeatureExtractor> {
  if (id === 'tiny') return createTinyExtractor(64);
  const { loadNsfwjsExtractor } = await import('../shared/features/nsfwjsModels.ts');
  return loadNsfwjsExtractor(id);
}

/** Every k-th tile so at most `max` remain, spread over the whole set (deterministic). */
function spread<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  const step = items.length / max;
  return Array.from({ length: max }, (_, i) => items[Math.floor(i * step)]);
}

export async function runQualityCheck(deps: QualityDeps): Promise<QualityReport> {
  const t0 = Date.now();
  const { classes, imageSize: size, opts } = deps;
  if (!Number.isInteger(opts.perClass) || opts.perClass < 4 || opts.perClass > 2000) throw new Error(`generated tiles per class must be a whole number from 4 to 2000 (got ${opts.perClass})`);
  const all = spread(await deps.store.loadTiles(classes, size), MAX_REAL);
  if (all.length < 10) throw new Error(`the quality check needs at least 10 of this hospital’s tiles at ${size} px; there are ${all.length}`);
  // The membership audit: the tiles trained on (members) against those held out (non-members).
  const holdout = await auditHoldoutState(deps.store, classes, size);
  const setting = await readAuditHoldout(deps.store);
  const local = await deps.store.getModel('local');
  // The sides among the tiles the check uses (at most MAX_REAL, spread over all of them).
  const sides = splitForAudit(all.map((t, i) => ({ hash: t.hash, i })), setting);
  const plan = auditPlan({ ...holdout, heldOut: sides.heldOut.length, training: sides.training.length }, setting?.on === true && local !== undefined && local.savedAt > setting.since);
  const audit = plan.run ? sides : undefined;
  // Every 5th real tile is held out: its distance to the others is the baseline for the memorization check.
  const reference: TileRecord[] = [];
  const control: TileRecord[] = [];
  all.forEach((t, i) => (i % 5 === 4 ? control : reference).push(t));

  deps.onProgress(0, 1, 'Loading the feature network');
  const extractor = await loadExtractor(opts.extractor);
  const cancelled = () => throwIfCancelled(deps.signal, 'the quality check');
  try {
    cancelled();
    const total = classes.length * opts.perClass + all.length * 1 + classes.length * opts.perClass + (audit ? all.length : 0);
    let done = 0;
    const step = (n: number, stage: string) => deps.onProgress((done += n), total, stage);
    const { synthetic, syntheticLabels, round, logan } = await deps.model.withGlobalModel(deps.batchNorm, async (gan, stored) => {
      const images: Uint8Array[] = [];
      const labels: number[] = [];
      let seed = 777;
      for (let c = 0; c < classes.length; c++) {
        for (let start = 0; start < opts.perClass; start += GEN_BATCH) {
          cancelled();
          const n = Math.min(GEN_BATCH, opts.perClass - start);
          const t = generate(gan, new Array<number>(n).fill(c), seed++);
          const data = (await t.data()) as Float32Array;
          t.dispose();
          images.push(...toRgbBytes(data, n, size));
          for (let i = 0; i < n; i++) labels.push(c);
          step(n, 'Generating tiles');
          await yieldToEvents();
        }
      }
      // LOGAN: the discriminator's output on every tile, while the model is loaded.
      let scores: Float64Array | undefined;
      if (audit) {
        cancelled();
        let last = 0;
        scores = await discriminatorScores(gan, all.map((t) => t.pixels), all.map((t) => classes.indexOf(t.label)), {
          batchSize: GEN_BATCH,
          onProgress: (d) => {
            step(d - last, 'Discriminator scores of your tiles');
            last = d;
          },
        });
        await yieldToEvents();
      }
      return { synthetic: images, syntheticLabels: labels, round: stored.round, logan: scores };
    });
    // In chunks, so a Cancel is heard between them (extractors are per tile: chunking changes nothing).
    const features = async (tiles: readonly Uint8Array[], stage: string): Promise<Features> => {
      step(0, stage);
      const parts: Features[] = [];
      for (let start = 0; start < tiles.length; start += EXTRACT_CHUNK) {
        cancelled();
        let last = 0;
        parts.push(
          await extractor.extract(tiles.slice(start, start + EXTRACT_CHUNK), size, {
            onProgress: (d) => {
              step(d - last, stage);
              last = d;
            },
          }),
        );
        await yieldToEvents();
      }
      return concatRows(parts, extractor.dim, 'quality-check features');
    };
    const realF = await features(reference.map((t) => t.pixels), 'Features of your tiles');
    const controlF = await features(control.map((t) => t.pixels), 'Features of your tiles');
    const synthF = await features(synthetic, 'Features of generated tiles');
    cancelled();
    deps.onProgress(total, total, 'Computing the scores');
    await yieldToEvents();
    const q = computeQuality({
      real: realF,
      realLabels: reference.map((t) => classes.indexOf(t.label)),
      synthetic: synthF,
      syntheticLabels,
      classes,
      control: controlF,
      closestPairs: CLOSEST,
      kid: KID,
    });
    const { floor } = realFloor(realF, controlF, synthF, { seed: KID.seed, kidSubsets: KID.subsets, full: { fid: q.fid.fid, kid: { mean: q.kid.mean, std: q.kid.std } } });
    let membership: QualityMembership = { measured: false, reason: plan.run ? 'Not measured.' : plan.reason, holdout };
    if (audit && logan) {
      // Feature row of each of `all`'s tiles: the reference tiles come first, then the control tiles.
      const allF = concatRows([realF, controlF], realF.dim, 'quality-check features');
      const rowOf = new Map<TileRecord, number>([...reference, ...control].map((t, r) => [t, r]));
      const side = (items: readonly { i: number }[]) => {
        const tiles = items.map(({ i }) => all[i]);
        const leaks = ganLeaksScores(selectRows(allF, tiles.map((t) => rowOf.get(t)!)), tiles.map((t) => classes.indexOf(t.label)), synthF, syntheticLabels);
        return { leaks: leaks.scores, logan: Float64Array.from(items, ({ i }) => logan[i]) };
      };
      const m = side(audit.training);
      const n = side(audit.heldOut);
      membership = {
        measured: true,
        ganLeaks: attackFigures('gan-leaks', m.leaks, n.leaks),
        logan: attackFigures('logan', m.logan, n.logan),
        members: audit.training.length,
        nonMembers: audit.heldOut.length,
        holdout,
      };
    }
    return {
      round,
      extractor: { name: extractor.name, description: extractor.description },
      realCount: reference.length,
      controlCount: control.length,
      syntheticCount: synthetic.length,
      fid: q.fid.fid,
      kid: { mean: q.kid.mean, std: q.kid.std },
      floor: { n: floor.n, fid: floor.fid, kid: floor.kid.mean, syntheticFid: floor.syntheticFid, syntheticKid: floor.syntheticKid.mean },
      memorization: { syntheticToReal: q.memorization.syntheticToTrain, ...(q.memorization.testToTrain ? { realToReal: q.memorization.testToTrain } : {}) },
      diversity: q.diversity,
      closest: q.memorization.closest.map((p) => ({ distance: p.distance, synthetic: synthetic[p.query], real: reference[p.reference].pixels, realName: reference[p.reference].name })),
      membership,
      size,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    extractor.dispose();
  }
}
