import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The checkpoint save path on a real full disk: a tmpfs of 64 KiB mounted in a private mount namespace
 * (`unshare -m`, as root, where the machine allows it; skipped otherwise: server/durability.test.ts covers
 * the server's handling with an injected writer that fails with ENOSPC). The store's writes run in a child
 * process inside that namespace and report what they saw.
 */

const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'fedgan-disk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const canMount = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=64k none "$0"', dir], { encoding: 'utf8' }).status === 0;

const SCRIPT = `
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointStore } from '${ROOT}server/state.ts';
import { tinyWeights, TINY_FINGERPRINT } from '${ROOT}server/testing/federation.ts';
import { parseGanConfig } from '${ROOT}shared/config/ganConfig.ts';

const stateDir = process.argv[2];
const model = parseGanConfig({ imageSize: 16 });
const store = new CheckpointStore({ stateDir, keep: 2, model, batchNorm: 'average' });
const stateAt = (round) => ({ round, history: Array.from({ length: round }, (_, i) => ({ round: i + 1, participants: 1, hospitals: ['h1'], examples: 1, dLoss: 0, gLoss: 0, seconds: 0, attempts: 1, completedAt: 't' })) });
const out = {};
await store.loadLatest(TINY_FINGERPRINT);
for (let r = 0; r <= 1; r++) await store.save(stateAt(r), tinyWeights(r));
const before = readFileSync(join(store.dir, CheckpointStore.fileName(1)));
// Fill the volume: whatever the file system still takes.
try { writeFileSync(join(stateDir, 'fill'), new Uint8Array(1 << 20)); } catch (e) { out.fill = e.code; }
try { await store.save(stateAt(2), tinyWeights(2)); out.save = 'ok'; } catch (e) { out.save = e.message; }
out.afterFailure = readdirSync(store.dir).sort();
out.round1Intact = Buffer.compare(before, readFileSync(join(store.dir, CheckpointStore.fileName(1)))) === 0;
rmSync(join(stateDir, 'fill'));
await store.save(stateAt(2), tinyWeights(2));
out.afterSpace = readdirSync(store.dir).sort();
out.resumed = (await new CheckpointStore({ stateDir, keep: 2, model, batchNorm: 'average' }).loadLatest(TINY_FINGERPRINT)).state.round;
console.log('RESULT ' + JSON.stringify(out));
`;

describe('a checkpoint write on a full volume (real tmpfs)', () => {
  it.runIf(canMount)('fails with ENOSPC, leaves no temp file and every older checkpoint intact; once there is space the next write succeeds', () => {
    const mountPoint = join(dir, 'vol');
    mkdirSync(mountPoint);
    const script = join(dir, 'fill.mts');
    writeFileSync(script, SCRIPT);
    const r = spawnSync(
      'unshare',
      ['-m', 'sh', '-c', 'mount -t tmpfs -o size=64k none "$0" && exec "$@"', mountPoint, process.execPath, '--import', 'tsx', script, mountPoint],
      { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
    );
    const line = /RESULT (.*)/.exec(r.stdout)?.[1];
    expect(line, r.stdout + r.stderr).toBeDefined();
    const out = JSON.parse(line!);
    expect(out.fill).toBe('ENOSPC');
    expect(out.save).toMatch(/^ENOSPC: no space left on device/);
    expect(out.afterFailure).toEqual(['round-000000.fgw', 'round-000001.fgw']);
    expect(out.round1Intact).toBe(true);
    expect(out.afterSpace).toEqual(['round-000001.fgw', 'round-000002.fgw']);
    expect(out.resumed).toBe(2);
  });
});
