import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../shared/checkpoint.ts';
import { encodeWeights } from '../shared/codec/weightsCodec.ts';
import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { writeFileAtomic } from './atomicFile.ts';
import { CheckpointStore, StateDirError, type CorruptCheckpoint } from './state.ts';
import { CHECKPOINT_TEST_MODEL, stateAt, TempDirs } from './testing/checkpoints.ts';
import { getMetrics, startTestServer, tinyWeights, TINY_FINGERPRINT, type TestServer } from './testing/federation.ts';

const dirs = new TempDirs('fedgan-state-');
let server: TestServer | undefined;
afterEach(async () => {
  await server?.cleanup();
  server = undefined;
  dirs.removeAll();
});
const tmp = () => dirs.make();
const MODEL = CHECKPOINT_TEST_MODEL;
function storeIn(stateDir: string, keep: number, onCorrupt?: (c: CorruptCheckpoint) => void, batchNorm: BatchNormPolicy = 'average'): CheckpointStore {
  return new CheckpointStore({ stateDir, keep, model: MODEL, batchNorm, onCorrupt });
}

describe('CheckpointStore', () => {
  it('saves atomically, keeps the newest K, and loads the newest', async () => {
    const d = tmp();
    const store = storeIn(d, 3);
    for (let r = 0; r <= 5; r++) await store.save(stateAt(r), tinyWeights(r));
    expect(readdirSync(store.dir).sort()).toEqual(['round-000003.fgw', 'round-000004.fgw', 'round-000005.fgw']);
    const ck = await store.loadLatest(TINY_FINGERPRINT);
    expect(ck!.state).toEqual(stateAt(5));
    expect([...ck!.weights.tensors[1].data]).toEqual([5, 5, 5]);
  });

  it('never deletes the rounds a write names in keep (the best-quality model) while newer checkpoints rotate', async () => {
    const d = tmp();
    const store = storeIn(d, 2);
    for (let r = 0; r <= 3; r++) await store.write(r, store.encode(stateAt(r), tinyWeights(r)), r >= 1 ? { keep: [1] } : {});
    expect(readdirSync(store.dir).sort()).toEqual(['round-000001.fgw', 'round-000002.fgw', 'round-000003.fgw']);
    for (let r = 4; r <= 6; r++) await store.write(r, store.encode(stateAt(r), tinyWeights(r)), { keep: [1] });
    expect(readdirSync(store.dir).sort()).toEqual(['round-000001.fgw', 'round-000005.fgw', 'round-000006.fgw']);
    // The kept checkpoint is intact; loading still starts from the newest.
    expect(decodeCheckpoint(readFileSync(join(store.dir, 'round-000001.fgw')), { expectedRound: 1 }).weights.tensors[1].data[0]).toBe(1);
    expect((await store.loadLatest(TINY_FINGERPRINT))!.state.round).toBe(6);
    // A new best: the old one rotates out with the next write.
    await store.write(7, store.encode(stateAt(7), tinyWeights(7)), { keep: [6] });
    expect(readdirSync(store.dir).sort()).toEqual(['round-000006.fgw', 'round-000007.fgw']);
  });

  it('reports and skips a corrupt checkpoint (bit flip, truncation, garbage), falling back to the previous one', async () => {
    const d = tmp();
    const corrupt: string[] = [];
    const store = storeIn(d, 10, (c) => corrupt.push(`${c.file.split('/').pop()}: ${c.reason}`));
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
    // Kept as evidence, out of the way of the rounds to come.
    expect(readdirSync(store.dir).sort()).toEqual(['round-000000.fgw', 'round-000001.fgw', 'round-000002.fgw.corrupt', 'round-000003.fgw.corrupt', 'round-000004.fgw.corrupt']);
  });

  it('refuses checkpoints of another model instead of silently starting over', async () => {
    const d = tmp();
    const store = storeIn(d, 3);
    await store.save(stateAt(0), tinyWeights(0));
    await expect(store.loadLatest('0123456789abcdef')).rejects.toThrow(/another model .* STATE_DIR/);
    // A refusal for the operator (server/main.ts prints it without a stack trace); the file stays where it is.
    await expect(store.loadLatest('0123456789abcdef')).rejects.toBeInstanceOf(StateDirError);
    expect(readdirSync(store.dir)).toEqual(['round-000000.fgw']);
  });

  it('writes the one checkpoint format: the configured model, the round, the batch-norm policy, source "server" and the state', async () => {
    const d = tmp();
    const store = storeIn(d, 3, undefined, 'local');
    const file = await store.save(stateAt(2), tinyWeights(7));
    const { meta, weights, fileVersion } = decodeCheckpoint(new Uint8Array(readFileSync(file)));
    expect(fileVersion).toBe(2);
    expect(meta).toMatchObject({ kind: 'fedgan-checkpoint', version: 2, config: MODEL, round: 2, batchNorm: 'local', source: 'server', state: stateAt(2) });
    expect([...weights.tensors[0].data]).toEqual([7, 7, 7, 7, 7, 7]);
    const ck = await store.loadLatest(TINY_FINGERPRINT);
    expect(ck).toMatchObject({ state: stateAt(2), fileVersion: 2, meta: { config: MODEL, batchNorm: 'local' } });
  });

  it('resumes from a version-1 server checkpoint (no config in it) with the configured model and policy', async () => {
    const d = tmp();
    const store = storeIn(d, 5, undefined, 'local');
    // What server/state.ts wrote before the format recorded the config.
    for (const r of [0, 1]) {
      writeFileSync(join(store.dir, CheckpointStore.fileName(r)), encodeWeights(tinyWeights(r), { kind: 'fedgan-checkpoint', version: 1, state: stateAt(r), savedAt: '2024-12-01T00:00:00.000Z' }));
    }
    const ck = await store.loadLatest(TINY_FINGERPRINT);
    expect(ck).toMatchObject({ state: stateAt(1), fileVersion: 1, meta: { version: 1, config: MODEL, batchNorm: 'local', round: 1, source: 'server', createdAt: '2024-12-01T00:00:00.000Z' } });
    expect([...ck!.weights.tensors[0].data]).toEqual([1, 1, 1, 1, 1, 1]);
    // The next checkpoint it writes is version 2.
    const next = await store.save(stateAt(2), tinyWeights(2));
    expect(decodeCheckpoint(new Uint8Array(readFileSync(next))).meta).toMatchObject({ version: 2, config: MODEL, round: 2 });
  });

  it('skips files that are intact but not server checkpoints, and refuses a newer format or an unreadable config instead of starting over', async () => {
    const d = tmp();
    const corrupt: string[] = [];
    const store = storeIn(d, 10, (c) => corrupt.push(`${c.file.split('/').pop()}: ${c.reason}`));
    await store.save(stateAt(0), tinyWeights(0));
    const f = (r: number) => join(store.dir, CheckpointStore.fileName(r));
    writeFileSync(f(1), encodeWeights(tinyWeights(1), { kind: 'fedgan-checkpoint', version: 2, config: MODEL, round: 1, batchNorm: 'average', source: 'simulation', createdAt: 't' }));
    writeFileSync(f(2), encodeWeights(tinyWeights(2), { kind: 'fedgan-checkpoint', version: 2, config: MODEL, round: 3, batchNorm: 'average', source: 'server', createdAt: 't', state: stateAt(3) }));
    writeFileSync(f(3), encodeWeights(tinyWeights(3), { kind: 'something-else' }));
    expect((await store.loadLatest(TINY_FINGERPRINT))!.state).toEqual(stateAt(0));
    expect(corrupt).toEqual([
      `round-000003.fgw: not-checkpoint: ${f(3)}: not a fedgan checkpoint (meta.kind is "something-else", expected "fedgan-checkpoint")`,
      `round-000002.fgw: round-mismatch: ${f(2)} should hold round 2 but its meta says round 3`,
      'round-000001.fgw: no federation state in its meta (a checkpoint written by simulation, not by the server)',
    ]);
    writeFileSync(f(4), encodeWeights(tinyWeights(4), { kind: 'fedgan-checkpoint', version: 3 }));
    await expect(store.loadLatest(TINY_FINGERPRINT)).rejects.toThrow(/round-000004\.fgw: unsupported checkpoint version 3 .*; move .*checkpoints away or use another STATE_DIR/);
    writeFileSync(f(4), encodeWeights(tinyWeights(4), { kind: 'fedgan-checkpoint', version: 2, config: { ...MODEL, imageSize: 20 }, round: 4, batchNorm: 'average', source: 'server', createdAt: 't', state: stateAt(4) }));
    await expect(store.loadLatest(TINY_FINGERPRINT)).rejects.toThrow(/invalid GAN config \(meta\.config\) of .*round-000004\.fgw: imageSize: must be a multiple of 8 .*; move .*checkpoints away/);
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
    const store = storeIn(d, 10);
    for (let r = 0; r <= 2; r++) await store.save(stateAt(r), tinyWeights(r));
    writeFileSync(join(store.dir, CheckpointStore.fileName(2)), 'garbage');
    server = await startTestServer({ rounds: 5 }, { stateDir: d });
    expect(server.federation.state).toEqual(stateAt(1));
    expect([...server.federation.globalWeights.tensors[0].data]).toEqual([1, 1, 1, 1, 1, 1]);
    expect(server.logLines.some((l) => /ERROR corrupt checkpoint .*round-000002\.fgw skipped/.test(l))).toBe(true);
    expect((await getMetrics(`${server.url}/metrics`)).get('fedgan_checkpoints_corrupt_total')).toBe(1);
  });
});
