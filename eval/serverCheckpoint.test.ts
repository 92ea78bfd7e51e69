import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRemoteHospitals } from '../cli/remote.ts';
import { initNodeBackend } from '../node/nodeBackend.ts';
import { readTileFolder } from '../node/tileFolder.ts';
import { decodeCheckpoint } from '../shared/checkpoint.ts';
import { encodeWeights } from '../shared/codec/weightsCodec.ts';
import { parseGanConfig, withRecipeDefaults, type GanConfig } from '../shared/config/ganConfig.ts';
import { createGan } from '../shared/gan/gan.ts';
import { startTestServer, tokenOf, type TestServer } from '../server/testing/federation.ts';
import { writeSyntheticTiles } from '../node/testing/syntheticTiles.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { parseEvaluateArgs } from './cli.ts';

/**
 * The server's own checkpoint files (STATE_DIR/checkpoints/round-NNNNNN.fgw), written by a real server on
 * loopback after a FedBN federation of two Node hospitals (cli/remote.ts), go through the evaluate
 * command exactly as `npm run evaluate` runs it (node --import tsx eval/cli.ts), with small synthetic tiles.
 */

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
const MODEL = { gan: 'acgan', imageSize: 16, latentDim: 8, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 }, batchSize: 4 } as const;

let dir: string;
let server: TestServer;

/** Flags that keep the report quick (tiny features, small classifier), as eval/cli.test.ts does. */
const QUICK = ['--per-class', '10', '--features', 'tiny', '--classifier-size', '16', '--classifier-workers', '1', '--epochs', '2', '--seeds', '1,2,3', '--kid-subsets', '10', '--tsne-per-group', '8', '--tsne-iterations', '50', '--no-linear-probe', '--no-feature-cache'];

function evaluateCli(args: string[]) {
  return run(process.execPath, ['--import', 'tsx', 'eval/cli.ts', ...args], { cwd: ROOT, env: { ...process.env, DAWN_NODE: '' } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedgan-server-eval-'));
  writeSyntheticTiles(join(dir, 'train'), { perClass: 12, size: 24, seed: 1 });
  writeSyntheticTiles(join(dir, 'test'), { perClass: 6, size: 24, seed: 2 });
  writeFileSync(join(dir, 'tokens.yaml'), ['h1', 'h2'].map((h) => `- hospital: ${h}\n  token: ${tokenOf(h)}\n`).join(''));
  await initNodeBackend();
  server = await startTestServer(
    { rounds: 2, fraction: 1, minAvailable: 2, minFit: 2, minCompletion: 2, roundDeadlineSeconds: 60, localSteps: 3, batchNorm: 'local', model: MODEL },
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
  const tiles = readTileFolder(join(dir, 'train'), { classes: ['MSIH', 'nonMSIH'], size: 16 });
  await runRemoteHospitals(tiles, {
    server: server.wsUrl,
    tokensFile: join(dir, 'tokens.yaml'),
    clients: 2,
    partition: { kind: 'iid' },
    imageSize: 16,
    classes: ['MSIH', 'nonMSIH'],
    seed: 1,
    out: join(dir, 'remote'),
    log: () => {},
  });
});

afterAll(async () => {
  await server?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const checkpointFile = (round: number) => join(server.stateDir, 'checkpoints', `round-${String(round).padStart(6, '0')}.fgw`);

describe('a real server checkpoint through npm run evaluate', () => {
  it('the server and the remote hospitals write the one format: config, round, FedBN policy, source; the same weights', () => {
    expect(readdirSync(join(server.stateDir, 'checkpoints')).sort()).toEqual(['round-000000.fgw', 'round-000001.fgw', 'round-000002.fgw']);
    const fromServer = decodeCheckpoint(new Uint8Array(readFileSync(checkpointFile(2))));
    expect(fromServer.meta).toMatchObject({ version: 2, config: parseGanConfig(withRecipeDefaults(MODEL)), round: 2, batchNorm: 'local', source: 'server' });
    expect(fromServer.meta.state!.history.map((h) => h.hospitals)).toEqual([
      ['h1', 'h2'],
      ['h1', 'h2'],
    ]);
    const fromRemote = decodeCheckpoint(new Uint8Array(readFileSync(join(dir, 'remote', 'checkpoint.fgw'))));
    expect(fromRemote.meta).toMatchObject({ version: 2, round: 2, batchNorm: 'local', source: server.wsUrl });
    expect(fromRemote.meta.config.imageSize).toBe(16);
    expect(fromRemote.meta).not.toHaveProperty('state');
    expect(fromRemote.weights.fingerprint).toBe(fromServer.weights.fingerprint);
    expect(fromRemote.weights.tensors.map((t) => [...t.data])).toEqual(fromServer.weights.tensors.map((t) => [...t.data]));
    expect(readFileSync(join(dir, 'remote', 'samples.png')).subarray(1, 4).toString()).toBe('PNG');
  });

  it('evaluates STATE_DIR/checkpoints/round-000002.fgw: every figure of the report exists and is finite', async () => {
    const out = join(dir, 'report');
    const r = await evaluateCli(['--checkpoint', checkpointFile(2), '--real-train', join(dir, 'train'), '--real-test', join(dir, 'test'), '--out', out, ...QUICK]);
    expect(r.stderr + r.stdout).not.toMatch(/error|fatal/i);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/batch-norm policy "local" \(FedBN\): .*recalibrated them from 8 × 64 generated samples/);
    expect(r.stdout).toMatch(/KID: /);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
    expect(finite(report.fid)).toBe(true);
    expect(finite(report.kid.mean) && finite(report.kid.std)).toBe(true);
    expect(Object.keys(report.classification)).toEqual(['realOnly', 'realPlusSynthetic', 'syntheticOnly']);
    for (const regime of Object.values(report.classification) as Record<string, { mean: number; sd: number }>[]) {
      for (const k of ['accuracy', 'f1', 'balancedAccuracy', 'auroc']) expect(finite(regime[k].mean) && finite(regime[k].sd), k).toBe(true);
    }
    for (const k of ['syntheticToTrain', 'testToTrain']) expect(finite(report.memorization[k].p5) && finite(report.memorization[k].median)).toBe(true);
    for (const c of ['MSIH', 'nonMSIH']) expect(finite(report.diversity[c].synthetic) && finite(report.diversity[c].real)).toBe(true);
    expect(report.config.checkpointMeta).toMatchObject({ round: 2, source: 'server', batchNorm: 'local', batchNormRecalibrated: true });
    expect(report.config).toMatchObject({ imageSize: 16, classes: ['MSIH', 'nonMSIH'] });
  });

  it('a version-1 server checkpoint (no config): a clear error naming --fed-config, and read with it', async () => {
    // What the server wrote before checkpoints recorded the config: the same weights and state.
    const current = decodeCheckpoint(new Uint8Array(readFileSync(checkpointFile(2))));
    const v1 = join(dir, 'round-000002-v1.fgw');
    writeFileSync(v1, encodeWeights(current.weights, { kind: 'fedgan-checkpoint', version: 1, state: current.meta.state, savedAt: '2024-12-01T00:00:00.000Z' }));
    const r = await evaluateCli(['--checkpoint', v1, '--real-train', join(dir, 'train'), '--real-test', join(dir, 'test'), '--out', join(dir, 'report-v1'), ...QUICK]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/round-000002-v1\.fgw: a version-1 server checkpoint, which does not record the GAN config \(meta\.config\); pass the server's FED_CONFIG file \(npm run evaluate -- --fed-config FILE\)/);

    const fedFile = join(dir, 'fed.yaml');
    writeFileSync(fedFile, `rounds: 2\nbatchNorm: local\nmodel:\n  imageSize: 16\n  latentDim: 8\n  generator: { baseChannels: 8 }\n  discriminator: { baseChannels: 4 }\n  batchSize: 4\n`);
    expect(parseEvaluateArgs(['--checkpoint', v1, '--fed-config', fedFile, '--real-train', 'a', '--real-test', 'b', '--per-class', '3', '--out', 'o'])).toMatchObject({ fedConfig: fedFile });
    const lines: string[] = [];
    const loaded = loadCheckpoint(v1, { fedConfig: fedFile, log: (l) => lines.push(l) });
    try {
      expect(loaded.fileVersion).toBe(1);
      expect(loaded.meta).toMatchObject({ version: 1, round: 2, batchNorm: 'local', source: 'server', config: parseGanConfig(withRecipeDefaults(MODEL)) });
      expect(loaded.recalibrated).toMatchObject({ batches: 8, batchSize: 64 });
      expect(lines.join('\n')).toMatch(/recalibrated/);
    } finally {
      loaded.gan.dispose();
    }
    writeFileSync(join(dir, 'bad-fed.yaml'), 'model:\n  imageSize: 20\n');
    expect(() => loadCheckpoint(v1, { fedConfig: join(dir, 'bad-fed.yaml') })).toThrow(/--fed-config .*bad-fed\.yaml: model\.imageSize: must be a multiple of 8/);
    expect(() => loadCheckpoint(v1, { fedConfig: join(dir, 'missing.yaml') })).toThrow(/--fed-config .*missing\.yaml cannot be read/);
  });

  it('an average-policy checkpoint is generated from as stored (no recalibration)', () => {
    const avg = join(dir, 'average.fgw');
    const current = decodeCheckpoint(new Uint8Array(readFileSync(checkpointFile(2))));
    // Re-encode the weights with policy 'average'.
    writeFileSync(avg, encodeWeights(current.weights, { ...current.meta, batchNorm: 'average' } as unknown as Record<string, unknown>));
    const loaded = loadCheckpoint(avg);
    try {
      expect(loaded.recalibrated).toBeNull();
      const stored = new Map(current.weights.tensors.map((t) => [t.name, t.data]));
      for (const t of loaded.gan.getWeights().tensors) expect(t.data, t.name).toEqual(stored.get(t.name));
    } finally {
      loaded.gan.dispose();
    }
  });
});
