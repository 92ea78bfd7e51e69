/**
 * The quality report's membership-inference audit (issue 18.4): can an attacker tell the tiles the
 * model was trained on (members: the --real-train folder) from tiles of the same hospitals it never saw
 * (non-members: the held-out patients of --real-test)? Two attacks, scored by shared/privacy/membership.ts:
 * GAN-Leaks on the generator's samples (feature distance) and LOGAN on the discriminator's output. AUC 0.5
 * means no detectable leakage.
 *
 * "Same hospitals": when manifest.csv names the site (hospital) of every tile, only tiles of sites that
 * have both members and non-members are compared, so a difference between hospitals (stain, scanner) is
 * not mistaken for leakage; the sites and their counts are reported. Without sites, all tiles are used
 * and the report says so.
 */
import { selectRows, type Features } from '../shared/metrics/features.ts';
import { ATTACK_NAMES, describeMembership, ganLeaksScores, leakageLevel, membershipAuc, type LeakageLevel, type MembershipAttack, type MembershipAucOptions } from '../shared/privacy/membership.ts';
import { EvalError } from './evalError.ts';
import type { RealTile } from './realTiles.ts';

export interface AttackResult {
  name: string;
  auc: number;
  /**
   * Bootstrap percentile interval (members and non-members resampled separately; by patient, `unit`
   * 'patient', when the manifests name every audited tile's patient, else by tile).
   */
  ci: { low: number; high: number; level: number; resamples: number; seed: number; unit: 'tile' | 'patient' } | null;
  level: LeakageLevel;
  /** The result in plain words. */
  text: string;
}

export interface MembershipSection {
  attacks: { ganLeaks: AttackResult; logan: AttackResult };
  /**
   * The same attacks with an untrained model of the same architecture: it has seen no tile, so whatever
   * AUC it gets comes from the difference between the training and held-out tiles themselves (other
   * patients), not from leakage. A trained model's AUC means leakage only as far as it exceeds this.
   */
  control: { ganLeaks: AttackResult; logan: AttackResult } | null;
  /** Members: tiles of --real-train the audit compared; non-members: tiles of --real-test. */
  members: { tiles: number; perClass: Record<string, number> };
  nonMembers: { tiles: number; perClass: Record<string, number> };
  /** Sites compared, with their counts (null: the manifests name no site, so every tile was used). */
  sites: { site: string; members: number; nonMembers: number }[] | null;
  /** Tiles left out because their site has no counterpart on the other side. */
  leftOut: { members: number; nonMembers: number };
  /** Features GAN-Leaks measured distances in, and how many generated tiles it searched. */
  featureSpace: string;
  generatedTiles: number;
  interpretation: string;
}

/** One row per audited tile, for report-details.json: which tiles were members, and each attack's score. */
export interface MembershipScoreRow {
  file: string;
  className: string;
  site: string | null;
  member: boolean;
  /** Feature distance to the nearest generated tile of its class (GAN-Leaks; smaller = more "member"). */
  ganLeaksDistance: number;
  /** The discriminator's output (LOGAN; larger = more "member"). */
  loganScore: number;
}

export const MEMBERSHIP_INTERPRETATION =
  'Each attack scores every tile; the AUC is the chance that a random training tile scores as "more likely trained on" than a random held-out tile. ' +
  '0.5 means the attack does no better than a coin: no detectable leakage. 1 means it always tells them apart. The interval is a bootstrap ' +
  'over patients when the manifests name them (tiles of one patient are alike, so they are not independent), else over tiles; ' +
  'an interval containing 0.5 means no leakage was detected at this number of tiles, not that there is none. ' +
  'The untrained control (a model of the same architecture that has seen no tile) shows what the attacks get from the tiles alone. ' +
  'Training and held-out tiles come from different patients: a difference between patients (stain, tissue) can move the AUC away from 0.5 without any leakage, which the interval over patients takes into account as long as both sets of patients come from the same population.';

/** The rows of members and non-members to compare: those of sites present on both sides (all rows without sites). */
export function sameHospitalRows(members: readonly Pick<RealTile, 'site'>[], nonMembers: readonly Pick<RealTile, 'site'>[]): {
  members: number[];
  nonMembers: number[];
  sites: MembershipSection['sites'];
} {
  const all = (n: number) => Array.from({ length: n }, (_, i) => i);
  const haveSites = members.every((t) => t.site) && nonMembers.every((t) => t.site);
  if (!haveSites) return { members: all(members.length), nonMembers: all(nonMembers.length), sites: null };
  const count = (tiles: readonly Pick<RealTile, 'site'>[]) => tiles.reduce((m, t) => m.set(t.site!, (m.get(t.site!) ?? 0) + 1), new Map<string, number>());
  const m = count(members);
  const n = count(nonMembers);
  const shared = [...m.keys()].filter((s) => n.has(s)).sort();
  if (shared.length === 0) {
    throw new EvalError(
      `membership audit: no hospital site has both training and held-out tiles (training sites ${[...m.keys()].sort().join(', ')}; held-out sites ${[...n.keys()].sort().join(', ')}); ` +
        'the audit compares tiles of the same hospitals',
    );
  }
  const keep = new Set(shared);
  return {
    members: all(members.length).filter((i) => keep.has(members[i].site!)),
    nonMembers: all(nonMembers.length).filter((i) => keep.has(nonMembers[i].site!)),
    sites: shared.map((site) => ({ site, members: m.get(site)!, nonMembers: n.get(site)! })),
  };
}

export interface MembershipAuditInput {
  classes: readonly string[];
  members: readonly RealTile[];
  memberFeatures: Features;
  /** The discriminator's output on every member tile (shared/privacy/membershipDiscriminator.ts), same order. */
  memberLogan: ArrayLike<number>;
  nonMembers: readonly RealTile[];
  nonMemberFeatures: Features;
  nonMemberLogan: ArrayLike<number>;
  synthetic: Features;
  syntheticLabels: readonly number[];
  featureSpace: string;
  /** The control: the untrained model's discriminator scores (same tiles, same order) and generated tiles' features. */
  control?: { memberLogan: ArrayLike<number>; nonMemberLogan: ArrayLike<number>; synthetic: Features; syntheticLabels: readonly number[] };
  bootstrap: number;
  seed: number;
}

function perClass(tiles: readonly RealTile[], classes: readonly string[]): Record<string, number> {
  return Object.fromEntries(classes.map((c, i) => [c, tiles.filter((t) => t.label === i).length]));
}

function attack(id: MembershipAttack, members: ArrayLike<number>, nonMembers: ArrayLike<number>, bootstrap: number, seed: number, groups: MembershipAucOptions['groups']): AttackResult {
  const r = membershipAuc(members, nonMembers, { bootstrap, seed, groups });
  return { name: ATTACK_NAMES[id], auc: r.auc, ci: r.ci, level: leakageLevel(r), text: describeMembership(id, r) };
}

export function auditMembership(input: MembershipAuditInput): { section: MembershipSection; rows: MembershipScoreRow[] } {
  const c = input.control;
  if (c && (c.memberLogan.length !== input.members.length || c.nonMemberLogan.length !== input.nonMembers.length)) {
    throw new EvalError(`membership audit: control discriminator scores for ${c.memberLogan.length}/${c.nonMemberLogan.length} tiles but ${input.members.length}/${input.nonMembers.length} tiles`);
  }
  if (input.memberLogan.length !== input.members.length || input.nonMemberLogan.length !== input.nonMembers.length) {
    throw new EvalError(`membership audit: discriminator scores for ${input.memberLogan.length}/${input.nonMemberLogan.length} tiles but ${input.members.length}/${input.nonMembers.length} tiles`);
  }
  const pick = sameHospitalRows(input.members, input.nonMembers);
  const members = pick.members.map((i) => input.members[i]);
  const nonMembers = pick.nonMembers.map((i) => input.nonMembers[i]);
  const leaks = (tiles: readonly RealTile[], f: Features, rows: number[], synthetic = input.synthetic, syntheticLabels = input.syntheticLabels) =>
    ganLeaksScores(selectRows(f, rows), tiles.map((t) => t.label), synthetic, syntheticLabels);
  const mLeaks = leaks(members, input.memberFeatures, pick.members);
  const nLeaks = leaks(nonMembers, input.nonMemberFeatures, pick.nonMembers);
  const mLogan = Float64Array.from(pick.members, (i) => input.memberLogan[i]);
  const nLogan = Float64Array.from(pick.nonMembers, (i) => input.nonMemberLogan[i]);
  // Tiles of one patient are alike: with patients known, the interval resamples patients.
  const groups = [...members, ...nonMembers].every((t) => t.patient) ? { members: members.map((t) => t.patient!), nonMembers: nonMembers.map((t) => t.patient!) } : undefined;
  const section: MembershipSection = {
    attacks: {
      ganLeaks: attack('gan-leaks', mLeaks.scores, nLeaks.scores, input.bootstrap, input.seed, groups),
      logan: attack('logan', mLogan, nLogan, input.bootstrap, input.seed, groups),
    },
    control: input.control
      ? {
          ganLeaks: attack(
            'gan-leaks',
            leaks(members, input.memberFeatures, pick.members, input.control.synthetic, input.control.syntheticLabels).scores,
            leaks(nonMembers, input.nonMemberFeatures, pick.nonMembers, input.control.synthetic, input.control.syntheticLabels).scores,
            input.bootstrap,
            input.seed,
            groups,
          ),
          logan: attack(
            'logan',
            Float64Array.from(pick.members, (i) => input.control!.memberLogan[i]),
            Float64Array.from(pick.nonMembers, (i) => input.control!.nonMemberLogan[i]),
            input.bootstrap,
            input.seed,
            groups,
          ),
        }
      : null,
    members: { tiles: members.length, perClass: perClass(members, input.classes) },
    nonMembers: { tiles: nonMembers.length, perClass: perClass(nonMembers, input.classes) },
    sites: pick.sites,
    leftOut: { members: input.members.length - members.length, nonMembers: input.nonMembers.length - nonMembers.length },
    featureSpace: input.featureSpace,
    generatedTiles: input.synthetic.rows,
    interpretation: MEMBERSHIP_INTERPRETATION,
  };
  const row = (t: RealTile, member: boolean, distance: number, logan: number): MembershipScoreRow => ({
    file: t.file,
    className: t.className,
    site: t.site ?? null,
    member,
    ganLeaksDistance: distance,
    loganScore: logan,
  });
  const rows = [
    ...members.map((t, i) => row(t, true, mLeaks.distances[i], mLogan[i])),
    ...nonMembers.map((t, i) => row(t, false, nLeaks.distances[i], nLogan[i])),
  ];
  return { section, rows };
}
