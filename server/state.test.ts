import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from './atomicFile.ts';
import { CheckpointStore, type FederationState, type HistoryEntry } from './state.ts';
import { getMetrics, startTestServer, tinyWeights, TINY_FINGERPRINT, type TestServer } from '../test/helpers/federation.ts';

const dirs: string[] = [];
let server: TestServer | undefined;
afterEach(async () => {
  await server?.cleanup();
  server = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fedgan-state-'));
  dirs.push(d);
  return d;
}
function entry(round: number): HistoryEntry {
  return { round, participants: 2, hospitals: ['h1', 'h2'], examples: 20, dLoss: 0.5, gLoss: 1.5, seconds: 1, attempts: 1, completedAt: '2025-01-01T00:00:00.000Z' };
}
function stateAt(round: number): FederationState {
  return { round, history: Array.from({ length: round }, (_, i) => entry(i + 1)) };
}

describe('CheckpointStore', () => {
  it('saves atomically, keeps the newest K, and loads the newest', async () => {
    const d = tmp();
    const store = new CheckpointStore(d, 3);
    for (let r = 0; r <= 5; r++) await store.save(stateAt(r), tinyWeights(r));
    expect(readdirSync(store.dir).sort()).toEqual(['round-000003.fgw', 'round-000004.fgw', 'round-000005.fgw']);
    const ck = await store.loadLatest(TINY_FINGERPRINT);
    expect(ck!.state).toEqual(stateAt(5));
    expect([...ck!.weights.tensors[1].data]).toEqual([5, 5, 5]);
  });

  it('reports and skips a corrupt checkpoint (bit flip, truncation, garbage), falling back to the previous one', async () => {
    const d = tmp();
    const corrupt: string[] = [];
    const store = new CheckpointStore(d, 10, (c) => corrupt.push(`${c.file.split('/').pop()}: ${c.reason}`));
    for (let r = 0; r <= 4; r++) await store.save(stateAt(r), tinyWeights(r));
    const f = (r: number) => join(store.dir, CheckpointStore.fileName(r));
    const bytes = readFileSync(f(4));
    bytes[bytes.length - 9] ^= 0x10; // a flipped bit in the data
    writeFileSync(f(4), bytes);
    writeFileSync(f(3), readFileSync(f(3)).subarray(0, 50)); // torn write
    writeFileSync(f(2), 'not a checkpoint at all');
    const ck = await store.loadLatest(TINY_FINGERPRINT);
    expect(ck!.state.round).toBe(1);
    expect(corrupt).toHaveLength(3);
    expect(corrupt[0]).toMatch(/^round-000004\.fgw: checksum/);
    expect(corrupt[1]).toMatch(/^round-000003\.fgw: truncated/);
    expect(corrupt[2]).toMatch(/^round-000002\.fgw: bad-magic/);
  });

  it('refuses checkpoints of another model instead of silently starting over', async () => {
    const d = tmp();
    const store = new CheckpointStore(d, 3);
    await store.save(stateAt(0), tinyWeights(0));
    await expect(store.loadLatest('0123456789abcdef')).rejects.toThrow(/another model .* STATE_DIR/);
  });

  it('writeFileAtomic leaves no temp file and replaces the target', async () => {
    const d = tmp();
    const f = join(d, 'x.txt');
    await writeFileAtomic(f, 'one');
    await writeFileAtomic(f, [new Uint8Array([116, 119, 111])]);
    expect(readFileSync(f, 'utf8')).toBe('two');
    expect(readdirSync(d)).toEqual(['x.txt']);
  });

  it('a server resumes past a corrupt newest checkpoint, reports it and counts it in /metrics', async () => {
    const d = tmp();
    const store = new CheckpointStore(d, 10);
    for (let r = 0; r <= 2; r++) await store.save(stateAt(r), tinyWeights(r));
    writeFileSync(join(store.dir, CheckpointStore.fileName(2)), 'garbage');
    server = await startTestServer({ rounds: 5 }, { stateDir: d });
    expect(server.federation.state).toEqual(stateAt(1));
    expect([...server.federation.globalWeights.tensors[0].data]).toEqual([1, 1, 1, 1, 1, 1]);
    expect(server.logLines.some((l) => /ERROR corrupt checkpoint .*round-000002\.fgw skipped/.test(l))).toBe(true);
    expect((await getMetrics(`${server.url}/metrics`)).get('fedgan_checkpoints_corrupt_total')).toBe(1);
  });
});
