/**
 * One system, not two (issue 14, "done when"): the same two-hospital federation run once in process
 * (cli/simulation.ts runSimulation) and once through the real federation server on loopback with two Node
 * hospitals (cli/remote.ts runRemoteHospitals over the shared protocol client), under both batch-norm
 * policies, ends with the same global model and the same per-round loss means.
 *
 * Both runs share: the FedConfig (simulationFedConfig, given to the server as its FED_CONFIG), the initial
 * global model (the server's default, server/main.ts defaultInitialWeights, built from the model seed), the
 * hospitals' names ('hospital-1', 'hospital-2': the simulation's partition names, the tokens-file names;
 * they key the hospitals' seeds, D3) and their tiles (partitionTiles with the model seed). Everything runs on
 * tfjs's cpu backend in this process, which is deterministic, so the two paths should agree bit for bit;
 * the assertion allows a float32 tolerance (see TOLERANCE) and the test reports the largest difference seen.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../shared/checkpoint.ts';
import type { GanConfig } from '../shared/config/ganConfig.ts';
import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { tinyConfig } from '../shared/gan/testConfig.ts';
import { isBatchNormWeight, type WeightSet } from '../shared/weights.ts';
import { runRemoteHospitals } from '../cli/remote.ts';
import { runSimulation, simulationFedConfig, type SimulationOptions } from '../cli/simulation.ts';
import { defaultInitialWeights } from '../server/main.ts';
import { startTestServer, tokenOf } from '../server/testing/federation.ts';
import { writeSyntheticTiles } from '../node/testing/syntheticTiles.ts';
import { readTileFolder, type FolderTile } from '../node/tileFolder.ts';

/**
 * Largest accepted |a − b| / max(1, |a|) per weight and per loss mean. The two paths run the same float32
 * operations in the same order on the same deterministic backend and are observed to agree bit for bit (the
 * test logs the largest difference). The tolerance leaves room for float rounding that a legitimate change
 * could introduce (FedAvg over more hospitals summed in another order: at most an ulp here and there, ~1e-7
 * relative, shared/fed/strategy.ts) while every drifted seam tried moved weights by ≥ 1e-3: another
 * hospital name (seed), attempt, learning rate ×1.001, initial model, example count, or hospital-side BN
 * policy on one side (the drift test below keeps two of them).
 */
const TOLERANCE = 1e-5;

const HOSPITALS = ['hospital-1', 'hospital-2'];
/**
 * ACGAN with the discriminator's dropout (seeded per round, D3), DiffAugment (random per step) and an EMA
 * generator: every random draw of a round and every kind of weight travels through both paths. Learning
 * rates 1e-3 so that two rounds move the weights well past the tolerance.
 */
const model: GanConfig = tinyConfig('acgan', {
  batchSize: 4,
  seed: 11,
  optimizerG: { learningRate: 1e-3 },
  optimizerD: { learningRate: 1e-3 },
  augment: { policy: ['color', 'translation', 'cutout'] },
  ema: { decay: 0.9 },
});

interface RunResult {
  global: WeightSet;
  /** Per round: [dLoss, gLoss] example-weighted means. */
  losses: [number, number][];
  /** Per round: the hospitals whose updates were aggregated. */
  hospitals: string[][];
}

let dir: string;
let tiles: FolderTile[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedgan-equiv-'));
  writeSyntheticTiles(join(dir, 'tiles'), { perClass: 8, size: 20 });
  // 15 tiles: the hospitals hold 7 and 8, so that FedAvg's and the loss means' example weights matter.
  tiles = readTileFolder(join(dir, 'tiles'), { classes: model.classes, size: model.imageSize }).slice(0, 15);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function simulationOptions(batchNorm: BatchNormPolicy, out: string, over: Partial<SimulationOptions> = {}): SimulationOptions {
  return {
    clients: 2,
    rounds: 2,
    // 3 steps of 4 tiles: the 7-tile hospital reshuffles within the round (a second pass).
    localSteps: 3,
    fraction: 1,
    minFit: 2,
    partition: { kind: 'iid' },
    model,
    batchNorm,
    aggregator: { type: 'fedavg' },
    out,
    // The server waits for both updates (minCompletion 2); the simulation always aggregates every sampled hospital.
    fed: { minCompletion: 2, roundDeadlineSeconds: 120 },
    samplesPerClass: 1,
    ...over,
  };
}

async function inProcess(batchNorm: BatchNormPolicy, over: Partial<SimulationOptions> = {}): Promise<RunResult> {
  const out = mkdtempSync(join(dir, `sim-${batchNorm}-`));
  const summary = await runSimulation(tiles, simulationOptions(batchNorm, out, over));
  expect(summary.partition.map((p) => [p.id, p.examples])).toEqual([
    [HOSPITALS[0], 7],
    [HOSPITALS[1], 8],
  ]);
  // The simulation starts from the model the server starts from.
  const { weights } = decodeCheckpoint(new Uint8Array(readFileSync(summary.checkpoint)));
  return { global: weights, losses: summary.rounds.map((r) => [r.dLoss, r.gLoss]), hospitals: summary.rounds.map((r) => r.clients.map((c) => c.id)) };
}

type ServerRun = RunResult & { serverGlobal: WeightSet; initial: WeightSet; history: { round: number; hospitals: string[]; quality?: { round: number; kid: number } }[] };

/** A remote federation that has not finished by then has hung (a declined round, a seam that no longer fits). */
const REMOTE_LIMIT_MS = 60_000;

/**
 * The federation of simulationOptions(batchNorm, …, over) through a real server: its FedConfig is the
 * simulation's (simulationFedConfig), its hospitals (named `hospitals`) are Node hospitals with the same tiles.
 */
async function throughServer(batchNorm: BatchNormPolicy, hospitals = HOSPITALS, over: Partial<SimulationOptions> = {}): Promise<ServerRun> {
  const opts = simulationOptions(batchNorm, dir, over);
  const fed = simulationFedConfig(opts, hospitals.length);
  let initial: WeightSet | undefined;
  const server = await startTestServer(fed, {
    hospitals,
    // The real server's initial model (server/main.ts), from the model seed.
    initialWeights: async (cfg) => (initial = await defaultInitialWeights(cfg)),
  });
  try {
    const out = mkdtempSync(join(dir, `remote-${batchNorm}-`));
    const tokensFile = join(out, 'tokens.yaml');
    writeFileSync(tokensFile, hospitals.map((h) => `- hospital: ${h}\n  token: ${tokenOf(h)}\n`).join(''));
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the federation through the server did not finish within ${REMOTE_LIMIT_MS / 1000} s; server log:\n${server.logLines.slice(-30).join('\n')}`)), REMOTE_LIMIT_MS);
    });
    const remote = runRemoteHospitals(tiles, {
      server: server.wsUrl,
      tokensFile,
      clients: 2,
      partition: { kind: 'iid' },
      imageSize: model.imageSize,
      classes: model.classes,
      seed: model.seed,
      out,
      log: () => {},
    });
    try {
      await Promise.race([remote, hung]);
    } finally {
      clearTimeout(timer);
    }
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { rounds: { round: number; dLoss: number; gLoss: number }[] };
    expect(summary.rounds.map((r) => r.round)).toEqual(Array.from({ length: opts.rounds }, (_, i) => i + 1));
    const fetched = decodeCheckpoint(new Uint8Array(readFileSync(join(out, 'checkpoint.fgw'))));
    const last = `round-${String(opts.rounds).padStart(6, '0')}.fgw`;
    const saved = decodeCheckpoint(new Uint8Array(readFileSync(join(server.stateDir, 'checkpoints', last))));
    expect(saved.meta).toMatchObject({ round: opts.rounds, batchNorm });
    // The server's own status (the full view: /api/status names hospitals only to the operator).
    const status = server.federation.status() as { history: ServerRun['history'] };
    return {
      global: fetched.weights,
      losses: summary.rounds.map((r) => [r.dLoss, r.gLoss]),
      hospitals: status.history.map((h) => h.hospitals),
      serverGlobal: saved.weights,
      initial: initial!,
      history: status.history,
    };
  } finally {
    await server.cleanup();
  }
}

/** Per tensor, the largest |a − b| / max(1, |a|); throws when the layouts differ. */
function differences(a: WeightSet, b: WeightSet): Map<string, number> {
  expect(b.fingerprint).toBe(a.fingerprint);
  expect(b.tensors.map((t) => [t.name, t.shape])).toEqual(a.tensors.map((t) => [t.name, t.shape]));
  const out = new Map<string, number>();
  a.tensors.forEach((t, k) => {
    const u = b.tensors[k].data;
    let m = 0;
    for (let i = 0; i < t.data.length; i++) m = Math.max(m, Math.abs(t.data[i] - u[i]) / Math.max(1, Math.abs(t.data[i])));
    out.set(t.name, m);
  });
  return out;
}

const maxOf = (d: Map<string, number>) => Math.max(...d.values());
const relDiff = (a: number, b: number) => Math.abs(a - b) / Math.max(1, Math.abs(a));

describe('the same federation in process and through the real server', () => {
  const results = new Map<BatchNormPolicy, { sim: RunResult; remote: Awaited<ReturnType<typeof throughServer>> }>();

  it.each(['average', 'local'] as const)('batchNorm %s: the global models and the round loss means agree', async (batchNorm) => {
    const sim = await inProcess(batchNorm);
    const remote = await throughServer(batchNorm);
    results.set(batchNorm, { sim, remote });
    expect(sim.hospitals).toEqual([HOSPITALS, HOSPITALS]);
    expect(remote.hospitals).toEqual([HOSPITALS, HOSPITALS]);

    // The final global the hospitals downloaded is the one the server checkpointed.
    expect(maxOf(differences(remote.serverGlobal, remote.global))).toBe(0);
    // The federation trained: the global moved away from the initial model.
    const moved = differences(remote.initial, remote.global);
    expect(maxOf(moved)).toBeGreaterThan(1e-3); // ~4 Adam steps of 1e-3
    if (batchNorm === 'local') {
      // FedBN (D1): the global keeps the initial batch-norm tensors, on both paths.
      for (const [name, d] of moved) if (isBatchNormWeight(name)) expect(d, name).toBe(0);
      for (const [name, d] of differences(remote.initial, sim.global)) if (isBatchNormWeight(name)) expect(d, name).toBe(0);
    }

    const diff = differences(sim.global, remote.global);
    const worst = [...diff].sort((x, y) => y[1] - x[1])[0];
    console.log(`batchNorm ${batchNorm}: ${diff.size} tensors, largest relative difference ${worst[1]} (${worst[0]}); losses sim ${JSON.stringify(sim.losses)} server ${JSON.stringify(remote.losses)}`);
    for (const [name, d] of diff) expect(d, `${name} differs between the simulation and the server`).toBeLessThanOrEqual(TOLERANCE);

    expect(sim.losses).toHaveLength(2);
    expect(remote.losses).toHaveLength(2);
    sim.losses.forEach(([d, g], r) => {
      expect(relDiff(d, remote.losses[r][0]), `round ${r + 1} dLoss`).toBeLessThanOrEqual(TOLERANCE);
      expect(relDiff(g, remote.losses[r][1]), `round ${r + 1} gLoss`).toBeLessThanOrEqual(TOLERANCE);
    });
  });

  it('fails when a seam drifts: the other batch-norm policy on one side, or hospitals under other names (other seeds)', async () => {
    const avg = results.get('average');
    const local = results.get('local');
    if (!avg || !local) throw new Error('the runs of the previous test are missing');
    // Averaging batch norm on one side and FedBN on the other.
    expect(maxOf(differences(avg.sim.global, local.remote.global))).toBeGreaterThan(100 * TOLERANCE);
    // The same tiles in the same order (the partition is keyed by the model seed), but the second hospital
    // is known to the server by another name: its seed differs (D3), and so does the global model.
    const renamed = await throughServer('average', ['hospital-1', 'hospital-3']);
    expect(maxOf(differences(avg.sim.global, renamed.global))).toBeGreaterThan(100 * TOLERANCE);
    expect(relDiff(avg.sim.losses[0][0], renamed.losses[0][0])).toBeGreaterThan(10 * TOLERANCE);
    console.log(`drift: other batch-norm policy ${maxOf(differences(avg.sim.global, local.remote.global))}, other hospital name ${maxOf(differences(avg.sim.global, renamed.global))}, round-1 dLoss ${relDiff(avg.sim.losses[0][0], renamed.losses[0][0])}`);
  });

  it('a round whose hospitals probe the received model (quality tracking) trains the same model', async () => {
    // The simulation never asks its hospitals to probe (it measures its global model itself); through the
    // server, round 2 asks both hospitals to score the round-1 model before training. The probe must leave
    // the model and the round's random draws as they were. FedBN: the probe loads the hospital's own batch norm.
    const local = results.get('local');
    if (!local) throw new Error('the runs of the first test are missing');
    const base = simulationOptions('local', dir);
    const probed = await throughServer('local', HOSPITALS, { fed: { ...base.fed, quality: { everyRounds: 1, features: 'tiny', perClass: 2, subsets: 2 } } });
    expect(probed.history.map((h) => [h.round, h.quality?.round])).toEqual([
      [1, undefined],
      [2, 1],
    ]);
    expect(Number.isFinite(probed.history[1].quality!.kid)).toBe(true);
    for (const [name, d] of differences(local.sim.global, probed.global)) expect(d, `${name} differs after a probing round`).toBeLessThanOrEqual(TOLERANCE);
    expect(probed.losses).toEqual(local.remote.losses);
  });

  it('caps example counts alike from the previous round\'s median (examples.medianFactor 1: the 8-tile hospital counts as 7 in round 2)', async () => {
    const avg = results.get('average');
    if (!avg) throw new Error('the runs of the first test are missing');
    const over: Partial<SimulationOptions> = { fed: { minCompletion: 2, roundDeadlineSeconds: 120, examples: { medianFactor: 1 } } };
    const sim = await inProcess('average', over);
    const remote = await throughServer('average', HOSPITALS, over);
    const history = remote.history as unknown as { examples: number; examplesMedian: number }[];
    // Round 1: no previous median, 7 + 8; the lower median of 7 and 8 is 7; round 2: 7 + min(8, 1 × 7).
    expect(history.map((h) => [h.examples, h.examplesMedian])).toEqual([
      [15, 7],
      [14, 7],
    ]);
    for (const [name, d] of differences(sim.global, remote.global)) expect(d, `${name} differs`).toBeLessThanOrEqual(TOLERANCE);
    sim.losses.forEach(([d, g], r) => {
      expect(relDiff(d, remote.losses[r][0]), `round ${r + 1} dLoss`).toBeLessThanOrEqual(TOLERANCE);
      expect(relDiff(g, remote.losses[r][1]), `round ${r + 1} gLoss`).toBeLessThanOrEqual(TOLERANCE);
    });
    // The cap changed the model (on both paths): round 2's weights are 7:7, not 7:8.
    expect(maxOf(differences(avg.sim.global, sim.global))).toBeGreaterThan(100 * TOLERANCE);
  });

  it('samples the same hospitals each round (fraction 0.5 of two: one hospital a round)', async () => {
    // Sampling seed 11 (the model seed) picks hospital-2, hospital-2, hospital-1 in rounds 1–3.
    const over: Partial<SimulationOptions> = { rounds: 3, fraction: 0.5, minFit: 1, fed: { minCompletion: 1, roundDeadlineSeconds: 120 } };
    const sim = await inProcess('average', over);
    const remote = await throughServer('average', HOSPITALS, over);
    expect(sim.hospitals).toEqual([['hospital-2'], ['hospital-2'], ['hospital-1']]);
    expect(remote.hospitals).toEqual(sim.hospitals);
    for (const [name, d] of differences(sim.global, remote.global)) expect(d, `${name} differs`).toBeLessThanOrEqual(TOLERANCE);
    sim.losses.forEach(([d, g], r) => {
      expect(relDiff(d, remote.losses[r][0]), `round ${r + 1} dLoss`).toBeLessThanOrEqual(TOLERANCE);
      expect(relDiff(g, remote.losses[r][1]), `round ${r + 1} gLoss`).toBeLessThanOrEqual(TOLERANCE);
    });
  });
});
