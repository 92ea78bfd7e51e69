import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { epsilonSpent, type LedgerEntry } from '../shared/privacy/budget.ts';
import { fileLedger } from './privacyLedger.ts';

const dir = mkdtempSync(join(tmpdir(), 'ledger-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const entry = (round: number): LedgerEntry => ({ round, attempt: 1, steps: 50, sampleRate: 0.1, effectiveNoiseMultiplier: 1.1, noiseMultiplier: 1.1, clipNorm: 1, at: '2026-12-02T23:00:00.000Z' });

describe('a Node hospital privacy ledger file', () => {
  it('starts empty, keeps every round across reopening (a restarted process), so ε keeps growing', () => {
    const path = join(dir, 'sub', 'privacy-h1.json');
    expect(fileLedger(path).load()).toEqual([]);
    fileLedger(path).append(entry(1));
    fileLedger(path).append(entry(2));
    const again = fileLedger(path).load() as LedgerEntry[];
    expect(again.map((e) => e.round)).toEqual([1, 2]);
    expect(epsilonSpent(again, 1e-5)).toBeGreaterThan(epsilonSpent([entry(1)], 1e-5));
  });

  it('refuses a damaged file instead of resetting the ε spent', () => {
    const path = join(dir, 'bad.json');
    writeFileSync(path, '{"not": "a ledger"}');
    expect(() => fileLedger(path).load()).toThrow(`the privacy ledger ${path} is not a list of rounds`);
    writeFileSync(path, '[{"round": 1');
    expect(() => fileLedger(path).load()).toThrow(/is not valid JSON .* it is not reset|so it is not reset/);
  });
});
