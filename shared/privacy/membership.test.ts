import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetFromTiles } from '../data/dataset.ts';
import { createGan, type Gan } from '../gan/gan.ts';
import { tinyConfig } from '../gan/testConfig.ts';
import { featuresFromRows } from '../metrics/features.ts';
import { Rng } from '../rng.ts';
import { bootstrapAucs, clusterBootstrapAucs, describeMembership, ganLeaksScores, leakageLevel, membershipAuc, MembershipError } from './membership.ts';
import { discriminatorScores } from './membershipDiscriminator.ts';

describe('membershipAuc', () => {
  it('is the share of member/non-member pairs where the member scores higher (hand-computed)', () => {
    // Pairs: 0.9>0.7, 0.9>0.3, 0.8>0.7, 0.8>0.3, 0.4<0.7, 0.4>0.3: 5 of 6.
    expect(membershipAuc([0.9, 0.8, 0.4], [0.7, 0.3], { bootstrap: 0 }).auc).toBeCloseTo(5 / 6, 12);
    // Ties count one half: 1 vs 2 → 0, 1 vs 0 → 1, 2 vs 2 → ½, 2 vs 0 → 1: 2.5 of 4.
    expect(membershipAuc([1, 2], [2, 0], { bootstrap: 0 }).auc).toBeCloseTo(0.625, 12);
    const r = membershipAuc([0.9, 0.8, 0.4], [0.7, 0.3], { bootstrap: 0 });
    expect(r).toMatchObject({ members: 3, nonMembers: 2, ci: null });
  });

  it('bootstraps members and non-members separately: the exact resampling distribution of a small case', () => {
    // Members {3, 1}, non-member {2}: the member resamples {3,3}, {3,1}, {1,3}, {1,1} are equally likely,
    // with AUC 1, ½, ½, 0. So P(1) = ¼, P(½) = ½, P(0) = ¼.
    const aucs = bootstrapAucs([3, 1], [2], 8000, 5);
    const share = (v: number) => aucs.filter((a) => a === v).length / aucs.length;
    expect(share(1)).toBeCloseTo(0.25, 1);
    expect(share(0.5)).toBeCloseTo(0.5, 1);
    expect(share(0)).toBeCloseTo(0.25, 1);
    expect(Math.abs(share(1) - 0.25)).toBeLessThan(0.025); // 4.6 binomial sd
    expect(Math.abs(share(0.5) - 0.5)).toBeLessThan(0.03);
    expect(share(1) + share(0.5) + share(0)).toBe(1);
  });

  it('with patients, resamples patients: the exact resampling distribution of a small case', () => {
    // Member patients A (tiles 3, 3) and B (tile 1), non-member patient C (tile 2). Patient draws {A,A},
    // {A,B}, {B,A}, {B,B} are equally likely: members [3,3,3,3] → AUC 1, [3,3,1] → 2/3 (twice), [1,1] → 0.
    // (Resampling the three tiles instead would give AUC 1 with probability (2/3)³ = 0.30.)
    const aucs = clusterBootstrapAucs([3, 3, 1], ['A', 'A', 'B'], [2], ['C'], 8000, 5);
    const share = (v: number) => aucs.filter((a) => Math.abs(a - v) < 1e-12).length / aucs.length;
    expect(Math.abs(share(1) - 0.25)).toBeLessThan(0.025);
    expect(Math.abs(share(2 / 3) - 0.5)).toBeLessThan(0.03);
    expect(Math.abs(share(0) - 0.25)).toBeLessThan(0.025);
    expect(share(1) + share(2 / 3) + share(0)).toBe(1);
    const r = membershipAuc([3, 3, 1], [2], { groups: { members: ['A', 'A', 'B'], nonMembers: ['C'] }, bootstrap: 500 });
    expect(r.auc).toBeCloseTo(2 / 3, 12);
    expect(r.ci).toMatchObject({ unit: 'patient', low: 0, high: 1 });
    expect(membershipAuc([3, 3, 1], [2], { bootstrap: 50 }).ci!.unit).toBe('tile');
    expect(() => membershipAuc([3, 3, 1], [2], { groups: { members: ['A', 'B'], nonMembers: ['C'] } })).toThrow(/2 member and 1 non-member groups for 3 and 1 scores/);
    expect(() => membershipAuc([3], [2], { groups: { members: [''], nonMembers: ['C'] } })).toThrow(/every tile needs a patient/);
  });

  it('clustered tiles: resampling patients gives a wider interval than resampling tiles', () => {
    // 6 member and 6 non-member patients of 10 near-identical tiles each, patients differing a lot.
    const rng = new Rng(21);
    const side = (prefix: string) => {
      const scores: number[] = [];
      const groups: string[] = [];
      for (let p = 0; p < 6; p++) {
        const centre = rng.normal();
        for (let t = 0; t < 10; t++) {
          scores.push(centre + 0.01 * rng.normal());
          groups.push(`${prefix}${p}`);
        }
      }
      return { scores, groups };
    };
    const m = side('m');
    const n = side('n');
    const byTile = membershipAuc(m.scores, n.scores, { bootstrap: 1000 });
    const byPatient = membershipAuc(m.scores, n.scores, { bootstrap: 1000, groups: { members: m.groups, nonMembers: n.groups } });
    expect(byPatient.auc).toBe(byTile.auc);
    expect(byPatient.ci!.high - byPatient.ci!.low).toBeGreaterThan(2 * (byTile.ci!.high - byTile.ci!.low));
  });

  it('gives an interval whose width matches the Hanley–McNeil standard error', () => {
    // Members ~ N(0.5, 1), non-members ~ N(0, 1): true AUC Φ(0.5/√2) = 0.6382.
    const rng = new Rng(11);
    const members = Array.from({ length: 300 }, () => 0.5 + rng.normal());
    const non = Array.from({ length: 300 }, () => rng.normal());
    const r = membershipAuc(members, non, { bootstrap: 2000, seed: 3 });
    // Hanley & McNeil (1982): SE² = [A(1−A) + (n1−1)(Q1−A²) + (n2−1)(Q2−A²)] / (n1 n2), Q1 = A/(2−A), Q2 = 2A²/(1+A).
    const A = r.auc;
    const q1 = A / (2 - A);
    const q2 = (2 * A * A) / (1 + A);
    const se = Math.sqrt((A * (1 - A) + 299 * (q1 - A * A) + 299 * (q2 - A * A)) / (300 * 300));
    expect(se).toBeGreaterThan(0.02);
    expect(se).toBeLessThan(0.03);
    const width = r.ci!.high - r.ci!.low;
    expect(width / (2 * 1.96 * se)).toBeGreaterThan(0.85);
    expect(width / (2 * 1.96 * se)).toBeLessThan(1.15);
    expect(r.ci!.low).toBeLessThan(A);
    expect(r.ci!.high).toBeGreaterThan(A);
    expect(Math.abs(A - 0.6382)).toBeLessThan(3 * se);
    expect(leakageLevel(r)).not.toBe('none-detected');
  });

  it('is seeded: the same seed gives the same interval, another seed another one', () => {
    const rng = new Rng(2);
    const a = Array.from({ length: 40 }, () => rng.normal());
    const b = Array.from({ length: 40 }, () => rng.normal());
    const r1 = membershipAuc(a, b, { seed: 9, bootstrap: 200 });
    const r2 = membershipAuc(a, b, { seed: 9, bootstrap: 200 });
    const r3 = membershipAuc(a, b, { seed: 10, bootstrap: 200 });
    expect(r1.ci).toEqual(r2.ci);
    expect(r3.ci!.low).not.toBe(r1.ci!.low);
    expect(r1.ci).toMatchObject({ level: 0.95, resamples: 200, seed: 9, unit: 'tile' });
  });

  it('separable scores give AUC 1 with interval [1, 1]; identical scores give 0.5 with [0.5, 0.5]', () => {
    expect(membershipAuc([5, 6, 7], [1, 2], { bootstrap: 100 })).toMatchObject({ auc: 1, ci: { low: 1, high: 1 } });
    expect(membershipAuc([1, 1, 1], [1, 1], { bootstrap: 100 })).toMatchObject({ auc: 0.5, ci: { low: 0.5, high: 0.5 } });
  });

  it('refuses empty sets, non-finite scores and bad options, naming what is wrong', () => {
    expect(() => membershipAuc([], [1])).toThrow(/at least one member tile/);
    expect(() => membershipAuc([1], [])).toThrow(/at least one non-member tile/);
    expect(() => membershipAuc([1, NaN], [1])).toThrow(/member score 1 is NaN/);
    expect(() => membershipAuc([1], [2], { bootstrap: -1 })).toThrow(MembershipError);
    expect(() => membershipAuc([1], [2], { level: 1 })).toThrow(/confidence level/);
  });
});

describe('leakage in plain words', () => {
  const r = (auc: number, low: number, high: number) => ({ auc, ci: { low, high, level: 0.95, resamples: 100, seed: 1, unit: 'tile' as const }, members: 50, nonMembers: 40 });
  it('calls an interval containing 0.5 "no detectable leakage", never "no leakage"', () => {
    expect(leakageLevel(r(0.52, 0.45, 0.6))).toBe('none-detected');
    const text = describeMembership('gan-leaks', r(0.52, 0.45, 0.6));
    expect(text).toBe(
      'GAN-Leaks (distance to the nearest generated tile): AUC 0.520 (95 % interval 0.450–0.600) on 50 training vs 40 held-out tiles. ' +
        'No detectable leakage: the attack does no better than chance (0.5) at telling the training tiles from held-out ones. With few tiles only a large leak would show.',
    );
  });
  it('grades an interval above 0.5 as weak, and one at or above 0.6 as clear', () => {
    expect(leakageLevel(r(0.56, 0.51, 0.61))).toBe('weak');
    expect(leakageLevel(r(0.7, 0.6, 0.8))).toBe('clear');
    expect(describeMembership('logan', r(0.7, 0.6, 0.8))).toMatch(/^LOGAN \(discriminator score\): AUC 0\.700 .*Clear leakage: the model reveals which tiles it was trained on/);
  });
  it('an attack that scores members lower than chance is not leakage', () => {
    expect(leakageLevel(r(0.3, 0.2, 0.4))).toBe('none-detected');
  });
});

describe('GAN-Leaks scores', () => {
  it('is minus the distance to the nearest generated row of the query’s own class (hand example)', () => {
    const generated = featuresFromRows([[0, 0], [10, 0], [0, 10]]);
    const query = featuresFromRows([[1, 0], [0, 9], [0, 9]]);
    const { scores, distances } = ganLeaksScores(query, [0, 1, 0], generated, [0, 0, 1]);
    // (1,0) class 0 → (0,0): 1. (0,9) class 1 → (0,10): 1. (0,9) class 0 → (0,0): 9, not the class-1 sample at 1.
    expect(Array.from(distances)).toEqual([1, 1, 9]);
    expect(Array.from(scores)).toEqual([-1, -1, -9]);
  });

  it('finds a generator that copies its training rows (AUC ≈ 1) and not one that does not (interval holds 0.5)', () => {
    const rng = new Rng(4);
    const point = () => Array.from({ length: 8 }, () => rng.normal());
    const members = Array.from({ length: 60 }, point);
    const nonMembers = Array.from({ length: 60 }, point);
    const labels = Array.from({ length: 60 }, (_, i) => i % 2);
    const q = featuresFromRows([...members, ...nonMembers]);
    const ql = [...labels, ...labels];
    const score = (gen: number[][]) => {
      const s = ganLeaksScores(q, ql, featuresFromRows(gen), gen.map((_, i) => i % 2)).scores;
      return membershipAuc(s.subarray(0, 60), s.subarray(60), { bootstrap: 300, seed: 1 });
    };
    // A copying generator: its samples are the members plus a little noise (same class order).
    const copying = score(members.map((m) => m.map((v) => v + 0.05 * rng.normal())));
    expect(copying.auc).toBeGreaterThan(0.99);
    expect(leakageLevel(copying)).toBe('clear');
    // An honest one: fresh draws from the same distribution.
    const honest = score(Array.from({ length: 400 }, point));
    expect(honest.ci!.low).toBeLessThan(0.5);
    expect(honest.ci!.high).toBeGreaterThan(0.5);
    expect(leakageLevel(honest)).toBe('none-detected');
  });

  it('refuses a query class with no generated tile', () => {
    expect(() => ganLeaksScores(featuresFromRows([[0]]), [1], featuresFromRows([[0]]), [0])).toThrow(/no generated tile of class 1/);
  });
});

describe('LOGAN discriminator scores', () => {
  let gan: Gan;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    gan = createGan(tinyConfig('cgan'));
  });
  afterAll(() => gan.dispose());

  it('are the discriminator’s inference-mode score on each tile with its class, in order, across batches', async () => {
    const rng = new Rng(3);
    const size = gan.cfg.imageSize;
    const tiles = Array.from({ length: 7 }, () => Uint8Array.from({ length: size * size * 3 }, () => rng.int(256)));
    const labels = [0, 1, 1, 0, 1, 0, 0];
    const seen: number[] = [];
    const scores = await discriminatorScores(gan, tiles, labels, { batchSize: 3, onProgress: (d) => seen.push(d) });
    expect(seen).toEqual([3, 6, 7]);
    // Independently: one pass over all seven tiles.
    const ds = datasetFromTiles(tiles.map((p, i) => ({ pixels: p, label: labels[i] })), size, 2);
    const direct = tf.tidy(() => gan.D.apply(ds.images, ds.labels, false).score);
    const want = Array.from(await direct.data());
    direct.dispose();
    ds.dispose();
    scores.forEach((s, i) => expect(s).toBeCloseTo(want[i], 4));
    // The class matters (a projection head): the same tile scored as the other class differs.
    const flipped = await discriminatorScores(gan, tiles.slice(0, 1), [1]);
    expect(flipped[0]).not.toBeCloseTo(scores[0], 6);
  });

  it('refuses tiles of the wrong size or class, naming the tile', async () => {
    await expect(discriminatorScores(gan, [new Uint8Array(5)], [0])).rejects.toThrow(/tile 0 has 5 bytes, expected 768 \(16×16 RGB/);
    await expect(discriminatorScores(gan, [new Uint8Array(768)], [2])).rejects.toThrow(/tile 0 has class 2, expected 0\.\.1/);
  });
});
