import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../shared/checkpoint.ts';
import type { FederationClient, TrainFn } from '../shared/protocol/federationClient.ts';
import * as atomicFile from './atomicFile.ts';
import { loadSettings } from './config.ts';
import { main } from './main.ts';
import * as state from './state.ts';
import { CheckpointStore } from './state.ts';
import { CHECKPOINT_TEST_MODEL, stateAt, TempDirs } from './testing/checkpoints.ts';
import { getMetrics, nodeClient, startTestServer, tinyWeights, TINY_FINGERPRINT, until, type TestServer } from './testing/federation.ts';

/**
 * Issue 15, "Rounds lost after corrupt checkpoints" and the start-up part of "Storage failures are
 * invisible": checkpoints ordered by what the verified file holds, corrupt files moved aside (never deleted,
 * never counted), no silent start from round 0, orphaned temp files swept, an unwritable STATE_DIR refused
 * at start with the system's reason, a failing checkpoint write visible on /readyz.
 */

const dirs = new TempDirs('fedgan-durability-');
const servers: TestServer[] = [];
const clients: FederationClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  for (const s of servers.splice(0)) await s.close();
  dirs.removeAll();
});
const tmp = () => dirs.make();
const MODEL = CHECKPOINT_TEST_MODEL;
function storeIn(stateDir: string, keep: number, extra: Partial<state.CheckpointStoreOptions> = {}) {
  const corrupt: string[] = [];
  const warnings: string[] = [];
  const store = new CheckpointStore({
    stateDir,
    keep,
    model: MODEL,
    batchNorm: 'average',
    onCorrupt: (c) => corrupt.push(c.file.split('/').pop()!),
    warn: (m) => warnings.push(m),
    ...extra,
  });
  return { store, corrupt, warnings };
}
const ckName = (r: number) => CheckpointStore.fileName(r);
/** What a torn write or a bad disk leaves: the start of a real checkpoint of `round`. */
function tornCheckpoint(store: CheckpointStore, round: number): Uint8Array {
  return store.encode(stateAt(round), tinyWeights(round)).subarray(0, 60);
}
const ls = (d: string) => readdirSync(d).sort();

/** Two tiny hospitals that each add 1 to every weight, every round. */
function runHospitals(s: TestServer, rounds: number): Promise<unknown> {
  const train: TrainFn = async (global) => ({ weights: tinyWeights(global.tensors[0].data[0] + 1), examples: 5, dLoss: 1, gLoss: 1 });
  const cs = ['h1', 'h2'].map((h) => nodeClient(s, h, train));
  clients.push(...cs);
  for (const c of cs) void c.run();
  return until(() => s.federation.state.round >= rounds, 15_000, `${rounds} rounds`).then(() => {
    for (const c of cs) c.stop();
  });
}
async function testServer(stateDir: string, fed: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<TestServer> {
  // Updates add 1 to each weight: far above a default bound of the update norm, which is not what this file tests.
  const s = await startTestServer({ minFit: 2, minAvailable: 2, minCompletion: 2, maxUpdateNorm: 100, ...fed }, { stateDir, hospitals: ['h1', 'h2'], ...extra });
  servers.push(s);
  return s;
}

describe('checkpoints ordered by content, corrupt files moved aside', () => {
  it('a corrupt file with a higher round next to valid lower ones: resumes from the newest valid one, and new checkpoints are kept', async () => {
    const d = tmp();
    const { store, corrupt, warnings } = storeIn(d, 3);
    for (let r = 0; r <= 2; r++) await store.save(stateAt(r), tinyWeights(r));
    // Higher rounds than any valid one, as many as keepCheckpoints: by name they would fill every kept slot.
    const evidence = new Map<number, Uint8Array>();
    for (const r of [4, 9, 10]) {
      evidence.set(r, tornCheckpoint(store, r));
      writeFileSync(join(store.dir, ckName(r)), evidence.get(r)!);
    }
    const ck = await store.loadLatest(TINY_FINGERPRINT);
    expect(ck!.state.round).toBe(2);
    expect(corrupt.sort()).toEqual([ckName(10), ckName(4), ckName(9)].sort());
    // Moved aside at once, with a warning naming each; nothing deleted.
    expect(ls(store.dir)).toEqual([...[0, 1, 2].map(ckName), ...[4, 9, 10].map((r) => `${ckName(r)}.corrupt`)].sort());
    expect(warnings.filter((w) => /moved aside/.test(w))).toHaveLength(3);
    for (let r = 3; r <= 5; r++) await store.save(stateAt(r), tinyWeights(r));
    // The newest 3 VALID checkpoints are kept; round 4 did not overwrite the corrupt file of the same name.
    expect(ls(store.dir)).toEqual([...[3, 4, 5].map(ckName), ...[4, 9, 10].map((r) => `${ckName(r)}.corrupt`)].sort());
    for (const [r, bytes] of evidence) expect(new Uint8Array(readFileSync(join(store.dir, `${ckName(r)}.corrupt`)))).toEqual(bytes);
    expect(decodeCheckpoint(readFileSync(join(store.dir, ckName(4))), { expectedRound: 4 }).meta.state).toEqual(stateAt(4));
    // A fresh store (a restart) resumes from the newest.
    expect((await storeIn(d, 3).store.loadLatest(TINY_FINGERPRINT))!.state.round).toBe(5);
  });

  it('a corrupt file that appears while the server runs is moved aside before the rotation and never counted', async () => {
    const d = tmp();
    const { store, corrupt } = storeIn(d, 2);
    await store.loadLatest(TINY_FINGERPRINT);
    for (let r = 0; r <= 1; r++) await store.save(stateAt(r), tinyWeights(r));
    writeFileSync(join(store.dir, ckName(50)), 'not a checkpoint');
    writeFileSync(join(store.dir, ckName(51)), tornCheckpoint(store, 51));
    await store.save(stateAt(2), tinyWeights(2));
    expect(corrupt.sort()).toEqual([ckName(50), ckName(51)]);
    expect(ls(store.dir)).toEqual([ckName(1), ckName(2), `${ckName(50)}.corrupt`, `${ckName(51)}.corrupt`]);
    // A second corrupt file of the same name does not overwrite the first one moved aside.
    writeFileSync(join(store.dir, ckName(50)), 'again not a checkpoint');
    await store.save(stateAt(3), tinyWeights(3));
    expect(readFileSync(join(store.dir, `${ckName(50)}.corrupt`), 'utf8')).toBe('not a checkpoint');
    expect(readFileSync(join(store.dir, `${ckName(50)}.corrupt.1`), 'utf8')).toBe('again not a checkpoint');
    expect(ls(store.dir).filter((n) => n.endsWith('.fgw'))).toEqual([ckName(2), ckName(3)]);
  });

  it('a file of another model or a newer format found during rotation is left where it is and not counted', async () => {
    const d = tmp();
    const { store, warnings } = storeIn(d, 2);
    await store.loadLatest(TINY_FINGERPRINT);
    await store.save(stateAt(0), tinyWeights(0));
    const other = { ...tinyWeights(7), fingerprint: '0123456789abcdef' };
    writeFileSync(join(store.dir, ckName(40)), store.encode(stateAt(40), other));
    for (let r = 1; r <= 3; r++) await store.save(stateAt(r), tinyWeights(r));
    expect(ls(store.dir)).toEqual([ckName(2), ckName(3), ckName(40)]);
    expect(warnings.filter((w) => w.includes(ckName(40)))).toEqual([expect.stringMatching(/left where it is .*another model/)]);
  });

  it('all checkpoints corrupt: loading refuses and names every file and what is wrong with it; nothing is moved', async () => {
    const d = tmp();
    const { store } = storeIn(d, 3);
    writeFileSync(join(store.dir, ckName(17)), tornCheckpoint(store, 17));
    writeFileSync(join(store.dir, ckName(18)), 'garbage');
    const err = await store.loadLatest(TINY_FINGERPRINT).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(state.StateDirError);
    const msg = (err as Error).message;
    expect(msg).toContain(`${store.dir} holds 2 checkpoint file(s) and none of them is valid`);
    expect(msg).toMatch(new RegExp(`${ckName(17)}: truncated`));
    expect(msg).toMatch(new RegExp(`${ckName(18)}: bad-magic`));
    expect(msg).toContain('START_FRESH=1');
    expect(ls(store.dir)).toEqual([ckName(17), ckName(18)]);
  });

  it('with startFresh: the corrupt files are moved aside, loading starts from nothing, and new checkpoints are kept', async () => {
    const d = tmp();
    const { store, warnings } = storeIn(d, 3, { startFresh: true });
    for (const r of [17, 18, 19]) writeFileSync(join(store.dir, ckName(r)), tornCheckpoint(store, r));
    expect(await store.loadLatest(TINY_FINGERPRINT)).toBeNull();
    expect(warnings).toContainEqual(expect.stringMatching(/START_FRESH is set and no checkpoint .* is valid: starting from the initial weights/));
    for (let r = 0; r <= 2; r++) await store.save(stateAt(r), tinyWeights(r));
    expect(ls(store.dir)).toEqual([...[0, 1, 2].map(ckName), ...[17, 18, 19].map((r) => `${ckName(r)}.corrupt`)]);
  });

  it('startFresh never discards a valid checkpoint', async () => {
    const d = tmp();
    const { store } = storeIn(d, 3);
    for (let r = 0; r <= 1; r++) await store.save(stateAt(r), tinyWeights(r));
    writeFileSync(join(store.dir, ckName(2)), 'garbage');
    expect((await storeIn(d, 3, { startFresh: true }).store.loadLatest(TINY_FINGERPRINT))!.state.round).toBe(1);
  });
});

describe('START_FRESH and --start-fresh', () => {
  it('START_FRESH is 1/true or 0/false/empty; anything else is a configuration error naming it', () => {
    const stateDir = tmp();
    expect(loadSettings({ STATE_DIR: stateDir, START_FRESH: '1' }).startFresh).toBe(true);
    expect(loadSettings({ STATE_DIR: stateDir, START_FRESH: 'true' }).startFresh).toBe(true);
    for (const v of ['0', 'false', '', undefined]) expect(loadSettings({ STATE_DIR: stateDir, START_FRESH: v }).startFresh).toBe(false);
    expect(() => loadSettings({ STATE_DIR: stateDir, START_FRESH: 'yes please' })).toThrow('START_FRESH: must be 1 or 0 (true or false), got "yes please"');
  });

  it('main() knows --start-fresh and names any other argument', async () => {
    const stateDir = tmp();
    await expect(main({ env: { STATE_DIR: stateDir }, argv: ['--fresh'] })).rejects.toThrow('--fresh: unknown argument (known: --start-fresh)');
    expect(readdirSync(stateDir)).toEqual([]); // refused before anything was written
  });

  it('a bad TOKENS_FILE is named (a configuration error) before STATE_DIR is checked', async () => {
    const d = tmp();
    const stateDir = join(d, 'a-file');
    writeFileSync(stateDir, 'not a directory');
    const tokens = join(d, 'tokens.yaml');
    writeFileSync(tokens, '- hospital: a\n  token: short\n');
    await expect(main({ env: { STATE_DIR: stateDir, TOKENS_FILE: tokens }, log: { info() {}, warn() {}, error() {} } })).rejects.toThrow('0.token: must be at least 16 characters');
    writeFileSync(tokens, '- hospital: a\n  token: a-token-long-enough-0123\n');
    await expect(main({ env: { STATE_DIR: stateDir, TOKENS_FILE: tokens }, log: { info() {}, warn() {}, error() {} } })).rejects.toThrow(`STATE_DIR ${stateDir} is not writable`);
  });
});

describe('a server on a STATE_DIR whose checkpoints are all corrupt (17 rounds lost)', () => {
  it('refuses to start without startFresh; with it starts at 0, and the new checkpoints survive a restart', async () => {
    const d = tmp();
    const ckDir = join(d, 'checkpoints');
    mkdirSync(ckDir);
    const { store } = storeIn(tmp(), 3);
    // What the probe left: the kept checkpoints all corrupt, with round numbers above the new ones.
    for (const r of [18, 19, 20]) writeFileSync(join(ckDir, ckName(r)), tornCheckpoint(store, r));

    await expect(testServer(d, { rounds: 4, keepCheckpoints: 3 })).rejects.toThrow(/holds 3 checkpoint file\(s\) and none of them is valid/);
    expect(ls(ckDir)).toEqual([18, 19, 20].map(ckName));

    const first = await testServer(d, { rounds: 4, keepCheckpoints: 3 }, { startFresh: true });
    expect(first.federation.state.round).toBe(0);
    expect(first.logLines.some((l) => /WARN .*START_FRESH is set/.test(l))).toBe(true);
    await runHospitals(first, 4);
    expect(ls(ckDir)).toEqual([...[2, 3, 4].map(ckName), ...[18, 19, 20].map((r) => `${ckName(r)}.corrupt`)]);
    await first.close();

    const second = await testServer(d, { rounds: 4, keepCheckpoints: 3 });
    expect(second.federation.state).toMatchObject({ round: 4 });
    expect(second.federation.state.history.map((h) => h.round)).toEqual([1, 2, 3, 4]);
    expect([...second.federation.globalWeights.tensors[0].data]).toEqual([4, 4, 4, 4, 4, 4]);
    expect(second.logLines.some((l) => /resumed from .*round-000004\.fgw: 4 round\(s\) completed/.test(l))).toBe(true);
  });
});

describe('orphaned temp files', () => {
  it('are swept at start, with a log line saying how many and how many bytes; other files stay', async () => {
    const d = tmp();
    const ckDir = join(d, 'checkpoints');
    mkdirSync(ckDir);
    // Names as writeFileAtomic makes them (an old 5-character random part too), as a crash leaves them.
    const temps = [
      join(ckDir, '.round-000003.fgw.4711.m3x9k2.a8f3kd.tmp'),
      join(ckDir, '.round-000004.fgw.4711.m3x9ka.0b1c2.tmp'),
      join(ckDir, '.round-000004.fgw.88.m3x9kz.zzzzzz.tmp'),
      join(d, '.demo-tokens.yaml.12.m3x9k2.qwerty.tmp'),
      join(d, '.write-probe.12.m3x9k2.qwerty.tmp'),
    ];
    temps.forEach((f, i) => writeFileSync(f, new Uint8Array(1000 * (i + 1))));
    const keep = [join(ckDir, 'notes.tmp'), join(d, '.hidden'), join(ckDir, '.round-000003.fgw.tmp'), join(d, 'tokens.yaml')];
    for (const f of keep) writeFileSync(f, 'mine');
    const s = await testServer(d, { rounds: 1 });
    for (const f of temps) expect(existsSync(f)).toBe(false);
    for (const f of keep) expect(readFileSync(f, 'utf8')).toBe('mine');
    expect(s.logLines).toContainEqual(expect.stringMatching(/WARN .*removed 5 orphaned temp file\(s\), 15\.0 kB, left in .* by writes a crash interrupted/));
  });

  it('writeFileAtomic names its temp files so that the sweep recognises them', () => {
    expect(atomicFile.isTempName(atomicFile.tempNameFor('/x/round-000042.fgw').split('/').pop()!)).toBe(true);
    expect(atomicFile.isTempName('round-000042.fgw')).toBe(false);
  });
});

describe('an unwritable STATE_DIR at start', () => {
  const notRoot = typeof process.getuid === 'function' && process.getuid() !== 0;

  it('a file where STATE_DIR should be: refused at once, naming it', async () => {
    const d = tmp();
    const stateDir = join(d, 'state');
    writeFileSync(stateDir, 'a file, not a directory');
    const err = await testServer(stateDir, { rounds: 1 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(state.StateDirError);
    expect((err as Error).message).toBe(
      `STATE_DIR ${stateDir} is not writable: ${stateDir} exists and is not a directory. The server writes a checkpoint there after every round; mount a writable volume there or set STATE_DIR to a writable directory.`,
    );
  });

  it('a read-only or full volume (the probe write fails): refused with the system reason (injected, since the tests may run as root)', async () => {
    const d = tmp();
    const fail = (code: string, message: string) => async () => {
      throw Object.assign(new Error(`${code}: ${message}`), { code });
    };
    await expect(state.prepareStateDir(d, { probeWriter: fail('EROFS', "read-only file system, open '/x'") })).rejects.toThrow(
      `STATE_DIR ${d} is not writable: EROFS: read-only file system, open '/x'. The server writes a checkpoint there after every round; mount a writable volume there`,
    );
    await expect(state.prepareStateDir(d, { probeWriter: fail('ENOSPC', 'no space left on device, write') })).rejects.toThrow(
      `STATE_DIR ${d} is not writable: ENOSPC: no space left on device, write. The server writes a checkpoint there after every round; free space on that volume or give it more.`,
    );
    // No probe file is left behind.
    expect(ls(d)).toEqual([]);
  });

  it.runIf(notRoot)('a read-only directory (chmod 555, as a non-root user): refused with EACCES', async () => {
    const d = tmp();
    const stateDir = join(d, 'state');
    mkdirSync(stateDir, { mode: 0o555 });
    await expect(testServer(stateDir, { rounds: 1 })).rejects.toThrow(new RegExp(`STATE_DIR ${stateDir} is not writable: EACCES: permission denied, mkdir '${stateDir}/checkpoints'`));
  });
});

describe('a checkpoint write that fails (a full disk) on a running server', () => {
  it('answers /readyz 503 with the reason while it cannot write, keeps every older checkpoint, and 200 once a write succeeds', async () => {
    const d = tmp();
    let full = true;
    const attempts: string[] = [];
    // The disk is full from the checkpoint of round 2 on, until `full` is cleared.
    const writeCheckpoint = async (path: string, bytes: Uint8Array) => {
      attempts.push(path.split('/').pop()!);
      if (full && path.endsWith(ckName(2))) throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC' });
      await atomicFile.writeFileAtomic(path, bytes);
    };
    const s = await testServer(d, { rounds: 2, keepCheckpoints: 5 }, { writeCheckpoint });
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    void runHospitals(s, 2);
    await until(() => attempts.filter((a) => a === ckName(2)).length >= 2, 10_000, 'two failed writes of round 2');
    const r = await fetch(`${s.url}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.text()).toBe(`cannot write the checkpoint of round 2 to ${join(d, 'checkpoints')}: ENOSPC: no space left on device, write\n`);
    expect(s.federation.state.round).toBe(1);
    expect(ls(join(d, 'checkpoints'))).toEqual([ckName(0), ckName(1)]);
    expect((await getMetrics(`${s.url}/metrics`)).get('fedgan_checkpoint_write_failures_total')).toBeGreaterThanOrEqual(2);
    full = false;
    await until(() => s.federation.state.round >= 2, 10_000, 'round 2 saved once the disk has space');
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    expect(ls(join(d, 'checkpoints'))).toEqual([0, 1, 2].map(ckName));
  });
});
