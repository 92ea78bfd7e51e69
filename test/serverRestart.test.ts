import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeWeights } from '../shared/codec/weightsCodec.ts';
import type { FederationClient, TrainFn } from '../shared/protocol/federationClient.ts';
import { getJson, nodeClient, TEST_OPERATOR_TOKEN, tinyWeights, tokenOf, until } from '../server/testing/federation.ts';

/**
 * The server as a process (server/main.ts via test/fixtures/tinyServer.ts), killed with SIGKILL in the
 * middle of a round, then restarted on the same STATE_DIR: it resumes after the last completed round,
 * with the history intact, and the clients (shared/protocol/federationClient.ts) reconnect on their own.
 */

const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'fedgan-restart-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

function startServer(env: Record<string, string>): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/tinyServer.ts'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((res, rej) => {
    const t = setInterval(() => {
      if (/ready: model/.test(out)) {
        clearInterval(t);
        res({ child, output: () => out });
      } else if (child.exitCode !== null) {
        clearInterval(t);
        rej(new Error(`server exited ${child.exitCode}: ${out}`));
      }
    }, 20);
  });
}

describe('a spawned server killed with SIGKILL mid-round', () => {
  it('restarts from the last completed round with its history intact', async () => {
    const port = await freePort();
    const stateDir = join(dir, 'state');
    const tokensFile = join(dir, 'tokens.yaml');
    writeFileSync(tokensFile, ['h1', 'h2'].map((h) => `- hospital: ${h}\n  token: ${tokenOf(h)}\n`).join(''));
    const fedFile = join(dir, 'fed.yaml');
    writeFileSync(fedFile, 'rounds: 4\nminFit: 2\nminAvailable: 2\nminCompletion: 2\nroundDeadlineSeconds: 30\nmaxUpdateNorm: null\nmodel:\n  imageSize: 16\n'); // hand-made weights jump by 1 a round: no model-derived norm bound
    // OPERATOR_TOKEN: getJson reads the full /api/status (hospital names) as the operator.
    const env = { PORT: String(port), HOST: '127.0.0.1', STATE_DIR: stateDir, TOKENS_FILE: tokensFile, FED_CONFIG: fedFile, OPERATOR_TOKEN: TEST_OPERATOR_TOKEN };

    const first = await startServer(env);
    const base = `http://127.0.0.1:${port}`;
    let hang = true;
    let inRound3 = 0;
    const train: TrainFn = async (global, cfg, _progress, signal) => {
      if (cfg.round === 3 && hang) {
        inRound3++;
        await new Promise((_, rej) => signal.addEventListener('abort', () => rej(signal.reason)));
      }
      return { weights: tinyWeights(global.tensors[0].data[0] + 1), examples: 10, dLoss: cfg.round, gLoss: 1 };
    };
    const clients: FederationClient[] = ['h1', 'h2'].map((h) => nodeClient({ wsUrl: `ws://127.0.0.1:${port}/ws` }, h, train, { reconnect: { initialMs: 100, maxMs: 400 } }));
    const runs = clients.map((c) => c.run());
    await until(() => inRound3 === 2, 20_000, 'both hospitals training round 3');
    const before = await getJson(`${base}/api/status`);
    expect(before).toMatchObject({ round: 2, phase: 'training', sampled: ['h1', 'h2'] });
    expect(before.history).toHaveLength(2);

    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    expect(readdirSync(join(stateDir, 'checkpoints')).sort()).toEqual(['round-000000.fgw', 'round-000001.fgw', 'round-000002.fgw']);

    hang = false;
    const second = await startServer(env);
    expect(second.output()).toMatch(/resumed from .*round-000002\.fgw: 2 round\(s\) completed/);
    const results = await Promise.all(runs);
    expect(results.map((r) => r.rounds)).toEqual([4, 4]);
    const after = await getJson(`${base}/api/status`);
    expect(after.round).toBe(4);
    expect(after.history.map((h: { round: number }) => h.round)).toEqual([1, 2, 3, 4]);
    // The rounds completed before the kill are exactly as they were.
    expect(after.history.slice(0, 2)).toEqual(before.history);
    const r = await fetch(`${base}/metrics`);
    expect(await r.text()).toMatch(/fedgan_round 4/);
    second.child.kill('SIGTERM');
    expect(await new Promise((res) => second.child.once('exit', res))).toBe(0);
    const ck = readdirSync(join(stateDir, 'checkpoints')).sort();
    expect(ck.at(-1)).toBe('round-000004.fgw');
    // Each round added 1 to every weight: nothing was lost or applied twice.
    const last = decodeWeights(new Uint8Array(readFileSync(join(stateDir, 'checkpoints', 'round-000004.fgw')))).weights;
    expect([...last.tensors[0].data]).toEqual([4, 4, 4, 4, 4, 4]);
  });
});
