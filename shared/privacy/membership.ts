/**
 * The membership-inference audit's scoring, for every host (the quality report in eval/, the web app's
 * Quality panel, experiments/privacyAudit.ts). An attack gives every query tile a score, higher meaning
 * "more likely a training tile"; the audit asks how well that score tells the tiles the model was trained
 * on (members) from tiles of the same hospitals it never saw (non-members), as the area under the ROC
 * curve with a bootstrap confidence interval. AUC 0.5 means the attack cannot tell them apart.
 *
 * Two attacks:
 * - GAN-Leaks, full black box (Chen et al., CCS 2020): the attacker only draws samples from the
 *   generator. A query's score is minus its distance to the nearest of many generated samples, in a
 *   feature space (the quality check's features). A generator that memorised its training tiles puts
 *   samples closer to them than to unseen tiles. Here the nearest sample is looked for among the samples
 *   generated for the query's own class (the generator is conditional and the class is part of a record).
 * - LOGAN, white box on the discriminator (Hayes et al., PoPETs 2019): the score is the discriminator's
 *   real/fake output on the query tile (with its class); an over-fitted discriminator rates the tiles it
 *   was trained on as "more real". The output itself is computed by ./membershipDiscriminator.ts.
 *
 * The AUC is shared/metrics/classification.ts's `auroc` (the Mann–Whitney statistic), not a copy.
 */
import { auroc } from '../metrics/classification.ts';
import { assertSameDim, FeatureError, selectRows, type Features } from '../metrics/features.ts';
import { nearestNeighbours } from '../metrics/nearestNeighbour.ts';
import { percentile } from '../metrics/summary.ts';
import { Rng } from '../rng.ts';

export class MembershipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MembershipError';
  }
}

export interface MembershipAucOptions {
  /** Bootstrap resamples (default 1000). 0: no interval. */
  bootstrap?: number;
  /** Two-sided confidence level of the interval (default 0.95). */
  level?: number;
  /** Seed of the resampling (default 1): the same scores and seed give the same interval. */
  seed?: number;
  /**
   * The patient (or any cluster) of each member and non-member tile. Tiles of one patient are alike, so
   * they are not independent draws: with groups the bootstrap resamples patients (all of a drawn patient's
   * tiles at once) instead of tiles, and the interval is honest about how few patients there are.
   */
  groups?: { members: readonly string[]; nonMembers: readonly string[] };
}

export interface MembershipAuc {
  /** P(score of a random member > score of a random non-member), ties counting ½. */
  auc: number;
  /**
   * Percentile bootstrap interval of the AUC: members and non-members are each resampled with
   * replacement (their counts kept), `bootstrap` times. Null when `bootstrap` is 0.
   */
  ci: { low: number; high: number; level: number; resamples: number; seed: number; unit: 'tile' | 'patient' } | null;
  members: number;
  nonMembers: number;
}

function checkScores(scores: ArrayLike<number>, what: string): void {
  if (scores.length === 0) throw new MembershipError(`the membership audit needs at least one ${what} tile; there are none`);
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) throw new MembershipError(`${what} score ${i} is ${scores[i]}; every score must be a finite number`);
  }
}

function aucOf(members: ArrayLike<number>, nonMembers: ArrayLike<number>): number {
  const labels: boolean[] = [];
  const scores = new Float64Array(members.length + nonMembers.length);
  for (let i = 0; i < members.length; i++) {
    labels.push(true);
    scores[i] = members[i];
  }
  for (let i = 0; i < nonMembers.length; i++) {
    labels.push(false);
    scores[members.length + i] = nonMembers[i];
  }
  return auroc(labels, scores);
}

/** AUC of member scores against non-member scores (higher score = "member"), with a seeded bootstrap interval. */
export function membershipAuc(memberScores: ArrayLike<number>, nonMemberScores: ArrayLike<number>, opts: MembershipAucOptions = {}): MembershipAuc {
  checkScores(memberScores, 'member');
  checkScores(nonMemberScores, 'non-member');
  const resamples = opts.bootstrap ?? 1000;
  const level = opts.level ?? 0.95;
  const seed = opts.seed ?? 1;
  if (!Number.isInteger(resamples) || resamples < 0) throw new MembershipError(`bootstrap resamples must be a whole number ≥ 0, got ${resamples}`);
  if (!(level > 0 && level < 1)) throw new MembershipError(`the confidence level must be between 0 and 1, got ${level}`);
  if (opts.groups) {
    if (opts.groups.members.length !== memberScores.length || opts.groups.nonMembers.length !== nonMemberScores.length) {
      throw new MembershipError(`groups: ${opts.groups.members.length} member and ${opts.groups.nonMembers.length} non-member groups for ${memberScores.length} and ${nonMemberScores.length} scores`);
    }
    if ([...opts.groups.members, ...opts.groups.nonMembers].some((g) => !g)) throw new MembershipError('groups: every tile needs a patient (a non-empty group name)');
  }
  const auc = aucOf(memberScores, nonMemberScores);
  let ci: MembershipAuc['ci'] = null;
  if (resamples > 0) {
    const aucs = opts.groups
      ? clusterBootstrapAucs(memberScores, opts.groups.members, nonMemberScores, opts.groups.nonMembers, resamples, seed)
      : bootstrapAucs(memberScores, nonMemberScores, resamples, seed);
    const tail = ((1 - level) / 2) * 100;
    ci = { low: percentile(aucs, tail), high: percentile(aucs, 100 - tail), level, resamples, seed, unit: opts.groups ? 'patient' : 'tile' };
  }
  return { auc, ci, members: memberScores.length, nonMembers: nonMemberScores.length };
}

/**
 * The bootstrap AUCs behind {@link membershipAuc}'s interval: `resamples` times, members and non-members
 * are each drawn with replacement (as many as there are), and the AUC of the resample computed.
 */
export function bootstrapAucs(memberScores: ArrayLike<number>, nonMemberScores: ArrayLike<number>, resamples: number, seed: number): Float64Array {
  const rng = new Rng(seed).fork('membership-bootstrap');
  const m = new Float64Array(memberScores.length);
  const n = new Float64Array(nonMemberScores.length);
  const aucs = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < m.length; i++) m[i] = memberScores[rng.int(m.length)];
    for (let i = 0; i < n.length; i++) n[i] = nonMemberScores[rng.int(n.length)];
    aucs[b] = aucOf(m, n);
  }
  return aucs;
}

function byGroup(scores: ArrayLike<number>, groups: readonly string[]): number[][] {
  const m = new Map<string, number[]>();
  groups.forEach((g, i) => {
    const list = m.get(g);
    if (list) list.push(scores[i]);
    else m.set(g, [scores[i]]);
  });
  return [...m.keys()].sort().map((k) => m.get(k)!);
}

/**
 * The cluster bootstrap: `resamples` times, as many member patients as there are are drawn with
 * replacement (each bringing all its tiles), likewise the non-member patients, and the AUC of the tiles
 * drawn computed.
 */
export function clusterBootstrapAucs(
  memberScores: ArrayLike<number>,
  memberGroups: readonly string[],
  nonMemberScores: ArrayLike<number>,
  nonMemberGroups: readonly string[],
  resamples: number,
  seed: number,
): Float64Array {
  const rng = new Rng(seed).fork('membership-cluster-bootstrap');
  const m = byGroup(memberScores, memberGroups);
  const n = byGroup(nonMemberScores, nonMemberGroups);
  const draw = (clusters: number[][]) => {
    const out: number[] = [];
    for (let i = 0; i < clusters.length; i++) out.push(...clusters[rng.int(clusters.length)]);
    return out;
  };
  const aucs = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) aucs[b] = aucOf(draw(m), draw(n));
  return aucs;
}

/**
 * GAN-Leaks (full black box) scores: for each query row, minus the Euclidean distance to the nearest
 * generated row of the same class (higher = closer = "member"). Every query class needs generated rows.
 */
export function ganLeaksScores(
  query: Features,
  queryLabels: ArrayLike<number>,
  generated: Features,
  generatedLabels: ArrayLike<number>,
): { scores: Float64Array; distances: Float64Array } {
  assertSameDim(query, generated, 'GAN-Leaks attack');
  if (queryLabels.length !== query.rows) throw new FeatureError(`GAN-Leaks attack: ${queryLabels.length} labels for ${query.rows} query rows`);
  if (generatedLabels.length !== generated.rows) throw new FeatureError(`GAN-Leaks attack: ${generatedLabels.length} labels for ${generated.rows} generated rows`);
  const distances = new Float64Array(query.rows);
  const classes = [...new Set(Array.from(queryLabels))].sort((a, b) => a - b);
  for (const c of classes) {
    const q = rowsOf(queryLabels, c);
    const g = rowsOf(generatedLabels, c);
    if (g.length === 0) throw new MembershipError(`GAN-Leaks attack: no generated tile of class ${c}, which ${q.length} query tiles have`);
    const nn = nearestNeighbours(selectRows(query, q), selectRows(generated, g));
    q.forEach((row, i) => (distances[row] = nn.distance[i]));
  }
  return { scores: distances.map((d) => -d), distances };
}

function rowsOf(labels: ArrayLike<number>, c: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < labels.length; i++) if (labels[i] === c) out.push(i);
  return out;
}

export type MembershipAttack = 'gan-leaks' | 'logan';

export const ATTACK_NAMES: Record<MembershipAttack, string> = {
  'gan-leaks': 'GAN-Leaks (distance to the nearest generated tile)',
  logan: 'LOGAN (discriminator score)',
};

export type LeakageLevel = 'none-detected' | 'weak' | 'clear';

/**
 * What an AUC means, in plain words. "none-detected": the interval contains 0.5 (or lies below it), so at
 * this number of tiles the attack does no better than a coin. "weak": above chance but under 0.6.
 * "clear": the interval's lower end is at least 0.6. Never "no leakage": an audit can only fail to find it.
 */
export function leakageLevel(r: MembershipAuc): LeakageLevel {
  const low = r.ci?.low ?? r.auc;
  if (low <= 0.5) return 'none-detected';
  return low >= 0.6 ? 'clear' : 'weak';
}

export function describeMembership(attack: MembershipAttack, r: MembershipAuc): string {
  const ci = r.ci ? ` (${Math.round(r.ci.level * 100)} % interval ${r.ci.low.toFixed(3)}–${r.ci.high.toFixed(3)}${r.ci.unit === 'patient' ? ', resampling patients' : ''})` : '';
  const head = `${ATTACK_NAMES[attack]}: AUC ${r.auc.toFixed(3)}${ci} on ${r.members} training vs ${r.nonMembers} held-out tiles.`;
  switch (leakageLevel(r)) {
    case 'none-detected':
      return `${head} No detectable leakage: the attack does no better than chance (0.5) at telling the training tiles from held-out ones. With few tiles only a large leak would show.`;
    case 'weak':
      return `${head} Weak leakage: the attack tells training tiles from held-out ones a little better than chance.`;
    case 'clear':
      return `${head} Clear leakage: the model reveals which tiles it was trained on. Consider differential privacy (docs/privacy.md) before sharing it or its images.`;
  }
}
