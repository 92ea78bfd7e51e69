import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSimulateArgs, type SimulateArgs } from '../cli/simulate.ts';
import { writeSyntheticTiles } from '../node/testing/syntheticTiles.ts';
import { readTileFolder } from '../node/tileFolder.ts';
import { copyResumeRun, prepareTiles } from './devicePrepare.ts';
import { runSimulation } from '../cli/simulation.ts';
import { tinyConfig } from '../shared/gan/testConfig.ts';
import { createTinyExtractor } from '../shared/features/tiny.ts';
import { firstSteps, PRESETS } from './experiment.ts';

/** A stand-in bundle that records its arguments, one JSON line a call, in calls.jsonl. */
const RECORD_ARGS = "import { appendFileSync } from 'node:fs'; appendFileSync('calls.jsonl', JSON.stringify(process.argv.slice(2)) + '\\n');";

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
      .replace('${extra[@]+"${extra[@]}"}', '') // a first call: nothing carried in $d/resume
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

  it('carries what a second call needs to go on (--resume): the folder it copies is enough for simulate --resume, under FedBN too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'device-resume-'));
    writeSyntheticTiles(join(dir, 'train'), { perClass: 6, size: 16 });
    const tiles = readTileFolder(join(dir, 'train'), { classes: ['MSIH', 'nonMSIH'], size: 16 });
    const options = (out: string, over: Partial<Parameters<typeof runSimulation>[1]> = {}) => ({
      clients: 2, rounds: 3, localSteps: 1, fraction: 1, partition: { kind: 'iid' as const }, model: tinyConfig('acgan', { batchSize: 4 }),
      batchNorm: 'local' as const, aggregator: { type: 'fedavg' as const }, out: join(dir, out), samplesPerClass: 1,
      quality: { everyRounds: 1, perClass: 3, seed: 5, subsets: 4, extractor: createTinyExtractor(32) }, ...over,
    });
    // the first call: its run/ folder comes back; the second call's carry holds what copyResumeRun takes from it
    await runSimulation(tiles, options('first/run', { rounds: 1 }));
    writeFileSync(join(dir, 'first', 'run', 'samples.png'), 'not carried');
    const bytes = copyResumeRun(join(dir, 'first', 'run'), join(dir, 'carry', 'resume'));
    // one round, probed: its best round is its last, so checkpoint.fgw stands in for checkpoint-best.fgw
    expect(readdirSync(join(dir, 'carry', 'resume')).sort()).toEqual(['checkpoint.fgw', 'local-weights', 'summary.json']);
    expect(readdirSync(join(dir, 'carry', 'resume', 'local-weights')).sort()).toEqual(['1.fgw', '2.fgw']);
    expect(bytes).toBeGreaterThan(0);
    // deviceRun.sh copies it into $OUT/run and passes --resume
    cpSync(join(dir, 'carry', 'resume'), join(dir, 'second', 'run'), { recursive: true });
    const resumed = await runSimulation(tiles, options('second/run', { resume: true }));
    const whole = await runSimulation(tiles, options('whole'));
    expect(resumed.resumed?.map((r) => r.fromRound)).toEqual([1]);
    expect(resumed.rounds.map((r) => [r.round, r.dLoss, r.gLoss])).toEqual(whole.rounds.map((r) => [r.round, r.dLoss, r.gLoss]));
    expect(resumed.quality?.curve.map((p) => p.kid)).toEqual(whole.quality?.curve.map((p) => p.kid));
    expect(resumed.quality?.best).toEqual(whole.quality?.best);
    // a run whose best round is not its last carries both checkpoints
    writeFileSync(join(dir, 'whole', 'summary.json'), JSON.stringify({ ...whole, quality: { ...whole.quality, best: { round: 2, kid: 0.1 } } }));
    copyResumeRun(join(dir, 'whole'), join(dir, 'carry2'));
    expect(readdirSync(join(dir, 'carry2')).sort()).toEqual(['checkpoint-best.fgw', 'checkpoint.fgw', 'local-weights', 'summary.json']);
    expect(() => copyResumeRun(join(dir, 'nothing'), join(dir, 'x'))).toThrow(`--resume ${join(dir, 'nothing')}: no summary.json there (the run/ folder of an earlier device call holds it)`);
  });

  it('deviceRun.sh goes on from a carried run: it copies resume/ into $OUT/run and passes --resume (a stand-in simulate.mjs records both)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'device-script-'));
    const carry = join(dir, '.device-run');
    mkdirSync(join(carry, 'resume', 'local-weights'), { recursive: true });
    writeFileSync(join(carry, 'resume', 'summary.json'), '{}');
    writeFileSync(join(carry, 'resume', 'checkpoint.fgw'), 'weights');
    writeFileSync(join(carry, 'resume', 'local-weights', '1.fgw'), 'local');
    // The stand-in writes its arguments and the files it found in --out.
    writeFileSync(
      join(carry, 'simulate.mjs'),
      "import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'; const a = process.argv.slice(2); const out = a[a.indexOf('--out') + 1];" +
        " mkdirSync(out, { recursive: true }); const files = readdirSync(out, { recursive: true }).sort();" +
        " writeFileSync(out + '/seen.json', JSON.stringify({ args: a, files }));",
    );
    const env = { ...process.env, NO_UNPACK: '1', NODE: process.execPath, DAWN_NODE: '/nonexistent/dawn.node', OUT: join(dir, 'out'), LD_LIBRARY_PATH: '' };
    const run = () => execFileSync('bash', [resolve('experiments/deviceRun.sh')], { cwd: dir, env, stdio: 'pipe' }).toString();
    expect(run()).toContain('=== resuming the run carried in .device-run/resume');
    const seen = JSON.parse(readFileSync(join(dir, 'out', 'run', 'seen.json'), 'utf8')) as { args: string[]; files: string[] };
    expect(seen.args.at(-1)).toBe('--resume');
    expect(seen.files).toEqual(['checkpoint.fgw', 'local-weights', 'local-weights/1.fgw', 'summary.json']);
    // a first call (nothing carried): no --resume
    rmSync(join(carry, 'resume'), { recursive: true });
    rmSync(join(dir, 'out'), { recursive: true });
    expect(run()).not.toContain('resuming');
    const first = JSON.parse(readFileSync(join(dir, 'out', 'run', 'seen.json'), 'utf8')) as { args: string[]; files: string[] };
    expect(first.args).not.toContain('--resume');
    expect(first.files).toEqual([]);
  });

  it('deviceRun.sh benchmarks first when gan-bench.mjs is carried: its variants reach the bench as valid JSON, and DEADLINE_S sizes the training budget', () => {
    const dir = mkdtempSync(join(tmpdir(), 'device-bench-'));
    const carry = join(dir, '.device-run');
    mkdirSync(carry);
    writeFileSync(join(carry, 'simulate.mjs'), RECORD_ARGS);
    writeFileSync(join(carry, 'gan-bench.mjs'), RECORD_ARGS);
    const env = { ...process.env, NO_UNPACK: '1', NODE: process.execPath, DAWN_NODE: '/nonexistent/dawn.node', OUT: join(dir, 'out'), LD_LIBRARY_PATH: '', DEADLINE_S: '300', RESERVE_S: '60' };
    const log = execFileSync('bash', [resolve('experiments/deviceRun.sh')], { cwd: dir, env, stdio: 'pipe' }).toString();
    expect(log).toContain('=== bench 2: the WebGPU step');
    const calls = readFileSync(join(dir, 'calls.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
    expect(calls).toHaveLength(3); // speed, profile, training
    const value = (a: string[], flag: string) => a[a.indexOf(flag) + 1];
    const [speed, profile, training] = calls;
    expect(value(speed, '--cases')).toBe('acgan:64:64,wgan-gp:64:64,acgan:64:256,acgan:128:64');
    // Before the fix the "}" of {"tune":true} ended ${BENCH_VARIANTS:-…}: the bench got 'tuned={"tune":true' and refused it.
    expect(value(speed, '--variants')).toBe('fast;tuned={"tune":true};no-conv-gemm={"convGemm":false}');
    for (const v of value(speed, '--variants').split(';').filter((v) => v.includes('='))) expect(() => JSON.parse(v.slice(v.indexOf('=') + 1))).not.toThrow();
    expect(profile).toContain('--profile');
    expect(value(profile, '--variants')).toBe('fast;no-conv-gemm={"convGemm":false}');
    const minutes = Number(value(training, '--time-budget-minutes'));
    expect(minutes).toBeGreaterThan(3.8); // (300 s − seconds spent − 60 s) / 60
    expect(minutes).toBeLessThanOrEqual(4);
  });

  it('bench/ganGpuRun.sh hands the bench its default variants as valid JSON (a "}" inside ${VARIANTS:-…} ended the default early)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpu-bench-'));
    mkdirSync(join(dir, '.gpu-carry'));
    writeFileSync(join(dir, '.gpu-carry', 'on-device.sh'), 'exit 0\n');
    writeFileSync(join(dir, '.gpu-carry', 'gan-bench.mjs'), RECORD_ARGS);
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'node'), `#!/bin/sh\nexec "${process.execPath}" "$@"\n`, { mode: 0o755 });
    const env = { ...process.env, OUT: join(dir, 'out'), PATH: `${bin}:${process.env.PATH}`, QUICK: '1' };
    execFileSync('bash', [resolve('bench/ganGpuRun.sh')], { cwd: dir, env, stdio: 'pipe' });
    const calls = readFileSync(join(dir, 'calls.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
    const variants = calls.map((a) => a[a.indexOf('--variants') + 1]);
    expect(variants[0]).toBe('stock;fast;tuned={"tune":true};no-conv-gemm={"convGemm":false}');
    expect(variants[1]).toBe('fast;no-conv-gemm={"convGemm":false}');
  });
});
