import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeWeights } from '../shared/codec/weightsCodec.ts';
import type { GanConfig } from '../shared/config/ganConfig.ts';
import { createGan } from '../shared/gan/gan.ts';
import { startTestServer, tokenOf, type TestServer } from '../server/testing/federation.ts';
import { writeSyntheticTiles } from '../node/testing/syntheticTiles.ts';

const run = promisify(execFile);

describe('npm run simulate -- --server', () => {
  let dir: string;
  let server: TestServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedgan-remote-'));
    writeSyntheticTiles(join(dir, 'tiles'), { perClass: 6 });
    writeFileSync(join(dir, 'tokens.yaml'), ['h1', 'h2'].map((h) => `- hospital: ${h}\n  token: ${tokenOf(h)}\n`).join(''));
    server = await startTestServer(
      {
        rounds: 2,
        fraction: 1,
        minAvailable: 2,
        minFit: 2,
        minCompletion: 2,
        roundDeadlineSeconds: 60,
        localSteps: 1,
        // Round 2 asks for quality probes of the round-1 model (on the tiny network: fast).
        quality: { everyRounds: 1, features: 'tiny', perClass: 4 },
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

  it('joins a real server as two hospitals, finishes the rounds and writes the final global model', async () => {
    const out = join(dir, 'out');
    const r = await run(process.execPath, ['--import', 'tsx', 'cli/simulate.ts', '--server', server.wsUrl, '--tokens', join(dir, 'tokens.yaml'), '--clients', '2', '--data', join(dir, 'tiles'), '--image-size', '16', '--out', out], { env: { ...process.env, DAWN_NODE: '' } });
    expect(r.stderr).toMatch(/round 2 complete: 2 hospitals/);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.rounds.map((x: { round: number }) => x.round)).toEqual([1, 2]);
    const { weights, meta } = decodeWeights(new Uint8Array(readFileSync(join(out, 'checkpoint.fgw'))));
    expect(meta.round).toBe(2);
    const status = await (await fetch(server.url + '/api/status')).json();
    expect(status.round).toBe(2);
    expect(status.history).toHaveLength(2);
    // The Node hospitals probed the model they received in round 2; the server recorded the mean for model 1.
    expect(status.history[0].quality).toBeUndefined();
    expect(status.history[1].quality).toMatchObject({ round: 1, hospitals: 2, examples: 12, features: 'tiny' });
    expect(Number.isFinite(status.history[1].quality.kid)).toBe(true);
    expect(status.quality.best).toEqual({ round: 1, kid: status.history[1].quality.kid, features: 'tiny' });
    expect(r.stderr).toMatch(/round 2 complete: 2 hospitals, .*; quality of the round-1 model: KID .* \(tiny, 2 hospital\(s\)\)/);
    expect(summary.rounds[1].quality).toEqual(status.history[1].quality);
    expect(weights.tensors.length).toBeGreaterThan(10);
    expect(readFileSync(join(out, 'samples.png')).subarray(1, 4).toString()).toBe('PNG');
  });
});
