/**
 * The operator console's view of the global model (docs/console-api.md, "The global model"), on a real
 * server on loopback with a real tiny GAN under FedBN: after each new global model the server renders a
 * sample grid itself (tfjs, the generator's batch-norm statistics recalibrated), keeps the last N, and the
 * checkpoint the console downloads is accepted by the evaluator's loader (eval/checkpoint.ts, what
 * `npm run evaluate` runs).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../eval/checkpoint.ts';
import { initNodeBackend } from '../node/nodeBackend.ts';
import type { GanConfig } from '../shared/config/ganConfig.ts';
import { createGan } from '../shared/gan/gan.ts';
import type { WeightSet } from '../shared/weights.ts';
import { getMetrics, nodeClient, startTestServer, TEST_OPERATOR_TOKEN, type TestServer } from '../server/testing/federation.ts';

const MODEL = { gan: 'acgan', imageSize: 16, latentDim: 8, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 }, batchSize: 4 } as const;
const AUTH = { Authorization: `Bearer ${TEST_OPERATOR_TOKEN}` };

let server: TestServer;
let dir: string;
const rendered: number[] = [];
/** The longest the test's event loop (the server's) waited while the federation ran and its grids rendered. */
let maxLoopDelayMs = 0;

/** A "training" that moves every weight of the global model by `step` (a model that changes, without the cost of training). */
const shifted = (g: WeightSet, step: number): WeightSet => ({ fingerprint: g.fingerprint, tensors: g.tensors.map((t) => ({ name: t.name, shape: [...t.shape], data: t.data.map((v) => v + step) })) });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedgan-console-model-'));
  await initNodeBackend();
  server = await startTestServer(
    { rounds: 3, minAvailable: 1, minFit: 1, minCompletion: 1, localSteps: 1, batchNorm: 'local', model: MODEL, quality: { everyRounds: 0 } },
    {
      hospitals: ['h1'],
      sampleGrids: { keep: 2, perClass: 3 },
      initialWeights: async (cfg: GanConfig) => {
        const gan = createGan(cfg);
        const w = gan.getWeights();
        gan.dispose();
        return w;
      },
    },
  );
  const c = nodeClient(server, 'h1', async (global, cfg) => {
    // Each round's grid is rendered before the next round's update arrives (one at a time, none skipped here).
    await server.samples.settled();
    rendered.push(...server.samples.list().filter((r) => !rendered.includes(r)));
    return { weights: shifted(global, 0.05 * cfg.round), examples: 8, dLoss: 1, gLoss: 1 };
  });
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  await c.run();
  await server.samples.settled();
  delay.disable();
  maxLoopDelayMs = delay.max / 1e6;
}, 120_000);

afterAll(async () => {
  await server?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function png(url: string): Promise<PNG> {
  const r = await fetch(server.url + url, { headers: AUTH });
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toBe('image/png');
  return PNG.sync.read(Buffer.from(await r.arrayBuffer()));
}

describe('the global model in the console', () => {
  it('renders a sample grid after each new global model and keeps the last N', async () => {
    const lines = server.logLines.filter((l) => /sample grid/.test(l));
    expect(lines.map((l) => l.replace(/in \d+ ms/, 'in … ms'))).toEqual([1, 2, 3].map((r) => `INFO sample grid of round ${r} rendered in … ms (3 per class, tfjs in a worker thread)`));
    // Rendered off the event loop: the first grid (worker start, tfjs, building the GAN) takes seconds, the loop never waited that long.
    expect(Math.max(...lines.map((l) => Number(/in (\d+) ms/.exec(l)![1])))).toBeGreaterThan(maxLoopDelayMs);
    expect(maxLoopDelayMs).toBeLessThan(1000);
    expect(rendered).toEqual([1, 2]);
    const list = (await (await fetch(`${server.url}/api/console/samples`, { headers: AUTH })).json()).samples;
    expect(list).toEqual([
      { round: 3, url: '/api/console/samples/3.png' },
      { round: 2, url: '/api/console/samples/2.png' },
    ]);
    // One row per class (2 classes), 3 tiles per class, 16 px tiles with a 2 px border.
    const g3 = await png(list[0].url);
    const g2 = await png(list[1].url);
    expect([g3.width, g3.height]).toEqual([3 * 16 + 4 * 2, 2 * 16 + 3 * 2]);
    // The model changed between rounds 2 and 3: so did its grid (same latents).
    expect(Buffer.compare(g3.data, g2.data)).not.toBe(0);
    // Round 1's was pruned.
    expect((await fetch(`${server.url}/api/console/samples/1.png`, { headers: AUTH })).status).toBe(404);
    expect((await fetch(`${server.url}/api/console/samples/3.png`)).status).toBe(401);
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_sample_grid_round')).toBe(3);
    expect(m.get('fedgan_sample_grid_seconds')).toBeGreaterThan(0);
  });

  it('downloads a checkpoint the evaluator loads (FedBN: batch-norm recalibrated)', async () => {
    const r = await fetch(`${server.url}/api/console/checkpoint`, { headers: AUTH });
    expect(r.status).toBe(200);
    const file = join(dir, 'downloaded.fgw');
    writeFileSync(file, new Uint8Array(await r.arrayBuffer()));
    const loaded = loadCheckpoint(file, { log: () => {} });
    try {
      expect(loaded.meta.round).toBe(3);
      expect(loaded.meta.batchNorm).toBe('local');
      expect(loaded.config).toMatchObject({ gan: 'acgan', imageSize: 16 });
      expect(loaded.recalibrated).not.toBeNull();
      expect(loaded.gan.fingerprint).toBe(server.federation.fingerprint);
    } finally {
      loaded.gan.dispose();
    }
  });
});
