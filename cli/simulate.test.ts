import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../shared/checkpoint.ts';
import { decodeWeights } from '../shared/codec/weightsCodec.ts';
import { createGan } from '../shared/gan/gan.ts';
import { parseGanConfig } from '../shared/config/ganConfig.ts';
import { writeSyntheticTiles } from '../node/testing/syntheticTiles.ts';
import { parseSimulateArgs } from './simulate.ts';
import { readTileFolder } from '../node/tileFolder.ts';
import { partitionTiles } from './simulation.ts';

const run = promisify(execFile);
let dir: string;

async function simulate(args: string[]) {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'cli/simulate.ts', ...args], { cwd: process.cwd(), env: { ...process.env, DAWN_NODE: '' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedgan-sim-'));
  writeSyntheticTiles(join(dir, 'tiles'), { perClass: 8, size: 20 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('npm run simulate', () => {
  it('trains N hospitals end to end and writes summary.json, samples.png and a checkpoint', async () => {
    const out = join(dir, 'out');
    const r = await simulate(['--data', join(dir, 'tiles'), '--out', out, '--clients', '2', '--rounds', '2', '--local-steps', '2', '--image-size', '16', '--batch-size', '4', '--g-channels', '8', '--d-channels', '4', '--latent-dim', '8', '--gan', 'cgan']);
    expect(r.stderr).not.toMatch(/error:/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/round 2: 2 hospitals, 16 tiles/);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.rounds).toHaveLength(2);
    for (const round of summary.rounds) {
      expect(round.clients.map((c: { id: string }) => c.id).sort()).toEqual(['hospital-1', 'hospital-2']);
      expect(round.clients.reduce((s: number, c: { examples: number }) => s + c.examples, 0)).toBe(16);
      for (const v of [round.dLoss, round.gLoss, ...round.clients.flatMap((c: { dLoss: number; gLoss: number }) => [c.dLoss, c.gLoss])]) expect(Number.isFinite(v)).toBe(true);
      expect(round.seconds).toBeGreaterThan(0);
    }
    expect(summary.config.model.gan).toBe('cgan');
    // a real PNG grid: one row per class, 8 tiles of 16 px with 2 px gaps
    const png = PNG.sync.read(readFileSync(join(out, 'samples.png')));
    expect([png.width, png.height]).toEqual([8 * 16 + 9 * 2, 2 * 16 + 3 * 2]);
    // the checkpoint loads into the model its config describes
    const { weights, meta } = decodeWeights(new Uint8Array(readFileSync(summary.checkpoint)));
    const gan = createGan(parseGanConfig(meta.config));
    expect(() => gan.setWeights(weights)).not.toThrow();
    expect(meta.round).toBe(2);
    // in the one checkpoint format (shared/checkpoint.ts), as the server's
    expect(decodeCheckpoint(new Uint8Array(readFileSync(summary.checkpoint))).meta).toMatchObject({ version: 2, round: 2, batchNorm: 'average', source: 'simulation', config: { gan: 'cgan', imageSize: 16 } });
    gan.dispose();
  });

  it('prints each quality probe as it lands, with the figures summary.json records', async () => {
    const out = join(dir, 'out-quality');
    const r = await simulate(['--data', join(dir, 'tiles'), '--out', out, '--clients', '2', '--rounds', '2', '--local-steps', '1', '--image-size', '16', '--batch-size', '4', '--g-channels', '8', '--d-channels', '4', '--latent-dim', '8', '--quality-every', '1', '--quality-per-class', '2', '--quality-features', 'tiny']);
    expect(r.code).toBe(0);
    const curve = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')).quality.curve as { round: number; kid: number; kidStd: number; diversity: number }[];
    expect(curve.map((p) => p.round)).toEqual([1, 2]);
    const lines = r.stderr.split('\n');
    const probeLines = lines.filter((l) => l.startsWith('quality after round'));
    expect(probeLines.map((l) => l.replace(' (best so far)', ''))).toEqual(
      curve.map((p) => `quality after round ${p.round}: KID ${p.kid.toPrecision(4)} ± ${p.kidStd.toPrecision(2)}, diversity ${p.diversity.toFixed(2)}`),
    );
    expect(probeLines[0]).toMatch(/\(best so far\)$/);
    // during training: each before the bar's next line, the last probe before the bar's closing line
    expect(lines[lines.indexOf(probeLines[0]) + 1]).toMatch(/^training \[.*round 2\/2/);
    expect(lines.indexOf(probeLines[1])).toBeLessThan(lines.length - 1 - [...lines].reverse().findIndex((l) => l.startsWith('training [')));
  });

  it.each([
    [['--data', '/nonexistent/tiles', '--out', '/tmp/x'], /data folder \/nonexistent\/tiles does not exist/],
    [['--data', 'TILES', '--out', '/tmp/x', '--clients', '99'], /cannot split 16 tiles among 99 hospitals/],
    [['--data', 'TILES', '--out', '/tmp/x', '--gan', 'stylegan'], /gan: Invalid option/],
    [['--data', 'TILES', '--out', '/tmp/x', '--image-size', '30'], /imageSize: must be a multiple of 8/],
    [['--data', 'TILES', '--out', '/tmp/x', '--partition', 'noniid:1.5'], /--partition/],
    [['--data', 'TILES', '--out', '/tmp/x', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['--out', '/tmp/x'], /--data DIR is required/],
  ])('refuses bad input with one clear line: %j', async (args, message) => {
    const r = await simulate(args.map((a) => (a === 'TILES' ? join(dir, 'tiles') : a)));
    expect(r.code).toBe(2);
    const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toMatch(message);
  });

  it('names an unreadable image and an unknown label folder', () => {
    const bad = join(dir, 'bad');
    writeSyntheticTiles(bad, { perClass: 2 });
    writeFileSync(join(bad, 'MSIH', 'broken.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0x00, 1, 2, 3]));
    expect(() => readTileFolder(bad, { classes: ['MSIH', 'nonMSIH'], size: 16 })).toThrow(/cannot read image .*broken\.jpg/);
    const unknown = join(dir, 'unknown');
    writeSyntheticTiles(unknown, { perClass: 2 });
    mkdirSync(join(unknown, 'Adenoma'));
    expect(() => readTileFolder(unknown, { classes: ['MSIH', 'nonMSIH'], size: 16 })).toThrow(/label folder "Adenoma" .* not among the configured classes \(MSIH, nonMSIH\)/);
    expect(existsSync(join(unknown, 'MSIH'))).toBe(true);
  });

  it('reads tiles at the requested size with labels, patients and sites from manifest.csv', () => {
    const tiles = readTileFolder(join(dir, 'tiles'), { classes: ['MSIH', 'nonMSIH'], size: 16 });
    expect(tiles).toHaveLength(16);
    expect(tiles.every((t) => t.pixels.length === 16 * 16 * 3)).toBe(true);
    expect(tiles.filter((t) => t.label === 1).every((t) => t.className === 'nonMSIH')).toBe(true);
    expect(new Set(tiles.map((t) => t.site))).toEqual(new Set(['TCGA-AA', 'TCGA-CM']));
    // by site: one hospital per site
    const p = partitionTiles(tiles, { kind: 'site' }, 4, 1);
    expect(p.names).toEqual(['site-TCGA-AA', 'site-TCGA-CM']);
    expect(p.indices.flat().sort((a, b) => a - b)).toEqual([...Array(16).keys()]);
  });

  it('parses flags into a validated config', () => {
    const a = parseSimulateArgs(['--data', 'd', '--out', 'o', '--gan', 'wgan-gp', '--partition', 'noniid:0.7', '--aggregator', 'trimmed-mean:0.2', '--batch-norm', 'local']);
    if (a === 'help') throw new Error('unexpected');
    expect(a.model.gan).toBe('wgan-gp');
    expect(a.model.optimizerD).toEqual({ learningRate: 1e-4, beta1: 0, beta2: 0.9 });
    expect(a.partition).toEqual({ kind: 'noniid', ratio: 0.7 });
    expect(a.aggregator).toEqual({ type: 'trimmed-mean', beta: 0.2 });
    expect(a.batchNorm).toBe('local');
    expect(a.model.imageSize).toBe(32);
    // The federation's defaults, sized in generator steps.
    expect([a.rounds, a.localSteps]).toEqual([100, 200]);
  });

  it('takes --local-steps, names a bad one, and says what replaced --local-epochs', () => {
    const a = parseSimulateArgs(['--data', 'd', '--out', 'o', '--rounds', '3', '--local-steps', '25']);
    if (a === 'help') throw new Error('unexpected');
    expect([a.rounds, a.localSteps]).toEqual([3, 25]);
    expect(() => parseSimulateArgs(['--data', 'd', '--out', 'o', '--local-steps', '0'])).toThrow('--local-steps must be an integer ≥ 1, got "0"');
    expect(() => parseSimulateArgs(['--data', 'd', '--out', 'o', '--local-epochs', '2'])).toThrow(
      '--local-epochs was replaced by --local-steps N: generator steps per hospital per round (default 200)',
    );
    expect(() => parseSimulateArgs(['--data', 'd', '--out', 'o', '--local-epochs=2'])).toThrow(/replaced by --local-steps/);
  });
});
