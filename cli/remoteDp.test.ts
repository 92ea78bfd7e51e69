import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GanConfig } from '../shared/config/ganConfig.ts';
import { createGan } from '../shared/gan/gan.ts';
import { epsilonSpent, type LedgerEntry } from '../shared/privacy/budget.ts';
import { startTestServer, TEST_OPERATOR_TOKEN, tokenOf, type TestServer } from '../server/testing/federation.ts';
import { writeSyntheticTiles } from '../node/testing/syntheticTiles.ts';

const run = promisify(execFile);

/**
 * A federation with differential privacy on, end to end over the real protocol: the server's round config
 * carries `dp`, two Node hospitals train DP-SGD rounds, record them in their privacy ledgers, and report ε in
 * their updates; the operator sees each hospital's ε.
 */
describe('npm run simulate -- --server with privacy.dp', () => {
  let dir: string;
  let server: TestServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedgan-remote-dp-'));
    writeSyntheticTiles(join(dir, 'tiles'), { perClass: 6 });
    writeFileSync(join(dir, 'tokens.yaml'), ['h1', 'h2'].map((h) => `- hospital: ${h}\n  token: ${tokenOf(h)}\n`).join(''));
    server = await startTestServer(
      {
        rounds: 2,
        minAvailable: 2,
        minFit: 2,
        minCompletion: 2,
        roundDeadlineSeconds: 60,
        localSteps: 2,
        quality: { everyRounds: 0 },
        privacy: { dp: { enabled: true, noiseMultiplier: 1.5, clipNorm: 1 } },
        model: { gan: 'acgan', imageSize: 16, latentDim: 8, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 }, batchSize: 4 },
      },
      {
        hospitals: ['h1', 'h2'],
        initialWeights: async (cfg: GanConfig) => {
          const gan = createGan(cfg);
          const w = gan.getWeights();
          gan.dispose();
          return w;
        },
      },
    );
  });
  afterAll(async () => {
    await server?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('trains both rounds with DP, keeps each hospital’s ledger, and the operator sees its ε', async () => {
    const out = join(dir, 'out');
    const r = await run(process.execPath, ['--import', 'tsx', 'cli/simulate.ts', '--server', server.wsUrl, '--tokens', join(dir, 'tokens.yaml'), '--clients', '2', '--data', join(dir, 'tiles'), '--image-size', '16', '--out', out], { env: { ...process.env, DAWN_NODE: '' } });
    expect(r.stderr).toMatch(/round 2 complete: 2 hospitals/);
    const overview = await (await fetch(`${server.url}/api/console/overview`, { headers: { authorization: `Bearer ${TEST_OPERATOR_TOKEN}` } })).json();
    for (const h of ['h1', 'h2']) {
      const ledger = JSON.parse(readFileSync(join(out, `privacy-${h}.json`), 'utf8')) as LedgerEntry[];
      expect(ledger.map((e) => [e.round, e.steps, e.noiseMultiplier, e.clipNorm])).toEqual([
        [1, 2, 1.5, 1],
        [2, 2, 1.5, 1],
      ]);
      // Each hospital has 6 tiles per class of 2 classes, split between the two: q = 4 / its tiles, δ = 1/(10·tiles).
      const tiles = Math.round(4 / ledger[0].sampleRate);
      const eps = epsilonSpent(ledger, 1 / (10 * tiles));
      const seen = (overview.hospitals as { name: string; epsilon: number | null }[]).find((x) => x.name === h);
      expect(seen?.epsilon).toBeCloseTo(eps, 10);
    }
  });
});
