/**
 * The parts of the quality report that judge the synthetic tiles against references (issue 13): the
 * real floor at one sample size, class fidelity from the real-only classifiers, patient-level figures,
 * the 5-seed default and the goals table. Small tiles, the tiny feature extractor, 2 epochs.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initNodeBackend } from '../node/nodeBackend.ts';
import { createTinyExtractor } from '../shared/features/tiny.ts';
import { fid } from '../shared/metrics/fid.ts';
import { kid } from '../shared/metrics/kid.ts';
import { writeSyntheticTiles } from '../node/testing/syntheticTiles.ts';
import { parseEvaluateArgs } from './cli.ts';
import { DEFAULT_OPTIONS, evaluate, type EvaluateOptions, type EvaluateResult } from './evaluate.ts';
import { readRealTiles } from './realTiles.ts';
import { GOAL_IDS } from './report/goals.ts';
import { parseGanConfig } from '../shared/config/ganConfig.ts';
import { createGan } from '../shared/gan/gan.ts';
import { discriminatorScores } from '../shared/privacy/membershipDiscriminator.ts';
import { writeTinyCheckpoint } from './test/tinyCheckpoint.ts';

let dir: string;
const classes = ['MSIH', 'nonMSIH'];

function quick(over: Partial<EvaluateOptions>): EvaluateOptions {
  return {
    ...DEFAULT_OPTIONS,
    checkpoint: join(dir, 'ckpt.fgw'),
    realTrain: join(dir, 'train'),
    realTest: join(dir, 'test'),
    perClass: 10,
    out: join(dir, 'out'),
    features: 'tiny',
    classifierSize: 16,
    classifierWorkers: 1,
    epochs: 2,
    seeds: [1, 2, 3],
    kidSubsets: 10,
    tsnePerGroup: 8,
    tsneIterations: 50,
    linearProbe: false,
    featureCache: null,
    ...over,
  };
}

/** Independent AUROC: the fraction of (positive, negative) pairs ranked right, ties ½. */
function pairAuroc(labels: boolean[], scores: number[]): number {
  let right = 0;
  let pairs = 0;
  labels.forEach((p, i) => {
    if (!p) return;
    labels.forEach((n, j) => {
      if (n) return;
      pairs++;
      right += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    });
  });
  return right / pairs;
}

const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
const sampleSd = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + (x - mean(v)) ** 2, 0) / (v.length - 1));

let run: EvaluateResult;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedgan-evaluate-'));
  writeSyntheticTiles(join(dir, 'train'), { perClass: 12, size: 24, seed: 1 });
  writeSyntheticTiles(join(dir, 'test'), { perClass: 6, size: 24, seed: 2 });
  await initNodeBackend();
  writeTinyCheckpoint(join(dir, 'ckpt.fgw'));
  // 20 synthetic tiles against 12 real test tiles: the synthetic side is subsampled to 12.
  run = await evaluate(quick({}));
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('quality report: references and goals', () => {
  it('defaults to 5 classifier seeds', () => {
    expect(DEFAULT_OPTIONS.seeds).toEqual([1, 2, 3, 4, 5]);
    const o = parseEvaluateArgs(['--checkpoint', 'c', '--real-train', 'a', '--real-test', 'b', '--per-class', '3', '--out', 'o']);
    expect(o).toMatchObject({ seeds: [1, 2, 3, 4, 5] });
  });

  it('computes the real floor on as many test tiles as synthetic ones, against all training tiles', async () => {
    const { report, details } = run;
    expect(report.floor.n).toBe(12);
    expect(report.floor.trainN).toBe(24);
    expect(details.floorRows.test).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(details.floorRows.synthetic).toHaveLength(12);
    expect(new Set(details.floorRows.synthetic).size).toBe(12);
    expect(details.floorRows.synthetic.every((i) => i >= 0 && i < 20)).toBe(true);
    // The floor, recomputed here from the tiles: FID and KID of all 12 test tiles against the 24 training tiles.
    const ex = createTinyExtractor();
    const read = (d: string, seed: number) => readRealTiles(join(dir, d), { classes, size: 16, flag: '--x', role: 'x', seed });
    const trainF = await ex.extract(read('train', 7).tiles.map((t) => t.pixels), 16);
    const testF = await ex.extract(read('test', 8).tiles.map((t) => t.pixels), 16);
    expect(report.floor.fid).toBeCloseTo(fid(trainF, testF), 6);
    const k = kid(trainF, testF, { subsets: 10, seed: 7 });
    expect(report.floor.kid.mean).toBeCloseTo(k.mean, 9);
    expect(report.floor.kidSubsetSize).toBe(6);
    // The synthetic figure at that size differs from the one on all 20 synthetic tiles, and the ratio is of the matched pair.
    expect(report.floor.syntheticFid).not.toBe(report.fid);
    expect(report.floor.fidOverFloor).toBeCloseTo(report.floor.syntheticFid / report.floor.fid, 12);
    expect(Object.keys(report.floor)).toEqual(['n', 'trainN', 'fid', 'kid', 'syntheticFid', 'syntheticKid', 'fidOverFloor', 'kidSubsetSize']);
  });

  it('subsamples the test tiles instead when there are fewer synthetic tiles, and then the synthetic figures are the full ones', async () => {
    const { report, details } = await evaluate(quick({ perClass: 5, epochs: 1, out: join(dir, 'out-few') }));
    expect(report.floor.n).toBe(10);
    expect(details.floorRows.synthetic).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(details.floorRows.test).toHaveLength(10);
    expect(new Set(details.floorRows.test).size).toBe(10);
    expect(report.floor.syntheticFid).toBe(report.fid);
    expect(report.floor.syntheticKid).toEqual(report.kid);
    expect(report.floor.kidSubsetSize).toBe(report.config.kid.subsetSize);
  });

  it('class fidelity: the real-only models\' mean positive scores per class, recomputed from their raw scores', () => {
    const { report, details } = run;
    const raw = details.realOnlyScores;
    expect(raw.perSeed.map((s) => s.seed)).toEqual([1, 2, 3]);
    expect(raw.syntheticLabels).toEqual([...Array(10).fill(0), ...Array(10).fill(1)]);
    expect(raw.testLabels).toHaveLength(12);
    for (const [k, s] of raw.perSeed.entries()) {
      // These test scores are the real-only models' own: they give the reported real-only tile AUROC.
      expect(pairAuroc(raw.testLabels.map((l) => l === 0), s.test)).toBeCloseTo(details.classificationPerSeed.realOnly.perSeed[k].tile.auroc, 12);
      expect(s.synthetic).toHaveLength(20);
    }
    for (const [source, labels, key] of [
      ['synthetic', raw.syntheticLabels, 'synthetic'],
      ['realTest', raw.testLabels, 'test'],
    ] as const) {
      const perSeed = raw.perSeed.map((s) => {
        const scores = s[key];
        const m = [0, 1].map((c) => mean(scores.filter((_, i) => labels[i] === c)));
        const called = [0, 1].map((c) => scores.filter((v, i) => labels[i] === c && v > 0.5).length / labels.filter((l) => l === c).length);
        return { m, called, diff: m[0] - m[1] };
      });
      const f = report.classFidelity[source];
      expect(f.tiles).toEqual({ MSIH: labels.filter((l) => l === 0).length, nonMSIH: labels.filter((l) => l === 1).length });
      expect(f.meanScore.MSIH.mean).toBeCloseTo(mean(perSeed.map((p) => p.m[0])), 9);
      expect(f.meanScore.nonMSIH.sd).toBeCloseTo(sampleSd(perSeed.map((p) => p.m[1])), 9);
      expect(f.calledPositive.MSIH.mean).toBeCloseTo(mean(perSeed.map((p) => p.called[0])), 9);
      expect(f.difference.mean).toBeCloseTo(mean(perSeed.map((p) => p.diff)), 9);
      expect(f.difference.sd).toBeCloseTo(sampleSd(perSeed.map((p) => p.diff)), 9);
      expect(f.carried).toBe(f.difference.mean > f.difference.sd + 1e-9);
      expect(details.classFidelityPerSeed[source].map((p) => p.difference)).toEqual(perSeed.map((p) => expect.closeTo(p.diff, 9)));
    }
  });

  it('reports patient-level figures for every regime, with the number of patients', () => {
    const { report, files } = run;
    expect(report.config.realTest).toMatchObject({ patients: 6, patientsPerClass: { MSIH: 3, nonMSIH: 3 } });
    expect(report.config.realTrain).toMatchObject({ patients: 6, patientsPerClass: { MSIH: 3, nonMSIH: 3 } });
    for (const r of Object.values(report.classification)) expect(Object.keys(r.patientLevel!)).toEqual(['accuracy', 'f1', 'balancedAccuracy', 'auroc']);
    const html = readFileSync(files.html, 'utf8');
    expect(html).toContain('Small CNN, patient level, 6 patients: MSIH 3, nonMSIH 3');
    expect(html).toContain('patient AUROC over 6 test patients');
  });

  it('judges every goal from the report\'s own figures, and shows them in the HTML', () => {
    const { report, files } = run;
    expect(report.goals.map((g) => g.id)).toEqual([...GOAL_IDS]);
    const g = Object.fromEntries(report.goals.map((x) => [x.id, x]));
    const c = report.classification;
    expect(g.fidVsFloor).toMatchObject({ figure: report.floor.fidOverFloor, threshold: 3, met: report.floor.fidOverFloor! <= 3 });
    const ratios = Object.values(report.diversity).map((d) => d.synthetic! / d.real!);
    expect(g.diversity).toMatchObject({ figure: Math.min(...ratios), threshold: 0.8, met: ratios.every((r) => r >= 0.8) });
    expect(g.classFidelity).toMatchObject({ figure: report.classFidelity.synthetic.difference.mean, threshold: report.classFidelity.synthetic.difference.sd, met: report.classFidelity.synthetic.carried });
    expect(g.syntheticOnlyAuroc.figure).toBeCloseTo(c.realOnly.auroc.mean - c.syntheticOnly.auroc.mean, 12);
    expect(g.syntheticOnlyAuroc.met).toBe(g.syntheticOnlyAuroc.figure! <= 0.03 + 1e-9);
    const baGain = c.realPlusSynthetic.balancedAccuracy.mean - c.realOnly.balancedAccuracy.mean;
    const baSd = Math.max(c.realPlusSynthetic.balancedAccuracy.sd, c.realOnly.balancedAccuracy.sd);
    expect(g.realPlusSyntheticBalancedAccuracy).toMatchObject({ figure: expect.closeTo(baGain, 12), threshold: baSd, met: baGain > baSd + 1e-9 });
    const paGain = c.realPlusSynthetic.patientLevel!.auroc.mean - c.realOnly.patientLevel!.auroc.mean;
    const paSd = Math.max(c.realPlusSynthetic.patientLevel!.auroc.sd, c.realOnly.patientLevel!.auroc.sd);
    expect(g.realPlusSyntheticPatientAuroc).toMatchObject({ figure: expect.closeTo(paGain, 12), threshold: paSd, met: paGain > paSd + 1e-9 });
    const m = report.memorization;
    expect(g.memorization).toMatchObject({ figure: m.syntheticToTrain.p5, threshold: m.testToTrain.p5, met: m.syntheticToTrain.p5 >= m.testToTrain.p5 });
    const html = readFileSync(files.html, 'utf8');
    expect(html.match(/<tr class="goal-(met|unmet)">/g)).toHaveLength(GOAL_IDS.length);
    expect(html).toContain(`real floor (real test tiles) <b>${report.floor.fid.toFixed(2)}</b>`);
    expect(html).toContain('Do the synthetic tiles carry their class?');
    expect(html).toMatch(/The class is (carried|not carried|reversed)\./);
  });

  it('audits membership: both attacks\' AUCs recomputed from the per-tile scores, training tiles as members', async () => {
    const { report, details } = run;
    const m = report.membership;
    const rows = details.membershipScores;
    // Every training tile is a member and every test tile a non-member (both folders have sites TCGA-AA and TCGA-CM).
    expect(m.members).toEqual({ tiles: 24, perClass: { MSIH: 12, nonMSIH: 12 } });
    expect(m.nonMembers).toEqual({ tiles: 12, perClass: { MSIH: 6, nonMSIH: 6 } });
    expect(m.sites).toEqual([
      { site: 'TCGA-AA', members: 12, nonMembers: 6 },
      { site: 'TCGA-CM', members: 12, nonMembers: 6 },
    ]);
    expect(m.leftOut).toEqual({ members: 0, nonMembers: 0 });
    expect(rows.filter((r) => r.member).map((r) => r.file).sort()).toEqual(readRealTiles(join(dir, 'train'), { classes, size: 16, flag: '--x', role: 'x' }).tiles.map((t) => t.file).sort());
    expect(rows.filter((r) => !r.member).every((r) => r.file.startsWith(join(dir, 'test')))).toBe(true);
    // Independently: GAN-Leaks scores a tile by minus its distance, LOGAN by the discriminator's output.
    const labels = rows.map((r) => r.member);
    expect(m.attacks.ganLeaks.auc).toBeCloseTo(pairAuroc(labels, rows.map((r) => -r.ganLeaksDistance)), 12);
    expect(m.attacks.logan.auc).toBeCloseTo(pairAuroc(labels, rows.map((r) => r.loganScore)), 12);
    for (const a of [m.attacks.ganLeaks, m.attacks.logan]) {
      // The manifests name every tile's patient: the interval resamples patients.
      expect(a.ci).toMatchObject({ level: 0.95, resamples: 1000, seed: 7, unit: 'patient' });
      expect(a.ci!.low).toBeLessThanOrEqual(a.auc);
      expect(a.ci!.high).toBeGreaterThanOrEqual(a.auc);
    }
    expect(m.generatedTiles).toBe(20);
    // The control: an untrained model of the checkpoint's architecture, its discriminator on the same tiles.
    const untrained = createGan(parseGanConfig(report.config.gan));
    const ds = (d: string, seed: number) => readRealTiles(join(dir, d), { classes, size: 16, flag: '--x', role: 'x', seed });
    const score = async (tiles: { pixels: Uint8Array; label: number }[]) => Array.from(await discriminatorScores(untrained, tiles.map((t) => t.pixels), tiles.map((t) => t.label)));
    const controlScores = [...(await score(ds('train', 7).tiles)), ...(await score(ds('test', 8).tiles))];
    untrained.dispose();
    const controlLabels = [...Array(24).fill(true), ...Array(12).fill(false)];
    expect(m.control!.logan.auc).toBeCloseTo(pairAuroc(controlLabels, controlScores), 6);
    expect(m.control!.ganLeaks.auc).toBeGreaterThanOrEqual(0);
    expect(m.interpretation).toMatch(/0\.5 means the attack does no better than a coin: no detectable leakage/);
  });

  it('without patients in the test manifest, the patient goal is not met and says so', async () => {
    const noManifest = join(dir, 'test-anonymous');
    writeSyntheticTiles(noManifest, { perClass: 6, size: 24, seed: 2 });
    rmSync(join(noManifest, 'manifest.csv'));
    const privacy = { epsilon: 3.21, delta: 1e-5, source: 'test' };
    const { report, files } = await evaluate(quick({ realTest: noManifest, epochs: 1, out: join(dir, 'out-anon'), privacy }));
    // ε given to the evaluator is reported as given.
    expect(report.config.privacy).toEqual(privacy);
    expect(readFileSync(files.html, 'utf8')).toContain('<p>Differential privacy: ε = <b>3.21</b> at δ = 1.0e-5 (test).</p>');
    // Without test patients the membership interval resamples tiles.
    expect(report.membership.attacks.logan.ci!.unit).toBe('tile');
    expect(report.config.realTest).toMatchObject({ patients: null, patientsPerClass: null });
    expect(report.classification.realOnly.patientLevel).toBeUndefined();
    expect(report.goals.find((x) => x.id === 'realPlusSyntheticPatientAuroc')).toMatchObject({ figure: null, threshold: null, met: false });
    expect(readFileSync(files.html, 'utf8')).toContain('patient AUROC not measured (no patients in the test manifest)');
  });
});
