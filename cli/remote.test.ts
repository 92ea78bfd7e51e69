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
import { CliError } from '../node/cliError.ts';
import { selectHospitals } from './remote.ts';
import { parseSimulateArgs } from './simulate.ts';

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

describe('one hospital per process (--hospital-index, the Indexed Job of overlays/simulate-scale)', () => {
  const tokens = [
    { hospital: 'h1', token: 'token-of-h1-0123456789' },
    { hospital: 'h2', token: 'token-of-h2-0123456789' },
  ];

  it('picks the token of the same index, or all of them without an index', () => {
    expect(selectHospitals(tokens, 2, 'tokens.yaml', 1)).toEqual([{ index: 1, ...tokens[1] }]);
    expect(selectHospitals(tokens, 2, 'tokens.yaml', 0)).toEqual([{ index: 0, ...tokens[0] }]);
    expect(selectHospitals(tokens, 2, 'tokens.yaml')).toEqual(tokens.map((t, index) => ({ index, ...t })));
  });

  it('says which token is missing, and refuses an index outside the hospitals', () => {
    expect(() => selectHospitals(tokens, 4, '/etc/fedgan/tokens/tokens.yaml', 2)).toThrow(
      new CliError('hospital index 2 has no token: /etc/fedgan/tokens/tokens.yaml holds 2 plain token(s) (indices 0 to 1); an experiment of 4 hospitals needs 4, one per hospital, in the order of the indices'),
    );
    expect(() => selectHospitals(tokens, 2, 'tokens.yaml', 2)).toThrow('--hospital-index must be an integer from 0 to 1');
    expect(() => selectHospitals(tokens, 4, 'tokens.yaml')).toThrow('--clients 4 needs 4 tokens, tokens.yaml has 2');
  });

  it('parses --hospital-index only with --server and below --clients', () => {
    const base = ['--data', 'd', '--out', 'o', '--server', 'ws://x/ws', '--tokens', 't.yaml', '--clients', '4'];
    expect(parseSimulateArgs([...base, '--hospital-index', '3'])).toMatchObject({ clients: 4, hospitalIndex: 3 });
    expect(parseSimulateArgs(base)).not.toHaveProperty('hospitalIndex');
    expect(() => parseSimulateArgs([...base, '--hospital-index', '4'])).toThrow('--hospital-index must be below --clients 4 (hospitals count from 0), got "4"');
    expect(() => parseSimulateArgs([...base, '--hospital-index', '-1'])).toThrow(/--hospital-index/);
    expect(() => parseSimulateArgs([...base, '--hospital-index', '$(JOB_COMPLETION_INDEX)'])).toThrow('--hospital-index must be an integer ≥ 0, got "$(JOB_COMPLETION_INDEX)"');
    expect(() => parseSimulateArgs(['--data', 'd', '--out', 'o', '--hospital-index', '0'])).toThrow('--hospital-index needs --server');
  });
});

describe('npm run simulate -- --server --hospital-index: two processes, one hospital each', () => {
  let dir: string;
  let server: TestServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedgan-remote-index-'));
    writeSyntheticTiles(join(dir, 'tiles'), { perClass: 6 });
    writeFileSync(join(dir, 'tokens.yaml'), ['h1', 'h2'].map((h) => `- hospital: ${h}\n  token: ${tokenOf(h)}\n`).join(''));
    server = await startTestServer(
      {
        rounds: 1,
        fraction: 1,
        minAvailable: 2,
        minFit: 2,
        minCompletion: 2,
        roundDeadlineSeconds: 60,
        localSteps: 1,
        quality: { everyRounds: 0 },
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

  it('each process joins as the hospital of its index, on its half of the tiles, and the round aggregates both', async () => {
    const pod = (i: number) =>
      run(process.execPath, ['--import', 'tsx', 'cli/simulate.ts', '--server', server.wsUrl, '--tokens', join(dir, 'tokens.yaml'), '--clients', '2', '--hospital-index', String(i), '--data', join(dir, 'tiles'), '--image-size', '16', '--out', join(dir, `out-${i}`)], {
        env: { ...process.env, DAWN_NODE: '' },
      });
    const [a, b] = await Promise.all([pod(0), pod(1)]);
    expect(a.stderr).toMatch(/h1: training round 1 \(6 tiles\)/);
    expect(a.stderr).not.toMatch(/h2:/);
    expect(b.stderr).toMatch(/h2: training round 1 \(6 tiles\)/);
    expect(b.stderr).not.toMatch(/h1:/);
    for (const [i, r] of [a, b].entries()) {
      expect(r.stderr, `process ${i}`).toMatch(/round 1 complete: 2 hospitals/);
      const summary = JSON.parse(readFileSync(join(dir, `out-${i}`, 'summary.json'), 'utf8'));
      expect(summary.config).toMatchObject({ clients: 2, hospitalIndex: i });
      expect(summary.rounds.map((x: { round: number }) => x.round)).toEqual([1]);
    }
    const status = await (await fetch(server.url + '/api/status')).json();
    expect(status.history).toHaveLength(1);
    expect(status.history[0]).toMatchObject({ round: 1, participants: 2, examples: 12 });
  });
});
