import { describe, expect, it } from 'vitest';
import { epsilonFor } from '../shared/privacy/accountant.ts';
import { BUDGET_ORDERS, type LedgerEntry } from '../shared/privacy/budget.ts';
import { modelCardPrivacy } from './syntheticExport.ts';

/** The export's model-card.json `privacy` (client/syntheticExport.ts) from the hospital's privacy ledger. */
describe('model card privacy', () => {
  const entry = (round: number, sigma: number): LedgerEntry => ({ round, attempt: 1, steps: 100, sampleRate: 0.05, effectiveNoiseMultiplier: sigma, noiseMultiplier: sigma, clipNorm: 0.8, at: '2026-12-02T23:00:00.000Z' });

  it('composes ε over every DP round of the hospital, at δ, with the last round’s noise and clip', () => {
    const card = modelCardPrivacy([entry(1, 1.2), entry(2, 1.2)], 1e-5);
    expect(card).toMatchObject({ dp: true, delta: 1e-5, rounds: 2, noiseMultiplier: 1.2, clipNorm: 0.8 });
    expect(card.epsilon).toBeCloseTo(epsilonFor({ sampleRate: 0.05, noiseMultiplier: 1.2, steps: 200, delta: 1e-5, orders: BUDGET_ORDERS }), 10);
    expect(card.accountant).toMatch(/Mironov et al\. 2019.*Balle et al\. 2020/);
    expect(card.note).toMatch(/^ε bounds what the model reveals about any one of this hospital’s tiles/);
  });

  it('says so when the hospital never trained with DP', () => {
    expect(modelCardPrivacy([], 1e-5)).toMatchObject({ dp: false, epsilon: null, delta: null, rounds: 0, noiseMultiplier: null });
  });
});
