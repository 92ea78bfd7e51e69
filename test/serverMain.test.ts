import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { DEFAULTS, ENV } from '../server/config.ts';
import { FederationClient } from '../shared/protocol/federationClient.ts';
import { getJson } from '../server/testing/federation.ts';

/** server/main.ts as a process: configuration errors exit at once naming the field; demo tokens and join links. */

const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'fedgan-main-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runMainSync(env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/main.ts'], { cwd: ROOT, env: { ...process.env, HOST: '127.0.0.1', PORT: '0', STATE_DIR: join(dir, 'unused'), ...env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('server/main.ts', () => {
  it('exits at once with code 2 and a message naming each bad field of FED_CONFIG', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'rounds: 0\nminFit: 3\naggregator:\n  type: mean\nmodel:\n  imageSize: 12\n');
    const r = runMainSync({ [ENV.FED_CONFIG]: bad });
    expect(r.code).toBe(2);
    expect(r.out).toContain('rounds: must be at least 1');
    expect(r.out).toContain('aggregator.type');
    expect(r.out).toContain('model.imageSize');
    expect(r.out).toContain(bad);
  });

  it('names a bad PORT, an unreadable FED_CONFIG and a bad TOKENS_FILE entry', () => {
    expect(runMainSync({ PORT: 'eighty' })).toMatchObject({ code: 2, out: expect.stringContaining('PORT: must be an integer port') });
    expect(runMainSync({ FED_CONFIG: join(dir, 'missing.yaml') })).toMatchObject({ code: 2, out: expect.stringContaining('FED_CONFIG: cannot read') });
    const tokens = join(dir, 'tokens.yaml');
    writeFileSync(tokens, '- hospital: a\n  token: short\n');
    expect(runMainSync({ TOKENS_FILE: tokens })).toMatchObject({ code: 2, out: expect.stringContaining('0.token: must be at least 16 characters') });
    writeFileSync(tokens, '[]\n');
    expect(runMainSync({ TOKENS_FILE: tokens })).toMatchObject({ code: 2, out: expect.stringContaining('never runs open') });
  });

  it('without TOKENS_FILE generates demo tokens once, prints join links, and builds the configured GAN', async () => {
    const stateDir = join(dir, 'state');
    const fed = join(dir, 'fed.json');
    writeFileSync(fed, JSON.stringify({ rounds: 1, model: { imageSize: 16, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 } } }));
    const start = async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
        cwd: ROOT,
        env: { ...process.env, HOST: '127.0.0.1', PORT: '0', STATE_DIR: stateDir, FED_CONFIG: fed, TOKENS_FILE: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const end = Date.now() + 60_000;
      while (!/ready: model/.test(out)) {
        if (child.exitCode !== null || Date.now() > end) throw new Error(`server did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(out)![1]);
      return { child, out: () => out, port };
    };
    const a = await start();
    const links = [...a.out().matchAll(/join link for (\S+): (http:\/\/localhost:\d+\/#token=(\S+))/g)];
    expect(links.map((l) => l[1])).toEqual([...DEFAULTS.demoHospitals]);
    const tokenFile = join(stateDir, DEFAULTS.demoTokensFile);
    expect(existsSync(tokenFile)).toBe(true);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const status = await getJson(`http://127.0.0.1:${a.port}/api/status`);
    expect(status.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(status.parameters).toBeGreaterThan(1000);
    // The printed token works.
    const c = new FederationClient({
      url: `ws://127.0.0.1:${a.port}/ws`,
      token: decodeURIComponent(links[0][3]),
      train: async () => {
        throw new Error('not training here');
      },
      createSocket: (u) => new WebSocket(u),
    });
    const welcomed = new Promise((res) => c.on((e) => e.type === 'connected' && res(e.welcome)));
    void c.run();
    expect(await welcomed).toMatchObject({ hospital: 'hospital-a', protocol: 2, fingerprint: status.fingerprint });
    c.stop();
    a.child.kill('SIGTERM');
    await new Promise((r) => a.child.once('exit', r));
    // A restart keeps the same tokens and resumes from the round-0 checkpoint (same initial model).
    const b = await start();
    expect(b.out()).toContain('using demo tokens');
    expect(b.out()).toContain(links[0][3]);
    expect(b.out()).toMatch(/resumed from .*round-000000\.fgw/);
    b.child.kill('SIGTERM');
    await new Promise((r) => b.child.once('exit', r));
  });
});
