import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTinyExtractor } from '../shared/features/tiny.ts';
import type { FeatureExtractor } from '../shared/features/types.ts';
import { writeSyntheticTiles } from '../node/testing/syntheticTiles.ts';
import { parseCompareArgs } from './compare.ts';
import { PRESETS, pairConfig, type ComparePreset } from './comparePresets.ts';
import { runComparison, type ComparisonResult } from './comparison.ts';
import { balancedSubset } from '../cli/subset.ts';
import { noiseVerdict, RESULTS_HEADER, renderComparison, upsertSection, type RunDescription } from './resultsTable.ts';
import { readTileFolder } from '../node/tileFolder.ts';

const run = promisify(execFile);
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedgan-compare-'));
  writeSyntheticTiles(join(dir, 'train'), { perClass: 8, size: 20, seed: 3 });
  writeSyntheticTiles(join(dir, 'test'), { perClass: 4, size: 20, seed: 9 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A 16 px preset small enough for a test. */
const TINY: ComparePreset = {
  model: { imageSize: 16, latentDim: 8, batchSize: 8, nCritic: 1, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 } },
  discriminators: {
    vit: { patchSize: 4, embedDim: 16, depth: 1, heads: 2 },
    swin: { patchSize: 4, embedDim: 16, depth: 2, heads: 2, windowSize: 2 },
  },
  rounds: 1,
  localSteps: 1,
  clients: 2,
  perClass: 6,
  realPerClass: 4,
};

/** A tiny extractor that counts the tiles it is asked for, call by call. */
function counting(inner: FeatureExtractor): FeatureExtractor & { calls: number[] } {
  const calls: number[] = [];
  return {
    name: inner.name,
    description: inner.description,
    dim: inner.dim,
    calls,
    extract: (tiles, size, opts) => {
      calls.push(tiles.length);
      return inner.extract(tiles, size, opts);
    },
    dispose: () => inner.dispose(),
  };
}

describe('runComparison', () => {
  it('trains every pair, scores it, and the table has the shape of Table 2', async () => {
    const train = readTileFolder(join(dir, 'train'), { classes: ['MSIH', 'nonMSIH'], size: 16 });
    const test = readTileFolder(join(dir, 'test'), { classes: ['MSIH', 'nonMSIH'], size: 16 });
    const partials: number[] = [];
    const clfExtractor = counting(createTinyExtractor(16, 77));
    const result = await runComparison(train, test, {
      preset: TINY,
      gans: ['acgan', 'wgan-gp'],
      discriminators: ['cnn', 'swin'],
      out: join(dir, 'runs'),
      seed: 5,
      extractor: createTinyExtractor(),
      classifier: { extractor: clfExtractor, positive: 0, seeds: [1, 2] },
      kidSubsets: 10,
      onPair: (r) => partials.push(r.pairs.length),
    });
    expect(partials).toEqual([1, 2, 3, 4]);
    expect(result.trainTiles).toBe(16);
    expect(result.referenceTiles).toBe(8);
    expect(result.testTiles).toBe(8);
    expect(Number.isFinite(result.floor.fid)).toBe(true);
    expect(result.pairs.map((p) => `${p.gan}/${p.discriminator}`)).toEqual(['acgan/cnn', 'acgan/swin', 'wgan-gp/cnn', 'wgan-gp/swin']);
    for (const p of result.pairs) {
      expect(p.status, p.error).toBe('ok');
      expect(p.fid).toBeGreaterThan(0);
      expect(Number.isFinite(p.kid!.mean)).toBe(true);
      expect(p.dParams).toBeGreaterThan(0);
      expect(p.gParams).toBeGreaterThan(0);
      for (const f of ['summary.json', 'samples.png', 'checkpoint.fgw', 'metrics.json']) expect(existsSync(join(p.dir, f)), f).toBe(true);
    }
    // The generator is the same for every discriminator; the discriminators differ.
    expect(new Set(result.pairs.map((p) => p.gParams)).size).toBe(1);
    expect(new Set(result.pairs.filter((p) => p.gan === 'acgan').map((p) => p.dParams)).size).toBe(2);

    const md = renderComparison(result, runDescription());
    const fidTable = md.split('\n').filter((l) => l.startsWith('|')).slice(0, 4);
    expect(fidTable[0]).toBe('| GAN \\ discriminator | CNN | Swin |');
    expect(fidTable[2]).toMatch(/^\| ACGAN \| [\d.*]+ \| [\d.*]+ \|$/);
    expect(fidTable[3]).toMatch(/^\| WGAN-GP \| /);
    // exactly one best value per row
    expect(fidTable[2].match(/\*\*/g)).toHaveLength(2);
    const best = Math.min(...result.pairs.filter((p) => p.gan === 'acgan').map((p) => p.fid!));
    expect(fidTable[2]).toContain(`**${best.toFixed(2)}**`);
    expect(md).toContain(`score **${result.floor.fid.toFixed(2)}**`);

    // Downstream classification: real features once (16 training + 8 test tiles), then 12 synthetic tiles per pair.
    expect(clfExtractor.calls).toEqual([16, 8, 12, 12, 12, 12]);
    const c = result.classifier!;
    expect(c).toMatchObject({ positiveClass: 'MSIH', seeds: [1, 2], realTrainTiles: 16, testTiles: 8, testPositiveTiles: 4, features: { name: 'tiny', dim: 16 } });
    const inUnit = (m: { mean: number; sd: number }) => m.mean >= 0 && m.mean <= 1 && m.sd >= 0;
    expect(inUnit(c.realOnly.f1), JSON.stringify(c.realOnly.f1)).toBe(true);
    // the test folder's manifest.csv names patients: patient-level metrics too
    expect(inUnit(c.realOnly.patientLevel!.f1)).toBe(true);
    for (const p of result.pairs) {
      expect(Object.keys(p.classification!)).toEqual(['realPlusSynthetic', 'syntheticOnly']);
      expect(Object.keys(p.classification!.realPlusSynthetic)).toEqual(['accuracy', 'f1', 'balancedAccuracy', 'auroc', 'patientLevel']);
      expect(inUnit(p.classification!.realPlusSynthetic.f1) && inUnit(p.classification!.syntheticOnly.f1)).toBe(true);
      expect(p.classification!.syntheticOnly.patientLevel).toBeDefined();
      const saved = JSON.parse(readFileSync(join(p.dir, 'metrics.json'), 'utf8')) as typeof p;
      expect(saved.classification).toEqual(p.classification);
    }
    const lines = md.split('\n');
    const f1At = lines.findIndex((l) => l.startsWith('**F1 (MSIH) ↑ of a linear head on tiny features, trained on real + synthetic**'));
    expect(f1At).toBeGreaterThan(0);
    expect(lines[f1At]).toContain(`the same head scores **${c.realOnly.f1.mean.toFixed(3)} ± ${c.realOnly.f1.sd.toFixed(3)}**: the baseline`);
    expect(lines[f1At]).toContain('16 real training tiles');
    expect(lines[f1At]).toContain('would score 0.667'); // 2·4 / (4 + 8)
    const f1Table = lines.slice(f1At + 2, f1At + 6);
    expect(f1Table[0]).toBe('| GAN \\ discriminator | CNN | Swin |');
    // higher is better: the highest F1 of a row is in bold
    const row = (gan: string, pick: (p: (typeof result.pairs)[number]) => { mean: number; sd: number }) => {
      const ms = result.pairs.filter((p) => p.gan === gan).map(pick);
      const best = new Set(ms.map((m) => m.mean)).size > 1 ? Math.max(...ms.map((m) => m.mean)) : undefined;
      return ms.map((m) => (m.mean === best ? `**${m.mean.toFixed(3)} ± ${m.sd.toFixed(3)}**` : `${m.mean.toFixed(3)} ± ${m.sd.toFixed(3)}`)).join(' | ');
    };
    expect(f1Table[2]).toBe(`| ACGAN | ${row('acgan', (p) => p.classification!.realPlusSynthetic.f1)} |`);
    expect(f1Table[3]).toBe(`| WGAN-GP | ${row('wgan-gp', (p) => p.classification!.realPlusSynthetic.f1)} |`);
    expect(md).toMatch(/_Against the real-only baseline \(by more than the larger of the two seed sd's\): \d+ of 4 pairs better, \d+ worse/);
    const synthAt = lines.findIndex((l) => l.startsWith('**F1 (MSIH) ↑, trained on synthetic only** (6 tiles per class'));
    expect(synthAt).toBeGreaterThan(f1At);
    expect(lines[synthAt + 5]).toBe(`| WGAN-GP | ${row('wgan-gp', (p) => p.classification!.syntheticOnly.f1)} |`);

    // A row whose values are all equal has no best value to mark.
    const tied = renderComparison({ ...result, pairs: result.pairs.map((p) => ({ ...p, fid: 1.5 })) }, runDescription());
    expect(tied).toContain('| ACGAN | 1.50 | 1.50 |');

    // Skipped: no classification fields, no F1 tables.
    const { classifier: _, ...withoutClf } = result;
    const plain = renderComparison({ ...withoutClf, pairs: result.pairs.map(({ classification: __, ...p }) => p) }, runDescription());
    expect(plain).not.toContain('F1 (');
  });

  it('records a pair that fails and goes on', async () => {
    const train = readTileFolder(join(dir, 'train'), { classes: ['MSIH', 'nonMSIH'], size: 16 });
    const result = await runComparison(train, train, {
      // more hospitals than tiles: the simulation refuses
      preset: { ...TINY, clients: 40 },
      gans: ['cgan'],
      discriminators: ['cnn', 'resnet'],
      out: join(dir, 'runs-fail'),
      seed: 5,
      extractor: createTinyExtractor(),
      classifier: { extractor: createTinyExtractor(16, 77), positive: 0, seeds: [1] },
      kidSubsets: 5,
    });
    expect(result.pairs.map((p) => p.status)).toEqual(['failed', 'failed']);
    expect(result.pairs[0].error).toMatch(/cannot split 16 tiles among 40 hospitals/);
    expect(result.pairs[0].classification).toBeUndefined();
    const md = renderComparison(result, runDescription());
    // FID, KID, F1 real + synthetic, F1 synthetic only
    expect(md.match(/\| CGAN \| failed \| failed \|/g)).toHaveLength(4);
    expect(md).toContain('the baseline.');
    expect(md).not.toMatch(/pairs better/); // no pair was scored
  });
});

function runDescription(): RunDescription {
  return {
    preset: 'tiny',
    hardware: 'test machine',
    backend: 'cpu',
    command: 'npm run compare',
    date: '2026-01-01',
    totalSeconds: 60,
    settings: { imageSize: 16, clients: 2, rounds: 1, localSteps: 1, batchSize: 8, perClass: 6, seed: 5 },
  };
}

describe('balancedSubset', () => {
  it('takes classes in turn, seeded, and everything when asked for more', () => {
    const tiles = [...Array.from({ length: 10 }, (_, i) => ({ label: 0, i })), ...Array.from({ length: 3 }, (_, i) => ({ label: 1, i }))];
    const s = balancedSubset(tiles, 6, 1);
    expect(s.filter((t) => t.label === 1)).toHaveLength(3);
    expect(s).toHaveLength(6);
    expect(balancedSubset(tiles, 6, 1)).toEqual(s);
    expect(balancedSubset(tiles, 6, 2)).not.toEqual(s);
    expect(balancedSubset(tiles, 100, 1)).toHaveLength(13);
  });
});

describe('noiseVerdict', () => {
  const pair = (gan: 'acgan' | 'cgan', discriminator: 'cnn' | 'vit', mean: number, std: number) =>
    ({ gan, discriminator, status: 'ok', kid: { mean, std }, dParams: 1, gParams: 1, trainSeconds: 0, evalSeconds: 0, trainCpuSeconds: 0, evalCpuSeconds: 0, dir: '' }) as const;
  const result = (pairs: ReturnType<typeof pair>[]) => ({ pairs: [...pairs] }) as unknown as ComparisonResult;
  it('says when no row separates its discriminators by more than KID’s spread', () => {
    expect(noiseVerdict(result([pair('acgan', 'cnn', 0.76, 0.1), pair('acgan', 'vit', 0.74, 0.1)]), ['acgan'])).toMatch(/does not rank them/);
    expect(noiseVerdict(result([pair('acgan', 'cnn', 0.9, 0.1), pair('acgan', 'vit', 0.5, 0.1), pair('cgan', 'cnn', 0.5, 0.1), pair('cgan', 'vit', 0.52, 0.1)]), ['acgan', 'cgan'])).toMatch(/In 1 of 2 GAN types/);
    expect(noiseVerdict(result([pair('acgan', 'cnn', 0.76, 0.1)]), ['acgan'])).toBeUndefined();
  });
});

describe('upsertSection', () => {
  it('adds a section per preset and replaces only that preset on a rerun', () => {
    let doc = upsertSection(undefined, 'small', 'small v1\n');
    expect(doc.startsWith(RESULTS_HEADER)).toBe(true);
    doc = upsertSection(doc, 'full', 'full v1\n');
    doc = upsertSection(doc, 'small', 'small v2\n');
    expect(doc).toContain('<!-- compare:small -->\nsmall v2\n<!-- /compare:small -->');
    expect(doc).toContain('<!-- compare:full -->\nfull v1\n<!-- /compare:full -->');
    expect(doc).not.toContain('small v1');
    expect(doc.indexOf('compare:small')).toBeLessThan(doc.indexOf('compare:full'));
  });
});

describe('npm run compare', () => {
  it('refuses bad flags with a message naming them', () => {
    expect(() => parseCompareArgs(['--preset', 'huge'])).toThrow(/--preset must be small, medium or full, got "huge"/);
    expect(() => parseCompareArgs(['--gans', 'acgan,dcgan'])).toThrow(/--gans takes a comma-separated list from acgan, cgan, wgan-gp; got "acgan,dcgan"/);
    expect(() => parseCompareArgs(['--discriminators', ''])).toThrow(/--discriminators takes/);
    expect(() => parseCompareArgs(['--rounds', '0'])).toThrow(/--rounds must be an integer ≥ 1, got "0"/);
    expect(() => parseCompareArgs(['--features', 'vgg'])).toThrow(/--features must be inception or tiny/);
    expect(() => parseCompareArgs(['--feature-engine', 'tpu'])).toThrow('--feature-engine must be one of auto, onnx, wasm, got "tpu"');
    expect(() => parseCompareArgs(['--bogus'])).toThrow(/bogus/);
    const a = parseCompareArgs(['--gans', 'cgan', '--discriminators', 'swin,vit', '--rounds', '3']);
    expect(a).not.toBe('help');
    if (a !== 'help') {
      expect(a.gans).toEqual(['cgan']);
      expect(a.discriminators).toEqual(['swin', 'vit']);
      expect(a.preset.rounds).toBe(3);
      expect(a.out).toBe(join('out', 'compare-small'));
      expect(a.f1).toBe(true);
      expect(a.featureEngine).toBe('auto');
    }
    const wasm = parseCompareArgs(['--feature-engine', 'wasm']);
    expect(wasm !== 'help' && wasm.featureEngine).toBe('wasm');
    const skip = parseCompareArgs(['--no-f1']);
    expect(skip !== 'help' && skip.f1).toBe(false);
  });

  it('has a medium preset that trains more than small and scores 100–200 tiles per class', () => {
    const steps = (p: ComparePreset) => {
      const batch = pairConfig(p, 'acgan', 'cnn', 1).batchSize;
      return p.rounds * p.localSteps * p.clients;
    };
    expect(steps(PRESETS.small)).toBe(48);
    expect(steps(PRESETS.medium)).toBe(140);
    const a = parseCompareArgs(['--preset', 'medium']); // validates all 12 pairs' configs
    expect(a !== 'help' && a.out).toBe(join('out', 'compare-medium'));
    expect(pairConfig(PRESETS.medium, 'wgan-gp', 'swin', 1).imageSize).toBe(32);
    expect(PRESETS.medium.perClass).toBeGreaterThanOrEqual(100);
    expect(PRESETS.medium.realPerClass).toBeGreaterThanOrEqual(100);
  });

  it('runs end to end from the command line and writes the results section', async () => {
    const results = join(dir, 'results.md');
    writeFileSync(results, upsertSection(undefined, 'full', 'kept\n'));
    const args = ['--import', 'tsx', 'experiments/compare.ts', '--data', join(dir, 'train'), '--test', join(dir, 'test'), '--out', join(dir, 'cli-out'), '--results', results,
      '--gans', 'cgan', '--discriminators', 'vit', '--rounds', '1', '--clients', '1', '--per-class', '4', '--real-per-class', '4', '--features', 'tiny', '--hardware', 'the test machine'];
    const r = await run(process.execPath, args, { cwd: process.cwd(), env: { ...process.env, DAWN_NODE: '' } });
    expect(r.stderr).not.toMatch(/error:/);
    const doc = readFileSync(results, 'utf8');
    expect(doc).toContain('<!-- compare:full -->\nkept\n');
    expect(doc).toMatch(/## Preset `small`: 32 px on the test machine\n/);
    expect(doc).toMatch(/\| CGAN \| [\d.]+ \|/);
    const json = JSON.parse(readFileSync(join(dir, 'cli-out', 'compare.json'), 'utf8')) as { result: ComparisonResult };
    expect(json.result.pairs).toHaveLength(1);
    expect(json.result.pairs[0].status).toBe('ok');
    // F1 on by default (with --features tiny, on a second tiny projection)
    expect(json.result.classifier?.features.name).toBe('tiny');
    expect(json.result.classifier?.realTrainTiles).toBe(16);
    expect(json.result.pairs[0].classification?.realPlusSynthetic.f1.mean).toBeGreaterThanOrEqual(0);
    expect(doc).toMatch(/\*\*F1 \(MSIH\) ↑ of a linear head on tiny features, trained on real \+ synthetic\*\*/);
    expect(doc).toMatch(/\| CGAN \| [\d.]+ ± [\d.]+ \|/);
  });
});
