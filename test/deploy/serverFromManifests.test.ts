import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { sha256Hex } from '../../server/auth.ts';
import { ENV } from '../../server/config.ts';
import { parseFedConfigText } from '../../shared/config/fedConfig.ts';
import { FederationClient } from '../../shared/protocol/federationClient.ts';
import { parseDockerfile } from '../helpers/dockerfile.ts';
import type { K8sObject } from '../helpers/kustomize.ts';
import { find, podSpec, rendered, ROOT } from './k8sFiles.ts';

/**
 * The server started as the prod Deployment starts it: the image's CMD and ENV, then exactly the
 * container's env, with a temp dir standing in for each volume (the ConfigMap's federation config written
 * as its file, a tokens Secret rendered as its file the way docs/deploy.md makes it, an empty dir for the
 * PersistentVolumeClaim and one for the /tmp emptyDir). It must pass the Deployment's own probes.
 *
 * Differences from the pod, and only these: PORT is a free port and HOST is 127.0.0.1 (not 8080 on all
 * interfaces, so that tests can run side by side); paths under a mount point are rewritten to its temp dir;
 * TMPDIR points at the /tmp stand-in (in the pod /tmp *is* that volume); the image's WORKDIR /app is the
 * repository root, which holds the files the image copies at the same relative paths.
 */

const dir = mkdtempSync(join(tmpdir(), 'fedgan-k8s-run-'));
let child: ChildProcess | undefined;
afterAll(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

async function httpStatus(url: string): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(5000) })).status;
  } catch {
    return 0;
  }
}

describe('the server as the prod Deployment runs it', () => {
  it('starts with exactly the env and files the manifests provide, passes its probes, and uses each mount', async () => {
    const objs = rendered('prod');
    const deployment = find(objs, 'Deployment', 'fedgan');
    const pod = podSpec(deployment);
    const [c] = pod.containers;
    const image = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).stages.at(-1)!;
    const cmd = image.instructions.filter((i) => i.keyword === 'CMD').at(-1)!.json!;

    // One temp dir per volume, filled as the kubelet would.
    const tokens = { 'hospital-a': randomBytes(24).toString('hex'), 'hospital-b': randomBytes(24).toString('hex') };
    const mountDir = new Map<string, string>();
    for (const m of c.volumeMounts!) {
      const vol = pod.volumes!.find((v) => v.name === m.name);
      const d = join(dir, 'volumes', m.name);
      mkdirSync(d, { recursive: true });
      mountDir.set(m.mountPath, d);
      if (vol.configMap) {
        const cm = find(objs, 'ConfigMap', vol.configMap.name) as K8sObject & { data: Record<string, string> };
        for (const it of vol.configMap.items ?? Object.keys(cm.data).map((k) => ({ key: k, path: k }))) writeFileSync(join(d, it.path), cm.data[it.key]);
      } else if (vol.secret) {
        expect(vol.secret.secretName).toBe('fedgan-tokens');
        // As docs/deploy.md makes it: only SHA-256 hashes of the tokens.
        const text = Object.entries(tokens)
          .map(([h, t]) => `- hospital: ${h}\n  sha256: ${sha256Hex(t)}\n`)
          .join('');
        const [it] = vol.secret.items;
        expect(it.key).toBe('tokens.yaml');
        writeFileSync(join(d, it.path), text);
        chmodSync(join(d, it.path), vol.secret.defaultMode);
      } else expect(vol.persistentVolumeClaim ?? vol.emptyDir, m.name).toBeDefined();
    }
    const onVolume = (v: string) => {
      for (const [mp, d] of mountDir) if (v === mp || v.startsWith(mp + '/')) return join(d, posix.relative(mp, v));
      return v;
    };

    const port = await freePort();
    const env: Record<string, string> = {};
    for (const ins of image.instructions) for (const [k, v] of ins.env ?? []) env[k] = onVolume(v);
    // Secrets referenced by the env, as the operator creates them (docs/deploy.md): the operator's token.
    const operatorToken = randomBytes(24).toString('hex');
    const secrets: Record<string, Record<string, string>> = { 'fedgan-operator': { token: operatorToken } };
    for (const e of c.env!) {
      if (e.value !== undefined) env[e.name] = onVolume(e.value);
      else if (e.valueFrom?.secretKeyRef) {
        const ref = e.valueFrom.secretKeyRef;
        expect(secrets[ref.name]?.[ref.key], `${e.name}: Secret ${ref.name} key ${ref.key}`).toBeDefined();
        env[e.name] = secrets[ref.name][ref.key];
      } else throw new Error(`env ${e.name}: only values and Secret keys are modelled here`);
    }
    env[ENV.PORT] = String(port);
    env[ENV.HOST] = '127.0.0.1';
    env.TMPDIR = mountDir.get('/tmp')!;

    expect(cmd[0]).toBe('node');
    let out = '';
    child = spawn(process.execPath, cmd.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (b) => (out += b));
    child.stderr!.on('data', (b) => (out += b));

    // The kubelet's view: readiness until it answers 200, liveness on the same port.
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 90_000;
    while ((await httpStatus(base + c.readinessProbe.httpGet.path)) !== 200) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`server never became ready:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await httpStatus(base + c.livenessProbe.httpGet.path)).toBe(200);

    // Each mount was used: the tokens and config files, the state volume, the /tmp volume.
    expect(out).toContain(`2 hospital(s) from ${ENV.TOKENS_FILE} ${env[ENV.TOKENS_FILE]}: hospital-a, hospital-b`);
    const status = (await (await fetch(`${base}/api/status`)).json()) as { config: unknown; view?: string };
    // OPERATOR_TOKEN from its Secret opens the operator's view; without it, the public one.
    expect(status.view).not.toBe('operator');
    const full = (await (await fetch(`${base}/api/status`, { headers: { Authorization: `Bearer ${operatorToken}` } })).json()) as { view: string };
    expect(full.view).toBe('operator');
    expect(status.config).toEqual(JSON.parse(JSON.stringify(parseFedConfigText(readFileSync(env[ENV.FED_CONFIG], 'utf8'), 'federation.yaml'))));
    expect(readdirSync(join(env[ENV.STATE_DIR], 'checkpoints'))).toContain('round-000000.fgw');
    expect(readdirSync(env.TMPDIR).some((f) => f.startsWith('tsx'))).toBe(true);

    // A hospital holding a token whose hash is in the Secret is let in.
    const client = new FederationClient({
      url: `ws://127.0.0.1:${port}/ws`,
      token: tokens['hospital-b'],
      train: async () => {
        throw new Error('not training here');
      },
      createSocket: (u) => new WebSocket(u),
    });
    const welcomed = new Promise((res) => client.on((e) => e.type === 'connected' && res(e.welcome)));
    void client.run();
    expect(await welcomed).toMatchObject({ hospital: 'hospital-b' });
    client.stop();

    // SIGTERM (what the kubelet sends) ends it cleanly, well within terminationGracePeriodSeconds.
    const exited = new Promise<number | null>((res) => child!.once('exit', (code) => res(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(env[ENV.STATE_DIR])).toBe(true);
  });
});
