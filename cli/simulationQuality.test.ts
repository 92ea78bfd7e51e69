/**
 * Quality tracked during the in-process simulation: the curve in summary.json, checkpoint-best.fgw, and the
 * early stop once the curve flattens. Tiny model, tiny extractor (or a scripted one), seconds.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../shared/checkpoint.ts';
import { referenceIndices } from '../shared/fed/hospitalProbe.ts';
import { createTinyExtractor } from '../shared/features/tiny.ts';
import { createGan } from '../shared/gan/gan.ts';
import { recalibrateGeneratorBatchNorm } from '../shared/gan/recalibrateBatchNorm.ts';
import { tinyConfig } from '../shared/gan/testConfig.ts';
import { probeQuality, probeReference } from '../shared/metrics/qualityProbe.ts';
import { CliError } from '../node/cliError.ts';
import { scripted } from './testing/scriptedExtractor.ts';
import { simulationTestbed } from './testing/simulationTestbed.ts';
import { parseSimulateArgs } from './simulate.ts';
import { runSimulation } from './simulation.ts';
import { emaWarmupRound } from './simulationQuality.ts';

const bed = simulationTestbed('fedgan-sim-quality-');
const { model, options } = bed;

describe('simulation: quality tracked during training', () => {
  it('records the curve in summary.json and writes checkpoint-best.fgw, the global model of the best round', async () => {
    const extractor = createTinyExtractor(64);
    const seen: number[] = [];
    const summary = await runSimulation(bed.tiles, options('curve', { rounds: 3, quality: { everyRounds: 1, perClass: 4, seed: 9, subsets: 5, extractor }, onQuality: (p) => seen.push(p.point.round) }));
    const q = summary.quality!;
    expect(q.curve.map((p) => p.round)).toEqual([1, 2, 3]);
    expect(seen).toEqual([1, 2, 3]);
    expect(q).toMatchObject({ features: 'tiny', everyRounds: 1, perClass: 4, seed: 9, reference: 8, stoppedEarly: null, untilFlat: null });
    const best = q.curve.reduce((a, b) => (b.kid < a.kid ? b : a));
    expect(q.best).toEqual({ round: best.round, kid: best.kid });
    const onDisk = JSON.parse(readFileSync(join(bed.dir, 'curve', 'summary.json'), 'utf8'));
    expect(onDisk.quality.curve.map((p: { kid: number }) => p.kid)).toEqual(q.curve.map((p) => p.kid));
    expect(onDisk.config.quality).toEqual({ everyRounds: 1, perClass: 4, seed: 9, subsets: 5, extractor: 'tiny' });

    // checkpoint-best.fgw decodes, holds the best round, and equals the global model of a run stopped there.
    expect(q.bestCheckpoint).toBe(join(bed.dir, 'curve', 'checkpoint-best.fgw'));
    const ck = decodeCheckpoint(new Uint8Array(readFileSync(q.bestCheckpoint!)));
    expect(ck.meta).toMatchObject({ round: best.round, source: 'simulation', batchNorm: 'average' });
    const shorter = await runSimulation(bed.tiles, options('shorter', { rounds: best.round }));
    const reference = decodeCheckpoint(new Uint8Array(readFileSync(shorter.checkpoint))).weights;
    expect(ck.weights.tensors.map((t) => [t.name, [...t.data]])).toEqual(reference.tensors.map((t) => [t.name, [...t.data]]));
    expect(decodeCheckpoint(new Uint8Array(readFileSync(summary.checkpoint))).meta.round).toBe(3);

    // The recorded KID is the probe of that model against the fixed reference, computed independently.
    const gan = createGan(model);
    gan.setWeights(ck.weights);
    const idx = referenceIndices(bed.tiles.map((t) => t.label), 2, 4, 9);
    const ref = await probeReference(extractor, idx.map((i) => bed.tiles[i].pixels), 16);
    expect((await probeQuality(gan, ref, extractor, { perClass: 4, seed: 9, subsets: 5 })).kid).toBeCloseTo(best.kid, 12);
    gan.dispose();
  });

  it('under FedBN probes the global model with data-free recalibrated batch norm', async () => {
    const extractor = createTinyExtractor(64);
    const summary = await runSimulation(bed.tiles, options('fedbn', { rounds: 2, batchNorm: 'local', quality: { everyRounds: 2, perClass: 4, extractor } }));
    expect(summary.quality!.curve.map((p) => p.round)).toEqual([2]);
    const ck = decodeCheckpoint(new Uint8Array(readFileSync(summary.checkpoint)));
    const idx = referenceIndices(bed.tiles.map((t) => t.label), 2, 4, 4242);
    const ref = await probeReference(extractor, idx.map((i) => bed.tiles[i].pixels), 16);
    const gan = createGan(model);
    gan.setWeights(ck.weights);
    const raw = (await probeQuality(gan, ref, extractor, { perClass: 4 })).kid;
    recalibrateGeneratorBatchNorm(gan);
    const recalibrated = (await probeQuality(gan, ref, extractor, { perClass: 4 })).kid;
    gan.dispose();
    expect(summary.quality!.curve[0].kid).toBeCloseTo(recalibrated, 12);
    expect(Math.abs(recalibrated - raw)).toBeGreaterThan(1e-9);
  });

  it('stops early once the curve flattens (untilFlat), rounds being the cap; the best checkpoint is the best probe', async () => {
    // KIDs fall for three probes, then stay: with patience 2 the 5th probe finds the curve flat.
    const summary = await runSimulation(
      bed.tiles,
      options('flat', { rounds: 10, quality: { everyRounds: 1, perClass: 4, extractor: scripted([3, 2, 1, 1, 1, 1]), untilFlat: { patience: 2, minImprovement: 0.05 } } }),
    );
    const q = summary.quality!;
    const kids = q.curve.map((p) => p.kid);
    expect(kids[0]).toBeGreaterThan(kids[1]);
    expect(kids[1]).toBeGreaterThan(kids[2]);
    expect(kids[3]).toBe(kids[2]);
    expect(q.curve.map((p) => p.round)).toEqual([1, 2, 3, 4, 5]);
    expect(summary.rounds).toHaveLength(5);
    expect(q.stoppedEarly).toEqual({ round: 5, rounds: 10 });
    expect(q.best).toEqual({ round: 3, kid: kids[2] });
    expect(decodeCheckpoint(new Uint8Array(readFileSync(summary.checkpoint))).meta.round).toBe(5);
    expect(decodeCheckpoint(new Uint8Array(readFileSync(q.bestCheckpoint!))).meta.round).toBe(3);

    // Still improving: no early stop, the cap holds.
    const going = await runSimulation(
      bed.tiles,
      options('going', { rounds: 4, quality: { everyRounds: 1, perClass: 4, extractor: scripted([4, 3, 2, 1]), untilFlat: { patience: 2, minImprovement: 0.05 } } }),
    );
    expect(going.quality!.stoppedEarly).toBeNull();
    expect(going.rounds).toHaveLength(4);
    expect(going.quality!.best!.round).toBe(4);
  });

  it('emaWarmupRound: the round at which the EMA holds < e^-3 of the initial generator, 3/(1 − decay) steps', () => {
    expect(emaWarmupRound(0.999, 25)).toBe(120); // 3,000 steps
    expect(emaWarmupRound(0.995, 25)).toBe(24); // 600 steps
    expect(emaWarmupRound(0.999, 200)).toBe(15);
    expect(emaWarmupRound(0.9, 7)).toBe(5); // 30 steps → ceil(30 / 7)
    expect(emaWarmupRound(null, 25)).toBe(0);
    expect(0.999 ** 3000).toBeLessThan(Math.exp(-3) + 1e-4);
  });

  it('untilFlat waits for the generator EMA to warm up before it may stop the run', async () => {
    // EMA 0.9: 30 steps of warm-up; 1 local step a round → judged from round 30, past this 6-round run.
    const ema = tinyConfig('acgan', { batchSize: 4, ema: { decay: 0.9 } });
    const untilFlat = { patience: 2, minImprovement: 0.05 };
    const run = await runSimulation(bed.tiles, options('warm', { model: ema, rounds: 6, quality: { everyRounds: 1, perClass: 4, extractor: scripted([1, 2, 3, 3, 3, 3]), untilFlat } }));
    expect(run.rounds).toHaveLength(6);
    expect(run.quality!.stoppedEarly).toBeNull();
    expect(run.quality!.untilFlat).toEqual({ patience: 2, minImprovement: 0.05, fromRound: 30 });
    // Told to judge from round 0, the same curve stops at its third probe.
    const early = await runSimulation(
      bed.tiles,
      options('warm0', { model: ema, rounds: 6, quality: { everyRounds: 1, perClass: 4, extractor: scripted([1, 2, 3, 3, 3, 3]), untilFlat: { ...untilFlat, fromRound: 0 } } }),
    );
    expect(early.quality!.stoppedEarly).toEqual({ round: 3, rounds: 6 });
  });

    it('a time budget stops the run after the first round that ends past it, probed there, outputs written', async () => {
    // The clock is an input: each reading is 60 s later than the last (start 0, after round r: 60·r).
    let t = 0;
    const now = () => (t += 60_000) - 60_000;
    const summary = await runSimulation(
      bed.tiles,
      options('budget', { rounds: 10, timeBudgetSeconds: 150, now, quality: { everyRounds: 4, perClass: 4, extractor: createTinyExtractor(16) } }),
    );
    // 60 and 120 s are inside the budget; 180 s after round 3 is past it.
    expect(summary.rounds.map((r) => r.round)).toEqual([1, 2, 3]);
    expect(summary.timeBudget).toEqual({ seconds: 150, stoppedAfterRound: 3, rounds: 10 });
    // Round 3 is not a probe round (every 4) but is probed as the run's last.
    expect(summary.quality!.curve.map((p) => p.round)).toEqual([3]);
    expect(decodeCheckpoint(new Uint8Array(readFileSync(summary.checkpoint))).meta.round).toBe(3);
    expect(decodeCheckpoint(new Uint8Array(readFileSync(summary.quality!.bestCheckpoint!))).meta.round).toBe(3);
    expect(JSON.parse(readFileSync(join(bed.dir, 'budget', 'summary.json'), 'utf8')).timeBudget.stoppedAfterRound).toBe(3);

    // A budget that lasts: every round runs, and the summary says the budget did not stop it.
    t = 0;
    const within = await runSimulation(bed.tiles, options('within', { rounds: 2, timeBudgetSeconds: 1000, now }));
    expect(within.rounds).toHaveLength(2);
    expect(within.timeBudget).toEqual({ seconds: 1000, stoppedAfterRound: null, rounds: 2 });
  });

  it('--time-budget-minutes: minutes to seconds; refused when not positive or with --server', () => {
    const base = ['--data', 'd', '--out', 'o'];
    const args = parseSimulateArgs([...base, '--time-budget-minutes', '1.5']);
    expect(args !== 'help' && args.timeBudgetSeconds).toBe(90);
    const none = parseSimulateArgs(base);
    expect(none !== 'help' && none.timeBudgetSeconds).toBeUndefined();
    for (const bad of ['0', '-2', 'soon']) {
      expect(() => parseSimulateArgs([...base, `--time-budget-minutes=${bad}`])).toThrow(`--time-budget-minutes must be a positive number of minutes, got "${bad}"`);
    }
    expect(() => parseSimulateArgs([...base, '--time-budget-minutes', '5', '--server', 'ws://x/ws', '--tokens', 't.yaml'])).toThrow(
      '--time-budget-minutes applies to a simulation',
    );
  });

  it('off: no probe, no checkpoint-best.fgw, no quality in summary.json', async () => {
    const summary = await runSimulation(bed.tiles, options('off', { rounds: 1 }));
    expect(summary.quality).toBeUndefined();
    expect(existsSync(join(bed.dir, 'off', 'checkpoint-best.fgw'))).toBe(false);
    const zero = await runSimulation(bed.tiles, options('zero', { rounds: 1, quality: { everyRounds: 0, extractor: createTinyExtractor(8) } }));
    expect(zero.quality).toBeUndefined();
  });
});

describe('simulate CLI: quality flags', () => {
  const base = ['--data', 'd', '--out', 'o'];
  it('defaults to every 5 rounds on MobileNetV2, no early stop; flags set each part', () => {
    const a = parseSimulateArgs(base);
    expect(a !== 'help' && a.quality).toEqual({ everyRounds: 5, perClass: 32, features: 'mobilenet-v2' });
    const b = parseSimulateArgs([...base, '--quality-every', '2', '--quality-per-class', '8', '--quality-features', 'tiny', '--until-flat', '--flat-patience', '4', '--flat-min-improvement', '0.1']);
    expect(b !== 'help' && b.quality).toEqual({ everyRounds: 2, perClass: 8, features: 'tiny', untilFlat: { patience: 4, minImprovement: 0.1 } });
    const later = parseSimulateArgs([...base, '--until-flat', '--flat-from-round', '60']);
    expect(later !== 'help' && later.quality.untilFlat).toEqual({ patience: 3, minImprovement: 0.05, fromRound: 60 });
    const off = parseSimulateArgs([...base, '--quality-every', '0']);
    expect(off !== 'help' && off.quality.everyRounds).toBe(0);
  });

  it.each([
    [['--quality-every=-1'], /--quality-every must be an integer ≥ 0, got "-1"/],
    [['--quality-every', '1.5'], /--quality-every must be an integer ≥ 0, got "1.5"/],
    [['--quality-per-class', '1'], /--quality-per-class must be an integer ≥ 2, got "1"/],
    [['--quality-features', 'inception-v3'], /--quality-features must be mobilenet-v2 or tiny, got "inception-v3"/],
    [['--quality-every', '0', '--until-flat'], /--until-flat needs quality tracking/],
    [['--until-flat', '--flat-patience', '0'], /--flat-patience must be an integer ≥ 1, got "0"/],
    [['--until-flat', '--flat-min-improvement', '1'], /--flat-min-improvement must be in \[0, 1\), got "1"/],
    [['--until-flat', '--flat-from-round=-4'], /--flat-from-round must be an integer ≥ 0, got "-4"/],
    [['--flat-from-round', '60'], /--flat-from-round sets when --until-flat starts judging; add --until-flat/],
  ])('refuses %j', (args, message) => {
    expect(() => parseSimulateArgs([...base, ...args])).toThrow(CliError);
    expect(() => parseSimulateArgs([...base, ...args])).toThrow(message);
  });
});
