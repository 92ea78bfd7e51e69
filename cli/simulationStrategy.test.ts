/**
 * The in-process simulation runs the server's round strategy (shared/fed/strategy.ts): the same sample,
 * the same aggregation, the same loss means, and FedBN as design D1 says (the global model keeps the
 * batch-norm tensors it started with).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeWeights } from '../shared/codec/weightsCodec.ts';
import { configureRound, exampleWeightedMean } from '../shared/fed/strategy.ts';
import { createGan } from '../shared/gan/gan.ts';
import { tinyConfig } from '../shared/gan/testConfig.ts';
import { isBatchNormWeight } from '../shared/weights.ts';
import { partitionTiles, runSimulation, simulationFedConfig, type SimulationOptions } from './simulation.ts';
import { simulationTestbed } from './testing/simulationTestbed.ts';

const bed = simulationTestbed('fedgan-sim-strategy-');

describe('the simulation runs the shared round strategy', () => {
  it('samples with configureRound, averages with RoundAggregation, and under FedBN keeps the initial batch-norm tensors in the global model', async () => {
    const { tiles, model } = bed;
    const opts: SimulationOptions = bed.options('out', { clients: 3, rounds: 2, fraction: 0.5, minFit: 1, batchNorm: 'local' });
    const summary = await runSimulation(tiles, opts);

    const fed = simulationFedConfig(opts, 3);
    expect(fed).toMatchObject({ rounds: 2, fraction: 0.5, minFit: 1, seed: model.seed, batchNorm: 'local', localSteps: 1 });
    const { names } = partitionTiles(tiles, opts.partition, opts.clients, model.seed);
    for (const r of summary.rounds) {
      const plan = configureRound(fed, { round: r.round, attempt: 1, available: names });
      expect(plan.sampled).toHaveLength(2);
      expect(r.clients.map((c) => c.id)).toEqual(plan.sampled);
      expect(r.dLoss).toBe(exampleWeightedMean(r.clients.map((c) => ({ examples: c.examples, value: c.dLoss }))));
      expect(r.gLoss).toBe(exampleWeightedMean(r.clients.map((c) => ({ examples: c.examples, value: c.gLoss }))));
    }

    const init = createGan(model);
    const initial = init.getWeights();
    init.dispose();
    const global = decodeWeights(new Uint8Array(readFileSync(summary.checkpoint))).weights;
    expect(global.tensors.map((t) => t.name)).toEqual(initial.tensors.map((t) => t.name));
    let bn = 0;
    let moved = 0;
    global.tensors.forEach((t, i) => {
      // Trainable batch-norm parameters (running statistics may be recalibrated for sampling, so they are not judged here).
      if (isBatchNormWeight(t.name) && /(gamma|beta)$/.test(t.name)) {
        bn++;
        expect([...t.data], t.name).toEqual([...initial.tensors[i].data]);
      } else if (!isBatchNormWeight(t.name) && t.data.some((v, j) => v !== initial.tensors[i].data[j])) moved++;
    });
    expect(bn).toBeGreaterThan(0);
    expect(moved).toBeGreaterThan(0);
  });

  it('refuses simulation settings the federation config refuses, naming the field', () => {
    const base = { clients: 2, rounds: 1, localSteps: 1, fraction: 1, partition: { kind: 'iid' }, model: tinyConfig('acgan'), batchNorm: 'average', aggregator: { type: 'fedavg' }, out: '' } as const;
    expect(() => simulationFedConfig({ ...base, fed: { maxUpdateNorm: -1 } }, 2)).toThrow(/maxUpdateNorm/);
    expect(simulationFedConfig({ ...base, fed: { seed: 9, maxUpdateNorm: 5 } }, 2)).toMatchObject({ seed: 9, maxUpdateNorm: 5, minFit: 1, minAvailable: 2 });
  });
});
