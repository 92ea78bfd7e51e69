import { describe, expect, it } from 'vitest';
import { featuresFromRows } from '../shared/metrics/features.ts';
import { auditMembership, sameHospitalRows } from './membership.ts';
import type { RealTile } from './realTiles.ts';

const tile = (file: string, label: number, site?: string): RealTile => ({ pixels: new Uint8Array(0), label, className: ['MSIH', 'nonMSIH'][label], file, site });

describe('membership audit in the quality report', () => {
  it('compares only hospitals with both training and held-out tiles, and counts what it leaves out', () => {
    const members = [tile('a', 0, 'S1'), tile('b', 1, 'S2'), tile('c', 0, 'S3'), tile('d', 1, 'S1')];
    const non = [tile('e', 0, 'S1'), tile('f', 1, 'S4'), tile('g', 1, 'S2')];
    expect(sameHospitalRows(members, non)).toEqual({
      members: [0, 1, 3],
      nonMembers: [0, 2],
      sites: [
        { site: 'S1', members: 2, nonMembers: 1 },
        { site: 'S2', members: 1, nonMembers: 1 },
      ],
    });
    // Without a site for every tile, every tile is compared.
    expect(sameHospitalRows([tile('a', 0), tile('b', 0, 'S1')], non)).toEqual({ members: [0, 1], nonMembers: [0, 1, 2], sites: null });
    expect(() => sameHospitalRows([tile('a', 0, 'S1')], [tile('b', 0, 'S2')])).toThrow(/no hospital site has both training and held-out tiles \(training sites S1; held-out sites S2\)/);
  });

  it('scores the kept tiles with both attacks (hand example) and lists which were members', () => {
    const members = [tile('m1', 0, 'S1'), tile('m2', 1, 'S1'), tile('mx', 0, 'S9')];
    const non = [tile('n1', 0, 'S1'), tile('n2', 1, 'S1')];
    // 1-d features. Generated: class 0 at 0, class 1 at 10.
    const { section, rows } = auditMembership({
      classes: ['MSIH', 'nonMSIH'],
      members,
      memberFeatures: featuresFromRows([[0.5], [10], [0]]),
      memberLogan: [2, 3, 99],
      nonMembers: non,
      nonMemberFeatures: featuresFromRows([[3], [9]]),
      nonMemberLogan: [2.5, 1],
      synthetic: featuresFromRows([[0], [10]]),
      syntheticLabels: [0, 1],
      featureSpace: '1-d test features',
      bootstrap: 0,
      seed: 1,
    });
    // GAN-Leaks distances: members 0.5, 0; non-members 3, 1. Every member is closer: AUC 1.
    expect(section.attacks.ganLeaks).toMatchObject({ auc: 1, ci: null, level: 'clear' });
    // LOGAN: members 2, 3 vs non-members 2.5, 1: pairs 2<2.5, 2>1, 3>2.5, 3>1 → 3 of 4 (the S9 tile's 99 is left out).
    expect(section.attacks.logan.auc).toBeCloseTo(0.75, 12);
    expect(section.leftOut).toEqual({ members: 1, nonMembers: 0 });
    expect(section.members).toEqual({ tiles: 2, perClass: { MSIH: 1, nonMSIH: 1 } });
    expect(rows).toEqual([
      { file: 'm1', className: 'MSIH', site: 'S1', member: true, ganLeaksDistance: 0.5, loganScore: 2 },
      { file: 'm2', className: 'nonMSIH', site: 'S1', member: true, ganLeaksDistance: 0, loganScore: 3 },
      { file: 'n1', className: 'MSIH', site: 'S1', member: false, ganLeaksDistance: 3, loganScore: 2.5 },
      { file: 'n2', className: 'nonMSIH', site: 'S1', member: false, ganLeaksDistance: 1, loganScore: 1 },
    ]);
    expect(section.attacks.logan.text).toMatch(/^LOGAN \(discriminator score\): AUC 0\.750 on 2 training vs 2 held-out tiles\./);
  });

  it('resamples patients for the interval when every audited tile names its patient, else tiles', () => {
    const withPatient = (t: RealTile, patient?: string): RealTile => ({ ...t, patient });
    const base = {
      classes: ['MSIH', 'nonMSIH'],
      memberFeatures: featuresFromRows([[0], [1], [2], [3]]),
      memberLogan: [4, 3, 2, 1],
      nonMemberFeatures: featuresFromRows([[5], [6]]),
      nonMemberLogan: [2.5, 0],
      synthetic: featuresFromRows([[0], [10]]),
      syntheticLabels: [0, 1],
      featureSpace: 'test',
      bootstrap: 50,
      seed: 1,
    };
    const members = ['a', 'b', 'c', 'd'].map((f) => tile(f, 0, 'S1'));
    const non = ['e', 'f'].map((f) => tile(f, 0, 'S1'));
    const byPatient = auditMembership({ ...base, members: members.map((t, i) => withPatient(t, `P${i % 2}`)), nonMembers: non.map((t) => withPatient(t, 'Q')) });
    expect(byPatient.section.attacks.logan.ci).toMatchObject({ unit: 'patient' });
    expect(byPatient.section.attacks.logan.text).toContain(', resampling patients)');
    const oneMissing = auditMembership({ ...base, members: members.map((t, i) => withPatient(t, i === 0 ? undefined : 'P')), nonMembers: non.map((t) => withPatient(t, 'Q')) });
    expect(oneMissing.section.attacks.logan.ci).toMatchObject({ unit: 'tile' });
  });
});
