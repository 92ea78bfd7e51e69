import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticTiles } from '../node/testing/syntheticTiles.ts';
import { tinyConfig } from '../shared/gan/testConfig.ts';
import { epsilonFor, EXTENDED_ORDERS } from '../shared/privacy/accountant.ts';
import { dpFedSettings, hospitalEpsilons, main, parsePrivacyAuditArgs, sideBySideTable, type SideResult } from './privacyAudit.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedgan-privacy-audit-'));
  writeSyntheticTiles(join(dir, 'data', 'train'), { perClass: 10, size: 16, seed: 1 });
  writeSyntheticTiles(join(dir, 'data', 'test'), { perClass: 6, size: 16, seed: 2 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('npm run privacy-audit', () => {
  it('parses its own flags and hands the rest to the simulation, refusing what it cannot honour', () => {
    const a = parsePrivacyAuditArgs(['--data', 'd', '--out', 'o', '--members-per-class', '8', '--noise-multiplier', '1.5', '--clients', '2', '--rounds', '3', '--local-steps', '4', '--gan', 'cgan']);
    if (a === 'help') throw new Error('help');
    expect(a).toMatchObject({ data: 'd', out: 'o', membersPerClass: 8, dp: { noiseMultiplier: 1.5, clipNorm: 1 }, features: 'inception', seeds: [1, 2, 3], epochs: 5 });
    expect(a.simulate).toMatchObject({ data: join('d', 'train'), clients: 2, rounds: 3, localSteps: 4, quality: { everyRounds: 0 } });
    expect(a.simulate.model.gan).toBe('cgan');
    expect(dpFedSettings(a.dp)).toEqual({ privacy: { dp: { enabled: true, noiseMultiplier: 1.5, clipNorm: 1 } } });
    expect(() => parsePrivacyAuditArgs(['--out', 'o'])).toThrow(/--data DIR is required/);
    expect(() => parsePrivacyAuditArgs(['--data', 'd', '--out', 'o', '--max-tiles', '9'])).toThrow(/--max-tiles is not used by the privacy audit/);
    expect(() => parsePrivacyAuditArgs(['--data', 'd', '--out', 'o', '--noise-multiplier', '0'])).toThrow(/--noise-multiplier must be a number above 0, got "0"/);
    expect(() => parsePrivacyAuditArgs(['--data', 'd', '--out', 'o', '--only', 'both'])).toThrow(/--only must be no-dp or dp/);
    expect(parsePrivacyAuditArgs(['--help'])).toBe('help');
  });

  it('accounts each hospital’s ε over the rounds it trained, at δ = 1/(10·N)', () => {
    const model = tinyConfig('cgan', { batchSize: 8 });
    const summary = {
      partition: [
        { id: 'a', examples: 40, perClass: [20, 20] },
        { id: 'b', examples: 100, perClass: [50, 50] },
      ],
      rounds: [
        { round: 1, clients: [{ id: 'a', examples: 40, dLoss: 0, gLoss: 0 }, { id: 'b', examples: 100, dLoss: 0, gLoss: 0 }], dLoss: 0, gLoss: 0, seconds: 1 },
        { round: 2, clients: [{ id: 'b', examples: 100, dLoss: 0, gLoss: 0 }], dLoss: 0, gLoss: 0, seconds: 1 },
      ],
    };
    const e = hospitalEpsilons(summary, model, { noiseMultiplier: 1.1, clipNorm: 1 }, 50);
    expect(e.map(({ hospital, tiles, rounds, delta }) => ({ hospital, tiles, rounds, delta }))).toEqual([
      { hospital: 'a', tiles: 40, rounds: 1, delta: 1 / 400 },
      { hospital: 'b', tiles: 100, rounds: 2, delta: 1 / 1000 },
    ]);
    expect(e[0].epsilon).toBeCloseTo(epsilonFor({ sampleRate: 8 / 40, noiseMultiplier: 1.1, steps: 50, delta: 1 / 400, orders: EXTENDED_ORDERS }), 12);
    expect(e[1].epsilon).toBeCloseTo(epsilonFor({ sampleRate: 8 / 100, noiseMultiplier: 1.1, steps: 100, delta: 1 / 1000, orders: EXTENDED_ORDERS }), 12);
    expect(e[1].epsilon).toBeGreaterThan(0);
    // WGAN-GP's nCritic updates on one batch count as one Gaussian with σ/√nCritic.
    const w = hospitalEpsilons(summary, tinyConfig('wgan-gp', { batchSize: 8, nCritic: 4 }), { noiseMultiplier: 2.2, clipNorm: 1 }, 50);
    expect(w[0].epsilon).toBeCloseTo(e[0].epsilon, 12);
  });

  it('trains and audits the non-DP side end to end on small tiles, the report’s members being the tiles trained on', async () => {
    const out = join(dir, 'out');
    const argv = ['--data', join(dir, 'data'), '--out', out, '--only', 'no-dp', '--members-per-class', '6', '--features', 'tiny', '--epochs', '1', '--synthetic-per-class', '8'];
    const sim = ['--clients', '2', '--rounds', '1', '--local-steps', '2', '--gan', 'cgan', '--image-size', '16', '--batch-size', '4', '--g-channels', '8', '--d-channels', '4', '--latent-dim', '8'];
    const written: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => (written.push(s), true)) as typeof process.stdout.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await main([...argv, ...sim]);
    } finally {
      process.stdout.write = write;
      process.stderr.write = err;
    }
    const json = JSON.parse(readFileSync(join(out, 'privacy-audit.json'), 'utf8'));
    expect(json.setup).toMatchObject({ membersPerClass: 6, clients: 2, rounds: 1, localSteps: 2, model: { gan: 'cgan', imageSize: 16 } });
    expect(json.results).toHaveLength(1);
    const r = json.results[0] as SideResult;
    expect(r).toMatchObject({ side: 'no-dp', epsilon: null });
    expect(r.membership.members.tiles + r.membership.leftOut.members).toBe(12);
    expect(r.membership.nonMembers.tiles + r.membership.leftOut.nonMembers).toBe(12);
    const details = JSON.parse(readFileSync(join(out, 'no-dp', 'report', 'report-details.json'), 'utf8'));
    expect(details.membershipScores.filter((x: { member: boolean }) => x.member)).toHaveLength(r.membership.members.tiles);
    expect(written.join('')).toContain('| GAN-Leaks AUC [95 % CI] |');
    expect(written.join('')).toContain('| ε (max over hospitals; δ = 1/(10·N)) | ∞ (no DP) |');
  }, 120_000);

  it('puts both sides in one table', () => {
    const side = (s: 'no-dp' | 'dp', auc: number): SideResult =>
      ({
        side: s,
        trainSeconds: 12.4,
        epsilon: s === 'dp' ? [{ hospital: 'a', tiles: 10, rounds: 1, delta: 0.01, epsilon: 3.456 }, { hospital: 'b', tiles: 10, rounds: 1, delta: 0.01, epsilon: 7.891 }] : null,
        fid: 100.123,
        kid: { mean: 0.01, std: 0.002 },
        classification: Object.fromEntries(['realOnly', 'realPlusSynthetic', 'syntheticOnly'].map((k) => [k, { accuracy: { mean: 0.5, sd: 0 }, f1: { mean: 0.5, sd: 0 }, balancedAccuracy: { mean: 0.55, sd: 0.01 }, auroc: { mean: 0.6, sd: 0.02 } }])),
        membership: { attacks: { ganLeaks: { auc, ci: { low: auc - 0.1, high: auc + 0.1 } }, logan: { auc: 0.5, ci: null } }, members: { tiles: 20 }, nonMembers: { tiles: 18 } },
        report: 'x',
      }) as unknown as SideResult;
    const t = sideBySideTable([side('no-dp', 0.7), side('dp', 0.52)]);
    expect(t.split('\n')[0]).toBe('| | without DP | with DP |');
    expect(t).toContain('| GAN-Leaks AUC, untrained control | – | – |');
    expect(sideBySideTable([{ ...side('dp', 0.5), noiseMultiplier: 2.5 }]).split('\n')[0]).toBe('| | with DP (σ 2.5) |');
    expect(t).toContain('| ε (max over hospitals; δ = 1/(10·N)) | ∞ (no DP) | 7.89 |');
    expect(t).toContain('| GAN-Leaks AUC [95 % CI] | 0.700 [0.600, 0.800] | 0.520 [0.420, 0.620] |');
    expect(t).toContain('| LOGAN AUC [95 % CI] | 0.500 | 0.500 |');
    expect(t).toContain('| classifier, real + synthetic: balanced accuracy | 0.550 ± 0.010 | 0.550 ± 0.010 |');
  });
});
