import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initNodeBackend } from '../node/nodeBackend.ts';
import { writeSyntheticTiles } from '../node/testing/syntheticTiles.ts';
import { hospitalLines, parseEvaluateArgs } from './cli.ts';
import { readTileFolder } from '../node/tileFolder.ts';
import { partitionTiles } from '../cli/simulation.ts';
import { readRealTiles } from './realTiles.ts';
import { DEFAULT_OPTIONS, defaultFeatureCache, evaluate, type EvaluateOptions } from './evaluate.ts';
import { writeTinyCheckpoint } from './test/tinyCheckpoint.ts';

let dir: string;

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
    seeds: [1, 2, 3], // the default is 5 seeds; 3 keep the test fast
    kidSubsets: 10,
    tsnePerGroup: 8,
    tsneIterations: 50,
    linearProbe: false,
    featureCache: null,
    ...over,
  };
}

function writePng(path: string, size: number): void {
  const png = new PNG({ width: size, height: size });
  png.data.fill(200);
  writeFileSync(path, PNG.sync.write(png));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedgan-eval-'));
  writeSyntheticTiles(join(dir, 'train'), { perClass: 12, size: 24, seed: 1 });
  writeSyntheticTiles(join(dir, 'test'), { perClass: 6, size: 24, seed: 2 });
  await initNodeBackend();
  writeTinyCheckpoint(join(dir, 'ckpt.fgw'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('npm run evaluate', () => {
  it('parses the documented flags and names missing ones', () => {
    const o = parseEvaluateArgs(['--checkpoint', 'c.fgw', '--real-train', 'a', '--real-test', 'b', '--per-class', '50', '--out', 'o', '--seeds', '4,5,6', '--features', 'tiny']);
    expect(o).toMatchObject({ checkpoint: 'c.fgw', realTrain: 'a', realTest: 'b', perClass: 50, out: 'o', seeds: [4, 5, 6], features: 'tiny', epochs: DEFAULT_OPTIONS.epochs });
    expect(o).toMatchObject({ linearProbe: true, featureEngine: 'auto' });
    expect(parseEvaluateArgs(['--checkpoint', 'c', '--real-train', 'a', '--real-test', 'b', '--per-class', '3', '--out', 'o', '--feature-engine', 'wasm'])).toMatchObject({ featureEngine: 'wasm' });
    expect(() => parseEvaluateArgs(['--checkpoint', 'c', '--real-train', 'a', '--real-test', 'b', '--per-class', '3', '--out', 'o', '--feature-engine', 'cuda'])).toThrow('--feature-engine must be one of auto, onnx, wasm, got "cuda"');
    expect(parseEvaluateArgs(['--checkpoint', 'c', '--real-train', 'a', '--real-test', 'b', '--per-class', '3', '--out', 'o', '--no-linear-probe'])).toMatchObject({ linearProbe: false });
    expect(o).toMatchObject({ featureCache: defaultFeatureCache() });
    expect(defaultFeatureCache({ XDG_CACHE_HOME: '/c' })).toBe('/c/fedgan/features');
    expect(parseEvaluateArgs(['--checkpoint', 'c', '--real-train', 'a', '--real-test', 'b', '--per-class', '3', '--out', 'o', '--feature-cache', '/x'])).toMatchObject({ featureCache: '/x' });
    expect(parseEvaluateArgs(['--checkpoint', 'c', '--real-train', 'a', '--real-test', 'b', '--per-class', '3', '--out', 'o', '--no-feature-cache'])).toMatchObject({ featureCache: null });
    expect(() => parseEvaluateArgs(['--checkpoint', 'c.fgw'])).toThrow(/missing --real-train, --real-test, --per-class, --out/);
    const base = ['--checkpoint', 'c', '--real-train', 'a', '--real-test', 'b', '--per-class', '3', '--out', 'o'];
    expect(parseEvaluateArgs([...base, '--epsilon', '2.5', '--delta', '1e-5'])).toMatchObject({ privacy: { epsilon: 2.5, delta: 1e-5, source: 'given with --epsilon' } });
    expect(parseEvaluateArgs(base)).not.toHaveProperty('privacy');
    expect(() => parseEvaluateArgs([...base, '--delta', '1e-5'])).toThrow('--delta needs --epsilon');
    expect(() => parseEvaluateArgs([...base, '--epsilon=-1'])).toThrow('--epsilon must be a number ≥ 0, got "-1"');
    expect(parseEvaluateArgs([...base, '--membership-bootstrap', '0'])).toMatchObject({ membershipBootstrap: 0 });
    expect(() => parseEvaluateArgs(['--checkpoint', 'c', '--real-train', 'a', '--real-test', 'b', '--per-class', 'x', '--out', 'o'])).toThrow(/--per-class must be an integer ≥ 2, got "x"/);
    expect(() => parseEvaluateArgs(['--checkpoint', 'c', '--real-train', 'a', '--real-test', 'b', '--per-class', '3', '--out', 'o', '--features', 'vgg'])).toThrow(/--features must be inception or tiny/);
    expect(() => parseEvaluateArgs(['--checkpoint', 'c', '--real-train', 'a', '--real-test', 'b', '--per-class', '3', '--out', 'o', '--seeds', '1,2'])).toThrow(/--seeds needs at least 3 seeds/);
  });

  it('writes a complete report.json, report-details.json and a self-contained report.html end to end', async () => {
    const { report, details, files } = await evaluate(quick({}));
    const onDisk = JSON.parse(readFileSync(files.json, 'utf8'));
    expect(Object.keys(onDisk)).toEqual(['fid', 'kid', 'floor', 'classification', 'classFidelity', 'memorization', 'diversity', 'membership', 'goals', 'hospitals', 'config']);
    expect(report.hospitals).toBeNull(); // no --partition
    expect(details).not.toHaveProperty('hospitalsPerSeed');
    expect(onDisk).toEqual(JSON.parse(JSON.stringify(report)));
    expect(Number.isFinite(report.fid)).toBe(true);
    expect(report.fid).toBeGreaterThan(0);
    expect(Object.keys(report.kid)).toEqual(['mean', 'std']);
    expect(Object.keys(report.classification)).toEqual(['realOnly', 'realPlusSynthetic', 'syntheticOnly']);
    for (const r of Object.values(report.classification)) {
      expect(Object.keys(r)).toEqual(['accuracy', 'f1', 'balancedAccuracy', 'auroc', 'patientLevel']);
      for (const m of [r.accuracy, r.f1, r.balancedAccuracy, r.auroc, r.patientLevel!.auroc]) {
        expect(Object.keys(m)).toEqual(['mean', 'sd']);
        expect(m.mean).toBeGreaterThanOrEqual(0);
        expect(m.mean).toBeLessThanOrEqual(1);
      }
    }
    expect(details.classificationPerSeed.realOnly.perSeed.map((p) => p.seed)).toEqual([1, 2, 3]);
    expect(details.classificationPerSeed.realPlusSynthetic.perSeed[0].trainTiles).toBe(24 + 20);
    expect(details.classificationPerSeed.syntheticOnly.perSeed[0].trainTiles).toBe(20);
    for (const k of ['syntheticToTrain', 'testToTrain'] as const) {
      expect(Object.keys(report.memorization[k])).toEqual(['p5', 'median']);
      expect(report.memorization[k].p5).toBeLessThanOrEqual(report.memorization[k].median);
    }
    expect(Object.keys(report.diversity)).toEqual(['MSIH', 'nonMSIH']);
    expect(report.diversity.MSIH.synthetic).toBeGreaterThan(0);
    expect(report.diversity.MSIH.real).toBeGreaterThan(0);
    expect(report.config).toMatchObject({ imageSize: 16, perClass: 10, positiveClass: 'MSIH', classes: ['MSIH', 'nonMSIH'] });
    expect(report.config.realTest).toMatchObject({ tiles: 12, perClass: { MSIH: 6, nonMSIH: 6 }, sourceSize: 24, patients: 6 });
    expect(details.closestPairs).toHaveLength(8);
    expect(details.tsne).toHaveLength(32);
    const html = readFileSync(files.html, 'utf8');
    expect(html).not.toMatch(/(src|href)="(https?:|\/\/|file:)/); // self-contained
    expect(html.match(/<img src="data:image\/png;base64,/g)).toHaveLength(1 + 16); // grid + 8 pairs
    expect(html).toContain('<svg');
    expect(html).toContain('Memorization check');
    expect(html).toContain('Membership-inference audit (privacy)');
    expect(report.config.privacy).toBeNull();
    expect(html).toContain('No ε was given for this checkpoint (--epsilon)');
    expect(html).toContain(`<th scope="row">GAN-Leaks (distance to the nearest generated tile)</th><td>${report.membership.attacks.ganLeaks.auc.toFixed(3)}</td>`);
    expect(html).toContain('Real + synthetic tiles');
    expect(existsSync(files.samples)).toBe(true);
  });

  it('parses the federation\'s split (--partition, --clients, --partition-seed) and names what is wrong with it', () => {
    const base = ['--checkpoint', 'c', '--real-train', 'a', '--real-test', 'b', '--per-class', '3', '--out', 'o'];
    expect(parseEvaluateArgs(base)).not.toHaveProperty('hospitals');
    expect(parseEvaluateArgs([...base, '--partition', 'site', '--clients', '2'])).toMatchObject({ hospitals: { partition: { kind: 'site' }, clients: 2, seed: 42 } });
    expect(parseEvaluateArgs([...base, '--partition', 'noniid:0.7', '--partition-seed', '7'])).toMatchObject({ hospitals: { partition: { kind: 'noniid', ratio: 0.7 }, clients: 4, seed: 7 } });
    expect(() => parseEvaluateArgs([...base, '--clients', '3'])).toThrow("--clients needs --partition (the federation's split of --real-train into hospitals)");
    expect(() => parseEvaluateArgs([...base, '--clients', '3', '--partition-seed', '1'])).toThrow('--clients and --partition-seed need --partition');
    expect(() => parseEvaluateArgs([...base, '--partition', 'by-ward'])).toThrow('--partition: invalid partition spec "by-ward": expected "iid", "noniid:<ratio>"');
    expect(() => parseEvaluateArgs([...base, '--partition', 'iid', '--clients', '0'])).toThrow('--clients must be an integer ≥ 1, got "0"');
  });

  it('reads --real-train in the order npm run simulate reads it, so a seeded split gives the same hospitals', () => {
    const real = readRealTiles(join(dir, 'train'), { classes: ['MSIH', 'nonMSIH'], size: 16, flag: '--real-train', role: 'training set' });
    const folder = readTileFolder(join(dir, 'train'), { classes: ['MSIH', 'nonMSIH'], size: 16 });
    expect(real.tiles.map((t) => t.file)).toEqual(folder.map((t) => t.file));
    const spec = { kind: 'noniid', ratio: 0.75 } as const;
    expect(partitionTiles(real.tiles, spec, 2, 5)).toEqual(partitionTiles(folder, spec, 2, 5));
  });

  it('with --partition, trains each hospital on its own tiles and with the synthetic tiles, and reports both', async () => {
    const train3 = join(dir, 'train-3-sites');
    writeSyntheticTiles(train3, { perClass: 12, size: 24, seed: 1, sites: ['TCGA-AA', 'TCGA-CM', 'TCGA-G4'] });
    const { report, details, files } = await evaluate(quick({ realTrain: train3, out: join(dir, 'out-hospitals'), hospitals: { partition: { kind: 'site' }, clients: 2, seed: 42 } }));
    // Three sites of 8 tiles into 2 hospitals: the two smallest (ties by name) merge, as in the simulation.
    const h = report.hospitals!;
    expect(h).toMatchObject({ partition: 'site', clients: 2, seed: 42 });
    expect(h.hospitals.map((x) => [x.name, x.tiles, x.perClass])).toEqual([
      ['site-TCGA-AA+TCGA-CM', 16, { MSIH: 8, nonMSIH: 8 }],
      ['site-TCGA-G4', 8, { MSIH: 4, nonMSIH: 4 }],
    ]);
    expect(details.hospitalsPerSeed!.map((d) => d.name)).toEqual(['site-TCGA-AA+TCGA-CM', 'site-TCGA-G4']);
    expect(details.hospitalsPerSeed![1].ownOnly.perSeed.map((p) => [p.seed, p.trainTiles])).toEqual([[1, 8], [2, 8], [3, 8]]);
    expect(details.hospitalsPerSeed![0].ownPlusSynthetic.perSeed.map((p) => p.trainTiles)).toEqual([36, 36, 36]);
    for (const x of [...h.hospitals, h.meanOverHospitals]) {
      expect(Object.keys(x.gain)).toEqual(['balancedAccuracy', 'auroc', 'patientAuroc']);
      expect(x.gain.auroc!.figure).toBeCloseTo(x.ownPlusSynthetic.auroc.mean - x.ownOnly.auroc.mean, 12);
    }
    // The whole-set regimes are untouched by the split.
    expect(details.classificationPerSeed.realOnly.perSeed[0].trainTiles).toBe(24);
    const html = readFileSync(files.html, 'utf8');
    expect(html).toContain("<h3>Does a hospital gain from the federation's synthetic tiles?</h3>");
    expect(html).toContain('<code>--partition site</code>, 2 hospitals');
    expect(html).toContain('site-TCGA-AA+TCGA-CM<br><span class="file">16 tiles: MSIH 8, nonMSIH 8</span>');
    expect(html).toMatch(/A hospital (does not measurably gain|gains) from the synthetic tiles/);
    const lines = hospitalLines(report);
    expect(lines[0]).toBe('per hospital (--partition site, 2 hospitals): own tiles only → own + synthetic');
    const a = h.hospitals[1];
    const pmText = (m: { mean: number; sd: number }) => `${m.mean.toFixed(3)} ± ${m.sd.toFixed(3)}`;
    expect(lines[2]).toContain(`  site-TCGA-G4 (8 tiles): tile AUROC ${pmText(a.ownOnly.auroc)} → ${pmText(a.ownPlusSynthetic.auroc)}`);
    expect(lines[3]).toMatch(/^  mean over hospitals: tile AUROC /);
  });

  it('says when --max-real-per-class makes a seeded split differ from the simulation\'s', async () => {
    const lines: string[] = [];
    const { report } = await evaluate(quick({ out: join(dir, 'out-subset'), maxRealPerClass: 8, hospitals: { partition: { kind: 'iid' }, clients: 2, seed: 42 }, log: (l) => lines.push(l) }));
    expect(report.hospitals!.hospitals.map((h) => h.tiles)).toEqual([8, 8]);
    expect(lines).toContain('  note: --max-real-per-class 8 made this split of a subset, so its hospitals are not the simulation\'s');
    const site: string[] = [];
    await evaluate(quick({ out: join(dir, 'out-subset-site'), maxRealPerClass: 8, hospitals: { partition: { kind: 'site' }, clients: 2, seed: 42 }, log: (l) => site.push(l) }));
    expect(site.filter((l) => l.includes('note: --max-real-per-class'))).toEqual([]);
  });

  it('with --partition site, a training folder without sites is refused before the long steps', async () => {
    const noSites = join(dir, 'train-no-sites');
    writeSyntheticTiles(noSites, { perClass: 4, size: 24, seed: 3 });
    rmSync(join(noSites, 'manifest.csv'));
    const out = join(dir, 'out-no-sites');
    await expect(evaluate(quick({ realTrain: noSites, out, hospitals: { partition: { kind: 'site' }, clients: 2, seed: 42 } }))).rejects.toThrow(
      'cannot split --real-train into hospitals: --partition site needs a manifest.csv with a "site" column; 8 tiles have no site',
    );
    expect(existsSync(join(out, 'report.json'))).toBe(false);
  });

  it('says clearly when the checkpoint is missing', async () => {
    await expect(evaluate(quick({ checkpoint: join(dir, 'nope.fgw') }))).rejects.toThrow(/checkpoint .*nope\.fgw does not exist/);
    writeFileSync(join(dir, 'garbage.fgw'), 'not a checkpoint');
    await expect(evaluate(quick({ checkpoint: join(dir, 'garbage.fgw') }))).rejects.toThrow(/checkpoint .*garbage\.fgw cannot be read/);
  });

  it('says clearly when a class is missing from the test set', async () => {
    const testDir = join(dir, 'test-one-class');
    writeSyntheticTiles(testDir, { perClass: 3, size: 24, classes: ['nonMSIH'] });
    await expect(evaluate(quick({ realTest: testDir }))).rejects.toThrow(/class "MSIH" is missing from the test set \(--real-test .*test-one-class has no MSIH\/ tiles\)/);
  });

  it('says clearly when image sizes do not match', async () => {
    const mixed = join(dir, 'train-mixed');
    writeSyntheticTiles(mixed, { perClass: 3, size: 24 });
    writePng(join(mixed, 'nonMSIH', 'zz-odd.png'), 20);
    await expect(evaluate(quick({ realTrain: mixed }))).rejects.toThrow(/image size mismatch: .*zz-odd\.png is 20×20 but .* is 24×24; all tiles in --real-train must share one size/);
    const small = join(dir, 'test-small');
    writeSyntheticTiles(small, { perClass: 3, size: 12 });
    await expect(evaluate(quick({ realTest: small }))).rejects.toThrow(/image size mismatch: --real-test tiles are 12×12 px but the checkpoint generates 16×16/);
    const otherSize = join(dir, 'test-32');
    writeSyntheticTiles(otherSize, { perClass: 3, size: 32 });
    await expect(evaluate(quick({ realTest: otherSize }))).rejects.toThrow(/image size mismatch: --real-train tiles are 24×24 px but --real-test tiles are 32×32/);
  });
});
