import { describe, expect, it } from 'vitest';
import { NO_HOSPITAL_BUDGET, previewPrivacy } from '../../shared/privacy/budget.ts';
import type { PrivacyState } from '../api.ts';
import { federationInfoFromStatus } from '../federationInfo.ts';
import { budgetFromForm, budgetText, epsilonText, noiseText, plannedText, privacyHeadline } from './privacyPanel.ts';

const FED = { clipNorm: 1, noiseMultiplier: 1.1 };

/** A panel state as the worker builds it (shared/privacy/budget.ts previewPrivacy + the context). */
function state(over: Partial<PrivacyState> & { own?: PrivacyState['budget']; fed?: PrivacyState['federation'] } = {}): PrivacyState {
  const own = over.own ?? NO_HOSPITAL_BUDGET;
  const fed = over.fed === undefined ? FED : over.fed;
  const preview = previewPrivacy({ ...(fed ? { federation: fed } : {}), own, ledger: [], tiles: 1000, batchSize: 32, gan: 'acgan', nCritic: 5, localSteps: 50, round: 1, rounds: 10 });
  return { ...preview, budget: own, federation: fed, rounds: 10, nextRound: 1, tiles: 1000, ...over };
}

describe('privacy panel text', () => {
  it('says DP is off, and how to turn it on', () => {
    const s = state({ fed: null });
    expect(s.on).toBe(false);
    expect(privacyHeadline(s)).toEqual({ text: 'Differential privacy is off: the federation does not ask for it and no budget is set here. You can set one before joining.', tone: 'neutral' });
    expect(epsilonText(s.spent)).toBe('0.00');
    expect(plannedText(s)).toBe('–');
    expect(budgetText(s)).toBe('none');
  });

  it('shows the federation’s DP: ε spent, ε after the planned rounds, no limit with a fixed noise', () => {
    const s = state();
    expect(privacyHeadline(s).text).toBe('Differential privacy is on (the federation asks for it): each training step adds noise, so what leaves this computer reveals very little about any single tile.');
    expect(privacyHeadline(s).tone).toBe('ok');
    expect(epsilonText(s.spent)).toBe('0.00');
    expect(plannedText(s)).toBe(`${epsilonText(s.planned)} (if this hospital trains all 10 remaining rounds)`);
    expect(Number(epsilonText(s.planned))).toBeGreaterThan(0);
    expect(budgetText(s)).toBe('no ε limit: the noise is fixed, ε grows with every round');
    expect(noiseText(s)).toBe('1.10 × clip norm 1');
  });

  it('shows this hospital’s own limit, and the stop when it is reached', () => {
    const s = state({ own: { ...NO_HOSPITAL_BUDGET, epsilon: 2 } });
    expect(privacyHeadline(s).text).toMatch(/^Differential privacy is on \(the federation asks for it and this hospital set its own budget\)/);
    expect(budgetText(s)).toBe('ε at most 2.00 (set here)');
    expect(Number(plannedText(s).split(' ')[0])).toBeLessThanOrEqual(2);
    const stopped = state({ stopped: 'privacy budget: this hospital has spent ε = 2.00 of its ε = 2.00, so it trains no more rounds', planned: null });
    expect(privacyHeadline(stopped)).toEqual({
      text: 'Training has stopped to stay within this hospital’s privacy budget: this hospital has spent ε = 2.00 of its ε = 2.00, so it trains no more rounds.',
      tone: 'warn',
    });
    expect(budgetText(state({ fed: { clipNorm: 1, targetEpsilon: 5 } }))).toBe('ε at most 5.00 (the federation’s)');
  });

  it('asks for tiles before it can plan', () => {
    expect(plannedText(state({ planned: null, tiles: 0 }))).toBe('– (import tiles first)');
  });

  it('checks the form: empty is "not set", numbers above 0, clip and δ kept', () => {
    expect(budgetFromForm({ epsilon: '8', noise: '' })).toEqual({ budget: { epsilon: 8, noiseMultiplier: null, clipNorm: null, delta: null } });
    expect(budgetFromForm({ epsilon: ' 2,5 ', noise: '1.2' }, { ...NO_HOSPITAL_BUDGET, clipNorm: 0.5 })).toEqual({ budget: { epsilon: 2.5, noiseMultiplier: 1.2, clipNorm: 0.5, delta: null } });
    expect(budgetFromForm({ epsilon: '', noise: '' })).toEqual({ budget: NO_HOSPITAL_BUDGET });
    expect(budgetFromForm({ epsilon: '0', noise: '' })).toEqual({ error: 'The ε limit must be a number above 0 (or empty)' });
    expect(budgetFromForm({ epsilon: 'abc', noise: '' })).toEqual({ error: 'The ε limit must be a number above 0 (or empty)' });
    expect(budgetFromForm({ epsilon: '', noise: '5000' })).toEqual({ error: 'The noise multiplier must be at most 1000' });
    // Noise and clip (the other way to set a budget).
    expect(budgetFromForm({ epsilon: '', noise: '1.3', clip: '0.5' })).toEqual({ budget: { epsilon: null, noiseMultiplier: 1.3, clipNorm: 0.5, delta: null } });
    expect(budgetFromForm({ epsilon: '', noise: '', clip: '' }, { ...NO_HOSPITAL_BUDGET, clipNorm: 0.5 })).toEqual({ budget: NO_HOSPITAL_BUDGET });
    expect(budgetFromForm({ epsilon: '', noise: '1', clip: '-2' })).toEqual({ error: 'The clip norm must be a number above 0 (or empty)' });
  });

  it("reads the federation's DP from /api/status (on: its settings; off or absent: none)", () => {
    const status = (dp: unknown) => ({ phase: 'waiting', config: { model: {}, privacy: { dp } } });
    expect(federationInfoFromStatus(status({ enabled: true, noiseMultiplier: 1.1, clipNorm: 1, delta: null })).dp).toEqual({ clipNorm: 1, noiseMultiplier: 1.1 });
    expect(federationInfoFromStatus(status({ enabled: true, targetEpsilon: 4, clipNorm: 0.5, delta: 1e-6 })).dp).toEqual({ clipNorm: 0.5, targetEpsilon: 4, delta: 1e-6 });
    expect('dp' in federationInfoFromStatus(status({ enabled: false, noiseMultiplier: 1 }))).toBe(false);
    expect('dp' in federationInfoFromStatus({ phase: 'waiting', config: { model: {} } })).toBe(false);
  });
});
