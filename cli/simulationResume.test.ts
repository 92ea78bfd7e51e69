/**
 * Resuming a simulation (cli/simulationResume.ts): a run stopped by its time budget and resumed equals,
 * to the bit, the same run never stopped; under FedBN too; and a resume that cannot be exact is refused
 * with a message that names why.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../shared/checkpoint.ts';
import { createTinyExtractor } from '../shared/features/tiny.ts';
import type { WeightSet } from '../shared/weights.ts';
import { scripted } from './testing/scriptedExtractor.ts';
import { simulationTestbed } from './testing/simulationTestbed.ts';
import { parseSimulateArgs, type SimulateArgs } from './simulate.ts';
import { runSimulation, type SimulationOptions, type SimulationSummary } from './simulation.ts';
import { localWeightsFile } from './simulationResume.ts';

const bed = simulationTestbed('fedgan-sim-resume-');
const { model } = bed;
/** The testbed's federation for 4 rounds of 2 steps, probed every 2 rounds. */
const options = (out: string, over: Partial<SimulationOptions> = {}): SimulationOptions =>
  bed.options(out, { rounds: 4, localSteps: 2, quality: { everyRounds: 2, perClass: 3, seed: 5, subsets: 4, extractor: createTinyExtractor(32) }, ...over });

/** A clock that moves 0.6 s at each reading after the first: a 1-second budget runs out after round 2. */
function clock(): () => number {
  let t = -600;
  return () => (t += 600);
}

const summaryOf = (out: string) => JSON.parse(readFileSync(join(bed.dir, out, 'summary.json'), 'utf8')) as SimulationSummary;
const weightsOf = (file: string) => decodeCheckpoint(new Uint8Array(readFileSync(file))).weights;
function expectSameWeights(a: WeightSet, b: WeightSet): void {
  expect(b.fingerprint).toBe(a.fingerprint);
  expect(b.tensors.map((t) => t.name)).toEqual(a.tensors.map((t) => t.name));
  const differ = a.tensors.filter((t, i) => !Buffer.from(b.tensors[i].data.buffer, b.tensors[i].data.byteOffset, b.tensors[i].data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))).map((t) => t.name);
  expect(differ).toEqual([]);
}
/** What must not depend on where the run was stopped: the rounds' figures and the quality curve. */
const figures = (s: SimulationSummary) => ({
  rounds: s.rounds.map(({ round, clients, dLoss, gLoss, participants, examplesMedian }) => ({ round, clients, dLoss, gLoss, participants, examplesMedian })),
  curve: s.quality?.curve.map(({ round, kid, kidStd, diversity }) => ({ round, kid, kidStd, diversity })),
  best: s.quality?.best,
});

describe('simulate --resume', () => {
  it.each(['average', 'local'] as const)('stopped by its time budget after round 2 and resumed, a run equals the same run never stopped (batch norm %s)', async (batchNorm) => {
    const whole = await runSimulation(bed.tiles, options(`whole-${batchNorm}`, { batchNorm }));
    const first = await runSimulation(bed.tiles, options(`parts-${batchNorm}`, { batchNorm, timeBudgetSeconds: 1, now: clock() }));
    expect(first.timeBudget?.stoppedAfterRound).toBe(2);
    expect(first.rounds).toHaveLength(2);
    if (batchNorm === 'local') expect(existsSync(localWeightsFile(join(bed.dir, `parts-${batchNorm}`), 1))).toBe(true);

    const resumed = await runSimulation(bed.tiles, options(`parts-${batchNorm}`, { batchNorm, resume: true }));
    expect(resumed.resumed?.map((r) => r.fromRound)).toEqual([2]);
    expect(resumed.rounds.map((r) => r.round)).toEqual([1, 2, 3, 4]);
    expect(figures(resumed)).toEqual(figures(whole));
    expect(figures(summaryOf(`parts-${batchNorm}`))).toEqual(figures(whole));
    expect(whole.quality?.curve.map((p) => p.round)).toEqual([2, 4]);
    expectSameWeights(weightsOf(whole.checkpoint), weightsOf(resumed.checkpoint));
    expectSameWeights(weightsOf(whole.quality!.bestCheckpoint!), weightsOf(resumed.quality!.bestCheckpoint!));
    expect(decodeCheckpoint(new Uint8Array(readFileSync(resumed.checkpoint))).meta.round).toBe(4);
    expect(readFileSync(resumed.samples).equals(readFileSync(whole.samples))).toBe(true);
  });

  it('a run killed during round 3 kept what its round-2 probe saved: the best model, a resumable state, and resumed it equals the run never stopped', async () => {
    const whole = await runSimulation(bed.tiles, options('killed-whole'));
    const killed = runSimulation(
      bed.tiles,
      options('killed', {
        onProgress: (p) => {
          if (p.round === 3) throw new Error('killed');
        },
      }),
    );
    await expect(killed).rejects.toThrow('killed');
    const snapshot = summaryOf('killed');
    expect(snapshot.inProgress).toBe(true);
    expect(snapshot.rounds.map((r) => r.round)).toEqual([1, 2]);
    expect(snapshot.quality?.curve.map((p) => p.round)).toEqual([2]);
    expect(snapshot.quality?.best?.round).toBe(2);
    const dir = join(bed.dir, 'killed');
    expect(decodeCheckpoint(new Uint8Array(readFileSync(join(dir, 'checkpoint.fgw')))).meta.round).toBe(2);
    expect(decodeCheckpoint(new Uint8Array(readFileSync(join(dir, 'checkpoint-best.fgw')))).meta.round).toBe(2);
    expectSameWeights(weightsOf(join(dir, 'checkpoint.fgw')), weightsOf(join(dir, 'checkpoint-best.fgw')));
    expect(existsSync(join(dir, 'samples.png'))).toBe(false);
    expect(existsSync(join(dir, 'summary.json.tmp'))).toBe(false);

    const resumed = await runSimulation(bed.tiles, options('killed', { resume: true }));
    expect(resumed.resumed?.map((r) => r.fromRound)).toEqual([2]);
    expect(figures(resumed)).toEqual(figures(whole));
    expect('inProgress' in summaryOf('killed')).toBe(false);
    expectSameWeights(weightsOf(whole.checkpoint), weightsOf(resumed.checkpoint));
    expectSameWeights(weightsOf(whole.quality!.bestCheckpoint!), weightsOf(resumed.quality!.bestCheckpoint!));
  });

  it('refuses what it cannot continue exactly, naming why, and leaves the run as it was', async () => {
    const out = 'refusals';
    await runSimulation(bed.tiles, options(out, { rounds: 2, batchNorm: 'local' }));
    const before = readFileSync(join(bed.dir, out, 'summary.json'), 'utf8');
    const refused = (over: Partial<SimulationOptions>) => runSimulation(bed.tiles, options(out, { batchNorm: 'local', resume: true, ...over }));
    await expect(refused({ localSteps: 3 })).rejects.toThrow(/--resume: the run in .*refusals was trained with localSteps 2, this call has 3/);
    await expect(refused({ model: { ...model, seed: 8 } })).rejects.toThrow(`the run in ${join(bed.dir, out)} was trained with model.seed ${model.seed}, this call has 8; resume with the run's own settings (only --rounds, --time-budget-minutes and the stopping rule may change)`);
    await expect(refused({ batchNorm: 'average' })).rejects.toThrow(/trained with batchNorm "local", this call has "average"/);
    await expect(refused({ rounds: 2 })).rejects.toThrow(/has completed 2 rounds and --rounds is 2: nothing to train \(raise --rounds to go on\)/);
    await expect(refused({ partition: { kind: 'noniid', ratio: 0.9 } })).rejects.toThrow(/trained with partition.kind "iid", this call has "noniid"/);
    // other tiles: another data folder, or the same one changed
    await expect(runSimulation(bed.tiles.slice(2), options(out, { batchNorm: 'local', resume: true }))).rejects.toThrow(/trained with tiles 12, this call has 10/);
    await expect(runSimulation(bed.tiles, options('nothing-here', { resume: true }))).rejects.toThrow(/--resume: .*nothing-here holds no summary.json: no run to resume there/);
    rmSync(localWeightsFile(join(bed.dir, out), 1));
    await expect(refused({})).rejects.toThrow(/--resume: .*local-weights\/2.fgw is missing: the run's hospital hospital-2's own weights \(FedBN\) cannot be restored/);
    expect(readFileSync(join(bed.dir, out, 'summary.json'), 'utf8')).toBe(before);
  });

  it('a run whose quality curve flattened: refused under its own stopping rule; under a later first round it goes on as a run under that rule from the start', async () => {
    // Scripted KIDs fall for three probes, then stay: patience 2 judged from round 0 stops the run after round 5.
    const kids = [3, 2, 1, 1, 1, 0.5, 0.2];
    const quality = (shifts: number[], fromRound: number, patience = 2) => ({ everyRounds: 1, perClass: 3, seed: 5, subsets: 4, extractor: scripted(shifts), untilFlat: { patience, minImprovement: 0.05, fromRound } });
    const stopped = await runSimulation(bed.tiles, options('flat', { rounds: 7, quality: quality(kids, 0) }));
    expect(stopped.quality?.stoppedEarly).toEqual({ round: 5, rounds: 7 });
    const file = join(bed.dir, 'flat', 'summary.json');
    const before = readFileSync(file, 'utf8');

    // Its own rule, replayed, stops it where it stopped: refused, naming the rule and what would let it go on.
    await expect(runSimulation(bed.tiles, options('flat', { rounds: 7, resume: true, quality: quality(kids.slice(5), 0) }))).rejects.toThrow(
      '--resume: under this stopping rule (patience 2, min improvement 0.05, from round 0) the run would have stopped after its round-5 probe; a later --flat-from-round, a larger --flat-patience, a smaller --flat-min-improvement or no --until-flat lets it go on',
    );
    // A changed rule that, replayed over the curve, stops the run at an earlier probe: refused, naming that probe.
    await expect(runSimulation(bed.tiles, options('flat', { rounds: 7, resume: true, quality: quality(kids.slice(5), 0, 1) }))).rejects.toThrow(
      '--resume: under this stopping rule (patience 1, min improvement 0.05, from round 0) the run would have stopped after its round-4 probe',
    );
    expect(readFileSync(file, 'utf8')).toBe(before);

    // Judged from round 4, the curve is not flat at round 5: the run goes on to its cap, as a run under that rule from the start.
    const resumed = await runSimulation(bed.tiles, options('flat', { rounds: 7, resume: true, quality: quality(kids.slice(5), 4) }));
    const whole = await runSimulation(bed.tiles, options('flat-whole', { rounds: 7, quality: quality(kids, 4) }));
    expect(whole.quality?.stoppedEarly).toBeNull();
    expect(resumed.quality?.stoppedEarly).toBeNull();
    expect(resumed.rounds.map((r) => r.round)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(figures(resumed)).toEqual(figures(whole));
    expect(resumed.quality?.best?.round).toBe(7);
    expect(resumed.quality?.untilFlat).toEqual({ patience: 2, minImprovement: 0.05, fromRound: 4 });
    expect(resumed.resumed).toEqual([{ fromRound: 5, at: expect.any(String), untilFlatWas: { patience: 2, minImprovement: 0.05, fromRound: 0 } }]);
    expectSameWeights(weightsOf(whole.checkpoint), weightsOf(resumed.checkpoint));
  });

  it('refuses a summary written before rounds recorded their medians', async () => {
    const out = 'old';
    await runSimulation(bed.tiles, options(out, { rounds: 2 }));
    const s = summaryOf(out);
    writeFileSync(join(bed.dir, out, 'summary.json'), JSON.stringify({ ...s, rounds: s.rounds.map(({ examplesMedian: _, ...r }) => r) }));
    await expect(runSimulation(bed.tiles, options(out, { resume: true }))).rejects.toThrow(/round 1 in .*summary.json records no example-count median \(written before runs could be resumed\)/);
  });

  it('is a flag of npm run simulate, refused with --server', () => {
    const base = ['--data', 'd', '--out', 'o'];
    expect((parseSimulateArgs([...base, '--resume']) as SimulateArgs).resume).toBe(true);
    expect((parseSimulateArgs(base) as SimulateArgs).resume).toBeUndefined();
    expect(() => parseSimulateArgs([...base, '--resume', '--server', 'ws://x/ws', '--tokens', 't.yaml'])).toThrow(/--resume applies to a simulation; with --server the federation server resumes from its own checkpoints/);
  });
});
