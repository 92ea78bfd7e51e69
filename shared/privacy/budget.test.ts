import { describe, expect, it } from 'vitest';
import { epsilonFor } from './accountant.ts';
import { BUDGET_ORDERS, describeEpsilon, epsilonSpent, formatEpsilon, ledgerEntry, memoryLedger, NO_HOSPITAL_BUDGET, parseHospitalDpBudget, planDpRound, type DpRoundInput, type DpRoundPlan } from './budget.ts';

const BASE: DpRoundInput = { ledger: [], tiles: 1000, batchSize: 32, gan: 'acgan', nCritic: 5, localSteps: 50, round: 1, rounds: 10 };
const eps = (q: number, sigma: number, steps: number, delta: number) => epsilonFor({ sampleRate: q, noiseMultiplier: sigma, steps, delta, orders: BUDGET_ORDERS });

function trained(d: ReturnType<typeof planDpRound>): DpRoundPlan {
  if (!d || !d.train) throw new Error(`expected a round to train, got ${JSON.stringify(d)}`);
  return d.plan;
}

describe('a hospital privacy budget', () => {
  it('is off when neither the federation nor the hospital asks for DP', () => {
    expect(planDpRound(BASE)).toBeNull();
    expect(planDpRound({ ...BASE, own: NO_HOSPITAL_BUDGET })).toBeNull();
    expect(planDpRound({ ...BASE, own: { ...NO_HOSPITAL_BUDGET, clipNorm: 2 } })).toBeNull();
  });

  it('with a fixed σ: ε after this round and after the planned rounds, q = batch/N, δ = 1/(10N)', () => {
    const p = trained(planDpRound({ ...BASE, federation: { clipNorm: 1, noiseMultiplier: 1.1 } }));
    expect(p).toMatchObject({ noiseMultiplier: 1.1, effectiveNoiseMultiplier: 1.1, clipNorm: 1, sampleRate: 0.032, steps: 50, delta: 1e-4, budgetEpsilon: null, epsilonSpent: 0, remainingRounds: 10 });
    expect(p.epsilonAfterRound).toBeCloseTo(eps(0.032, 1.1, 50, 1e-4), 10);
    expect(p.epsilonPlanned).toBeCloseTo(eps(0.032, 1.1, 500, 1e-4), 10);
    expect(p.epsilonPlanned).toBeGreaterThan(p.epsilonAfterRound);
  });

  it('WGAN-GP accounts σ/√nCritic per generator step (nCritic noisy critic updates on one batch)', () => {
    const p = trained(planDpRound({ ...BASE, gan: 'wgan-gp', nCritic: 4, federation: { clipNorm: 1, noiseMultiplier: 2 } }));
    expect(p.noiseMultiplier).toBe(2);
    expect(p.effectiveNoiseMultiplier).toBe(1);
    expect(p.epsilonAfterRound).toBeCloseTo(eps(0.032, 1, 50, 1e-4), 10);
  });

  it('with a target ε: σ is the smallest that keeps ε after all rounds within it, and the rounds then spend it', () => {
    const ledger = memoryLedger();
    let last: DpRoundPlan | undefined;
    for (let round = 1; round <= 10; round++) {
      const p = trained(planDpRound({ ...BASE, round, ledger: ledger.entries, federation: { clipNorm: 1, targetEpsilon: 3 } }));
      expect(p.epsilonPlanned).toBeLessThanOrEqual(3 * (1 + 1e-9));
      expect(p.epsilonPlanned).toBeGreaterThan(2.99);
      if (round === 1) expect(eps(0.032, p.effectiveNoiseMultiplier * 0.999, 500, 1e-4)).toBeGreaterThan(3);
      ledger.append(ledgerEntry(p, { round, attempt: 1 }));
      last = p;
    }
    const spent = epsilonSpent(ledger.entries, 1e-4);
    expect(spent).toBeLessThanOrEqual(3 * (1 + 1e-9));
    expect(spent).toBeGreaterThan(2.99);
    expect(spent).toBeCloseTo(last!.epsilonAfterRound, 10);
    // An 11th round (the operator added rounds): what is left of ε is small, so σ rises sharply to fit it.
    const extra = trained(planDpRound({ ...BASE, round: 11, rounds: 11, ledger: ledger.entries, federation: { clipNorm: 1, targetEpsilon: 3 } }));
    expect(extra.noiseMultiplier).toBeGreaterThan(3 * last!.noiseMultiplier);
    expect(extra.epsilonAfterRound).toBeLessThanOrEqual(3 * (1 + 1e-9));
  });

  it('declines once the budget is spent, and every round after', () => {
    const spentLedger = [ledgerEntry(trained(planDpRound({ ...BASE, localSteps: 2000, federation: { clipNorm: 1, noiseMultiplier: 0.8 } })), { round: 1, attempt: 1 })];
    const spent = epsilonSpent(spentLedger, 1e-4);
    expect(spent).toBeGreaterThan(2);
    const d = planDpRound({ ...BASE, round: 2, ledger: spentLedger, federation: { clipNorm: 1, noiseMultiplier: 0.8 }, own: { ...NO_HOSPITAL_BUDGET, epsilon: 2 } });
    expect(d).toEqual({ train: false, reason: `privacy budget: this hospital has spent ε = ${formatEpsilon(spent)} of its ε = 2.00, so it trains no more rounds`, epsilonSpent: spent, delta: 1e-4, budgetEpsilon: 2 });
  });

  it('lets a hospital be stricter than the federation, never looser', () => {
    const fed = { clipNorm: 1, noiseMultiplier: 1.1 };
    expect(trained(planDpRound({ ...BASE, federation: fed, own: { ...NO_HOSPITAL_BUDGET, noiseMultiplier: 0.5 } })).noiseMultiplier).toBe(1.1);
    expect(trained(planDpRound({ ...BASE, federation: fed, own: { ...NO_HOSPITAL_BUDGET, noiseMultiplier: 2 } })).noiseMultiplier).toBe(2);
    const loose = trained(planDpRound({ ...BASE, federation: { clipNorm: 1, targetEpsilon: 2 }, own: { ...NO_HOSPITAL_BUDGET, epsilon: 8 } }));
    expect(loose.budgetEpsilon).toBe(2);
    const strict = trained(planDpRound({ ...BASE, federation: fed, own: { ...NO_HOSPITAL_BUDGET, epsilon: 1 } }));
    expect(strict.budgetEpsilon).toBe(1);
    expect(strict.noiseMultiplier).toBeGreaterThan(1.1); // raised to fit ε 1 over the 10 rounds
    expect(strict.epsilonPlanned).toBeLessThanOrEqual(1 * (1 + 1e-9));
    // δ: the smaller; the clip norm: the hospital's when set.
    const d = trained(planDpRound({ ...BASE, federation: { ...fed, delta: 1e-5 }, own: { ...NO_HOSPITAL_BUDGET, delta: 1e-6, clipNorm: 0.5 } }));
    expect(d).toMatchObject({ delta: 1e-6, clipNorm: 0.5 });
  });

  it('a hospital can train with DP when the federation does not ask for it', () => {
    const p = trained(planDpRound({ ...BASE, own: { ...NO_HOSPITAL_BUDGET, epsilon: 5 } }));
    expect(p.clipNorm).toBe(1);
    expect(p.epsilonPlanned).toBeLessThanOrEqual(5 * (1 + 1e-9));
    expect(p.epsilonPlanned).toBeGreaterThan(4.99);
  });

  it('fewer tiles than a batch: every tile every step (q = 1)', () => {
    const p = trained(planDpRound({ ...BASE, tiles: 20, federation: { clipNorm: 1, noiseMultiplier: 5 } }));
    expect(p.sampleRate).toBe(1);
    expect(p.delta).toBe(1 / 200);
  });

  it('checks a hospital budget, naming the bad field', () => {
    expect(parseHospitalDpBudget({ epsilon: 4 })).toEqual({ epsilon: 4, noiseMultiplier: null, clipNorm: null, delta: null });
    expect(() => parseHospitalDpBudget({ epsilon: 0 })).toThrow('invalid privacy budget: epsilon: ε must be above 0');
    expect(() => parseHospitalDpBudget({ noiseMultiplier: -1, sigma: 1 })).toThrow(/unrecognized key|sigma/i);
  });

  it('describes ε in plain words', () => {
    expect(describeEpsilon({ spent: 1.234, planned: 7.9, budget: 8, delta: 1e-5 })).toBe(
      "This hospital's tiles have spent ε = 1.23 so far (at δ = 1.0e-5). After all the planned rounds it would be ε = 7.90. Its budget is ε = 8.00: training stops before going past it.",
    );
  });
});
