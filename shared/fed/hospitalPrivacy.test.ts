import { afterAll, describe, expect, it } from 'vitest';
import type { GanConfig } from '../config/ganConfig.ts';
import { datasetFromTiles } from '../data/dataset.ts';
import { createGan } from '../gan/gan.ts';
import { tinyConfig } from '../gan/testConfig.ts';
import type { RoundConfig } from '../protocol/messages.ts';
import { epsilonFor } from '../privacy/accountant.ts';
import { BUDGET_ORDERS, epsilonSpent, memoryLedger, NO_HOSPITAL_BUDGET, type HospitalDpBudget } from '../privacy/budget.ts';
import { Rng } from '../rng.ts';
import type { WeightSet } from '../weights.ts';
import { HospitalTraining, PrivacyBudgetError } from './hospitalTraining.ts';

/** A hospital's DP rounds end to end on a tiny model: plan, DP training, ledger, the update's ε, the stop. */

const MODEL = tinyConfig('acgan', { batchSize: 4, seed: 42 });
const TILES = 10;
const rng = new Rng(3);
const data = datasetFromTiles(
  Array.from({ length: TILES }, (_, i) => ({ pixels: Uint8Array.from({ length: 16 * 16 * 3 }, () => rng.int(256)), label: i % 2 })),
  16,
  2,
);
afterAll(() => data.dispose());

function initialWeights(model: GanConfig = MODEL): WeightSet {
  const gan = createGan(model);
  const w = gan.getWeights();
  gan.dispose();
  return w;
}
const GLOBAL = initialWeights();

function roundConfig(over: Partial<RoundConfig> & { dp?: { clipNorm: number; noiseMultiplier?: number; targetEpsilon?: number; delta?: number } } = {}): RoundConfig {
  return {
    round: 1,
    attempt: 1,
    rounds: 3,
    ganType: MODEL.gan,
    localSteps: 2,
    learningRate: { generator: MODEL.optimizerG.learningRate, discriminator: MODEL.optimizerD.learningRate },
    imageSize: MODEL.imageSize,
    batchNorm: 'average',
    examples: { min: 1, max: 1000 },
    deadlineSeconds: 60,
    model: MODEL as unknown as Record<string, unknown>,
    ...over,
  } as RoundConfig;
}

describe('a hospital training with differential privacy', () => {
  it("trains the federation's DP rounds, records them, and sends ε (not its real-tile loss)", async () => {
    const ledger = memoryLedger();
    const plans: number[] = [];
    const probes: string[] = [];
    const probeFeatures = (features: string) => {
      probes.push(features);
      throw new Error('no feature network in this test');
    };
    const h = new HospitalTraining({ hospital: 'h1', data, probeFeatures, onProbeError: () => {}, privacy: { budget: () => null, ledger, onPlan: (p, round) => plans.push(round) } });
    try {
      const r1 = await h.train(GLOBAL, roundConfig({ dp: { clipNorm: 1, noiseMultiplier: 1.5 }, quality: { features: 'tiny', perClass: 2, seed: 1, subsets: 1 } }));
      // q = 4/10, δ = 1/(10·10), 2 steps of σ 1.5.
      expect(r1.dp).toMatchObject({ noiseMultiplier: 1.5, clipNorm: 1, sampleRate: 0.4, delta: 0.01, steps: 2 });
      expect(r1.privacy!.epsilon).toBeCloseTo(epsilonFor({ sampleRate: 0.4, noiseMultiplier: 1.5, steps: 2, delta: 0.01, orders: BUDGET_ORDERS }), 10);
      expect(r1.privacy!.delta).toBe(0.01);
      expect(r1.dLoss).toBe(0);
      expect(Number.isFinite(r1.localDLoss)).toBe(true);
      expect(probes).toEqual([]); // no quality probe under DP (its KID would leave without noise)
      expect(ledger.entries).toHaveLength(1);
      expect(ledger.entries[0]).toMatchObject({ round: 1, attempt: 1, steps: 2, sampleRate: 0.4, effectiveNoiseMultiplier: 1.5 });

      const r2 = await h.train(r1.weights, roundConfig({ round: 2, dp: { clipNorm: 1, noiseMultiplier: 1.5 } }));
      expect(r2.dp!.epsilonSpent).toBeCloseTo(r1.privacy!.epsilon, 10);
      expect(r2.privacy!.epsilon).toBeCloseTo(epsilonFor({ sampleRate: 0.4, noiseMultiplier: 1.5, steps: 4, delta: 0.01, orders: BUDGET_ORDERS }), 10);
      expect(epsilonSpent(ledger.entries, 0.01)).toBeCloseTo(r2.privacy!.epsilon, 10);
      expect(plans).toEqual([1, 2]);
    } finally {
      h.dispose();
    }
  });

  it('declines a round that would pass its own ε budget, before any work, saying why', async () => {
    let budget: HospitalDpBudget = { ...NO_HOSPITAL_BUDGET, noiseMultiplier: 0.6 };
    const ledger = memoryLedger();
    const h = new HospitalTraining({ hospital: 'h1', data, privacy: { budget: () => budget, ledger } });
    try {
      // No DP asked by the federation: the hospital's own budget turns it on.
      const r1 = await h.train(GLOBAL, roundConfig());
      expect(r1.privacy!.epsilon).toBeGreaterThan(0);
      expect(ledger.entries).toHaveLength(1);
      budget = { ...budget, epsilon: r1.privacy!.epsilon };
      const refused = h.train(r1.weights, roundConfig({ round: 2 }));
      await expect(refused).rejects.toBeInstanceOf(PrivacyBudgetError);
      await expect(refused).rejects.toThrow(/^privacy budget: this hospital has spent ε = \d+\.\d+ of its ε = \d+\.\d+, so it trains no more rounds$/);
      expect(ledger.entries).toHaveLength(1);
    } finally {
      h.dispose();
    }
  });

  it('without DP anywhere: no plan, no ledger entry, its loss sent as before', async () => {
    const ledger = memoryLedger();
    const h = new HospitalTraining({ hospital: 'h1', data, privacy: { budget: () => NO_HOSPITAL_BUDGET, ledger } });
    try {
      const r = await h.train(GLOBAL, roundConfig());
      expect(r.privacy).toBeUndefined();
      expect(r.dp).toBeUndefined();
      expect(r.dLoss).not.toBe(0);
      expect(ledger.entries).toHaveLength(0);
    } finally {
      h.dispose();
    }
  });

  it('draws the noise and the batches from a secret seed per DP round, not from the round seed the server knows', async () => {
    const run = async (secret: number) => {
      const calls: number[] = [];
      const h = new HospitalTraining({ hospital: 'h1', data, secretSeed: () => (calls.push(secret), secret) });
      try {
        const r = await h.train(GLOBAL, roundConfig({ dp: { clipNorm: 1, noiseMultiplier: 1.5 } }));
        return { calls, weights: r.weights };
      } finally {
        h.dispose();
      }
    };
    const flat = (w: WeightSet) => w.tensors.flatMap((t) => Array.from(t.data));
    const a = await run(12345);
    const b = await run(12345);
    const c = await run(777);
    expect(a.calls).toEqual([12345]); // once per DP round
    // Same round config (same round seed): the update changes with the secret alone.
    expect(flat(a.weights)).toEqual(flat(b.weights));
    expect(flat(a.weights)).not.toEqual(flat(c.weights));
    // No DP: no secret drawn.
    const none: number[] = [];
    const h = new HospitalTraining({ hospital: 'h1', data, secretSeed: () => (none.push(1), 1) });
    try {
      await h.train(GLOBAL, roundConfig());
    } finally {
      h.dispose();
    }
    expect(none).toEqual([]);
  });

  it('times DP-SGD steps in the speed check when the rounds will run them', async () => {
    const drawn: number[] = [];
    const h = new HospitalTraining({ hospital: 'h1', data, secretSeed: () => (drawn.push(1), 99) });
    try {
      expect((await h.rehearse(MODEL as unknown as Record<string, unknown>, 2, {}, { dp: true })).steps).toBe(2);
      expect(drawn).toEqual([1]);
      expect((await h.rehearse(MODEL as unknown as Record<string, unknown>, 2)).steps).toBe(2);
      expect(drawn).toEqual([1]);
    } finally {
      h.dispose();
    }
  });
});

