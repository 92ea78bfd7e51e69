import { describe, expect, it } from 'vitest';
import { holdoutText, privacyLine } from './qualityPanel.ts';

describe('the Quality panel’s hold-out line', () => {
  it('says plainly whether tiles are kept out of training, how many, and when the audit is not clean', () => {
    expect(holdoutText({ on: false, fraction: 0.1, trainedBefore: false, heldOut: 0, training: 1200 })).toBe('Off: all 1,200 of your tiles are used in training.');
    expect(holdoutText({ on: false, fraction: 0.1, trainedBefore: false, heldOut: 0, training: 0 })).toBe('Off: all your tiles are used in training.');
    const on = holdoutText({ on: true, fraction: 0.1, since: Date.UTC(2026, 11, 2, 22, 40), trainedBefore: true, heldOut: 118, training: 1082 });
    expect(on).toMatch(/^On since 2 Dec 2026, \d\d:\d\d: 118 of your tiles \(1 in 10, chosen by each tile’s fingerprint, the same after every reload\) are kept out of training; 1,082 are trained on\./);
    expect(on).toMatch(/They were trained on in rounds before you turned this on, so the audit will underestimate any leakage\.$/);
  });

  it('shows the ε this hospital’s tiles spent, or the model card’s note without DP', () => {
    const card = { dp: true, epsilon: 2.3141, delta: 1e-5, rounds: 12, noiseMultiplier: 1.1, clipNorm: 1, accountant: 'RDP', note: 'n' };
    expect(privacyLine(card)).toBe('Differential privacy: your tiles have spent ε = 2.31 at δ = 1.0e-5 over 12 rounds (the smaller ε, the stronger the protection of each tile).');
    expect(privacyLine({ ...card, dp: false, epsilon: null, note: 'off: this hospital trained without differential privacy.' })).toBe('Differential privacy: off: this hospital trained without differential privacy.');
    expect(privacyLine(undefined)).toBeNull();
  });
});
