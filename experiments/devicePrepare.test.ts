import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSimulateArgs, type SimulateArgs } from '../cli/simulate.ts';
import { writeSyntheticTiles } from '../node/testing/syntheticTiles.ts';
import { readTileFolder } from '../node/tileFolder.ts';
import { prepareTiles } from './devicePrepare.ts';
import { firstSteps, PRESETS } from './experiment.ts';

describe('the device run (experiments/devicePrepare.ts, experiments/deviceRun.sh)', () => {
  it('prepares the tiles at the run size as PNG with their manifest, and the run reads the same pixels, patients and sites', () => {
    const dir = mkdtempSync(join(tmpdir(), 'device-'));
    writeSyntheticTiles(join(dir, 'train'), { perClass: 5, size: 40, sites: ['TCGA-AA', 'TCGA-CM'] });
    const r = prepareTiles(join(dir, 'train'), 16, join(dir, 'train-16'));
    expect(r.count).toBe(10);
    expect(readdirSync(join(dir, 'train-16', 'MSIH')).every((n) => n.endsWith('.png'))).toBe(true);
    const original = readTileFolder(join(dir, 'train'), { classes: ['MSIH', 'nonMSIH'], size: 16 });
    const prepared = readTileFolder(join(dir, 'train-16'), { classes: ['MSIH', 'nonMSIH'], size: 16 });
    expect(prepared.map((t) => [t.className, t.patient, t.site])).toEqual(original.map((t) => [t.className, t.patient, t.site]));
    expect(new Set(prepared.map((t) => t.site))).toEqual(new Set(['TCGA-AA', 'TCGA-CM']));
    prepared.forEach((t, i) => expect(Buffer.from(t.pixels).equals(Buffer.from(original[i].pixels))).toBe(true));
    expect(readFileSync(join(dir, 'train-16', 'manifest.csv'), 'utf8').split('\n')[0]).toBe('file,label,patient,site');
  });

  it('trains what the paper preset trains first (ACGAN, site, 64 px): the same parsed simulate arguments but for paths, the flat rule and the time budget', () => {
    const dir = mkdtempSync(join(tmpdir(), 'device-'));
    mkdirSync(join(dir, 'carry'));
    mkdirSync(join(dir, 'paper'));
    writeFileSync(join(dir, 'carry', 'recipe.json'), JSON.stringify(PRESETS.paper.recipe)); // as npm run device:prepare writes it
    writeFileSync(join(dir, 'paper', 'recipe.json'), JSON.stringify(PRESETS.paper.recipe));
    // The simulate command of the script, with each ${VAR:-default} at its default.
    const script = readFileSync('experiments/deviceRun.sh', 'utf8').replace(/\\\n\s*/g, ' ');
    const line = script.split('\n').find((l) => l.startsWith('"$NODE" "$d/simulate.mjs"'))!;
    const args = line
      .slice(line.indexOf('"$d/simulate.mjs"') + '"$d/simulate.mjs"'.length, line.indexOf('2>&1'))
      .replace(/\$\{(\w+):-([^}]*)\}/g, (_m, _v, d: string) => d)
      .replace(/\$d\b/g, join(dir, 'carry'))
      .replace(/\$OUT\b/g, join(dir, 'out'))
      .replace(/\$SIZE\b/g, script.match(/^SIZE=\$\{SIZE:-(\d+)\}$/m)![1])
      .trim()
      .split(/\s+/)
      .map((a) => a.replace(/^"|"$/g, ''));
    const device = parseSimulateArgs(args) as SimulateArgs;
    const paperStep = firstSteps({ preset: PRESETS.paper, data: 'd', test: 't', out: join(dir, 'paper'), seed: 42 })[0];
    expect(paperStep.name).toBe('train acgan, site, 64 px');
    const paper = parseSimulateArgs(paperStep.args) as SimulateArgs;
    expect(device.data).toBe(join(dir, 'carry', 'train-64'));
    expect(device.out).toBe(join(dir, 'out', 'run'));
    expect(device.timeBudgetSeconds).toBe(7 * 60);
    const comparable = (a: SimulateArgs) => ({ ...a, data: '', out: '', timeBudgetSeconds: undefined, quality: { ...a.quality, untilFlat: undefined } });
    expect(comparable(device)).toEqual(comparable(paper));
    expect(device.model.imageSize).toBe(64);
    expect(device.model.generator.baseChannels).toBe(128);
    expect(device.model.ema).toEqual({ decay: 0.999 });
  });
});
