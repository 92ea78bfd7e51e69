import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TokenStore } from '../../server/auth.ts';
import { DEFAULTS, ENV, loadSettings, PATHS, TOKENS_FILE_FORMAT } from '../../server/config.ts';
import { parseSimulateArgs } from '../../cli/simulate.ts';
import { parseFedConfigText } from '../../shared/config/fedConfig.ts';
import type { K8sObject } from '../helpers/kustomize.ts';
import { BUILDS, find, podSpec, ROOT, rendered, type Container, type PodSpec } from './k8sFiles.ts';

/**
 * The manifests against the code that reads them: port, probe paths, env names, mount paths and the two
 * file formats are taken from server/config.ts (and the simulation's own argument parser), never repeated.
 */

const dir = mkdtempSync(join(tmpdir(), 'fedgan-k8s-cfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SERVER_ENV = new Set<string>(Object.values(ENV));

function serverContainer(objs: K8sObject[]): { pod: PodSpec; c: Container } {
  const pod = podSpec(find(objs, 'Deployment', 'fedgan'));
  return { pod, c: pod.containers[0] };
}

/** The file a path in the container is, given its volume mounts: [volume, path inside the volume]. */
function fileOf(pod: PodSpec, c: Container, path: string): { volume: any; sub: string } {
  const m = c.volumeMounts!.filter((x) => path === x.mountPath || path.startsWith(x.mountPath + '/')).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!m) throw new Error(`${path} is on no volume`);
  return { volume: pod.volumes!.find((v) => v.name === m.name), sub: posix.relative(m.mountPath, path) };
}

/** Key of a ConfigMap/Secret volume that appears at `sub` (via items, or the key itself). */
function keyAt(source: { items?: { key: string; path: string }[] }, sub: string): string {
  return source.items ? source.items.find((i) => i.path === sub)!.key : sub;
}

describe.each(BUILDS)('%s: the Deployment matches server/config.ts', (build) => {
  const objs = rendered(build);
  const { pod, c } = serverContainer(objs);
  const env = Object.fromEntries(c.env!.map((e) => [e.name, e.value!]));

  it('sets only variables the server reads, and the port is the server default exposed as "http"', () => {
    for (const name of Object.keys(env)) expect(SERVER_ENV, `env ${name}`).toContain(name);
    for (const name of [ENV.PORT, ENV.HOST, ENV.STATE_DIR, ENV.FED_CONFIG, ENV.TOKENS_FILE]) expect(env[name], name).toBeDefined();
    expect(c.ports).toEqual([{ name: 'http', containerPort: DEFAULTS.port, protocol: 'TCP' }]);
    expect(Number(env[ENV.PORT])).toBe(DEFAULTS.port);
    expect(env[ENV.HOST]).toBe(DEFAULTS.host);
    for (const p of [c.readinessProbe, c.livenessProbe]) expect(p.httpGet.port).toBe('http');
    const svc = find(objs, 'Service', 'fedgan') as any;
    expect(svc.spec.ports[0].targetPort).toBe('http');
  });

  it('puts STATE_DIR on the PersistentVolumeClaim, FED_CONFIG on the ConfigMap and TOKENS_FILE on the Secret', () => {
    const state = fileOf(pod, c, env[ENV.STATE_DIR]);
    expect(state.volume.persistentVolumeClaim).toBeDefined();
    expect(state.sub).toBe('');
    const cfg = fileOf(pod, c, env[ENV.FED_CONFIG]);
    expect(cfg.volume.configMap).toBeDefined();
    const cm = find(objs, 'ConfigMap', cfg.volume.configMap.name) as K8sObject & { data: Record<string, string> };
    expect(Object.keys(cm.data)).toContain(keyAt(cfg.volume.configMap, cfg.sub));
    const tok = fileOf(pod, c, env[ENV.TOKENS_FILE]);
    expect(tok.volume.secret).toBeDefined();
    expect(keyAt(tok.volume.secret, tok.sub)).toBe('tokens.yaml');
  });

  it("the ConfigMap's federation config is what the server loads, through its own loadSettings", () => {
    const cfg = fileOf(pod, c, env[ENV.FED_CONFIG]);
    const cm = find(objs, 'ConfigMap', cfg.volume.configMap.name) as K8sObject & { data: Record<string, string> };
    const file = join(dir, `${build.replace('/', '-')}.yaml`);
    writeFileSync(file, cm.data[keyAt(cfg.volume.configMap, cfg.sub)]);
    const s = loadSettings({ ...env, [ENV.FED_CONFIG]: file, [ENV.STATE_DIR]: join(dir, 'state') });
    expect(s.port).toBe(DEFAULTS.port);
    expect(s.fedConfigFile).toBe(file);
    expect(s.fed.rounds).toBeGreaterThan(0);
  });
});

describe('other consumers of the server', () => {
  it('NetworkPolicies, the Prometheus annotations and the ServiceMonitor use the server port and metrics path', () => {
    for (const b of BUILDS)
      for (const np of rendered(b).filter((o) => o.kind === 'NetworkPolicy') as any[])
        for (const r of np.spec.ingress) expect(r.ports, `${b} ${np.metadata.name}`).toEqual([{ protocol: 'TCP', port: DEFAULTS.port }]);
    const sm = readFileSync(join(ROOT, 'deploy/k8s/components/servicemonitor/servicemonitor.yaml'), 'utf8');
    expect(sm).toContain(`path: ${PATHS.metrics}\n`);
    expect(sm).toContain('port: http\n');
  });

  it('the tokens file example in docs/deploy.md is in the server format (TOKENS_FILE_FORMAT)', () => {
    const doc = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8');
    const blocks = [...doc.matchAll(/```yaml\n(- hospital:[\s\S]*?)```/g)].map((m) => m[1]);
    expect(blocks.length).toBeGreaterThan(0);
    for (const b of blocks) {
      const filled = b.replace(/<[^>]+>/g, (m) => (m.includes('sha256') ? 'a'.repeat(64) : 'x'.repeat(TOKENS_FILE_FORMAT.minTokenLength) + Math.random().toString(36).slice(2)));
      expect(TokenStore.parse(filled, 'docs/deploy.md').hospitals.length).toBeGreaterThan(0);
    }
  });
});

describe('the simulated hospitals Job', () => {
  const objs = rendered('simulate');
  const job = find(objs, 'Job', 'fedgan-simulated-hospitals');
  const pod = podSpec(job);
  const sim = pod.containers[0];
  const svc = find(objs, 'Service', 'fedgan') as any;
  const fedCm = find(objs, 'ConfigMap', 'fedgan-config') as K8sObject & { data: Record<string, string> };
  const fed = parseFedConfigText(fedCm.data['federation.yaml'], 'simulate federation.yaml');

  it('runs the script `npm run simulate` runs, with arguments the simulation accepts', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const [node, ...rest] = pkg.scripts.simulate.split(/\s+/);
    expect(sim.command).toEqual([node, ...rest.slice(0, -1), posix.normalize(rest.at(-1)!)]);
    const args = parseSimulateArgs(sim.args!);
    expect(args).not.toBe('help');
  });

  it("joins the Service's WebSocket path with the mounted tokens, as many hospitals as a round needs, at the server's image size", () => {
    const args = parseSimulateArgs(sim.args!);
    if (args === 'help') throw new Error('help');
    const url = new URL(args.server!);
    expect(url.protocol).toBe('ws:');
    expect(url.hostname).toBe(svc.metadata.name);
    expect(Number(url.port || 80)).toBe(svc.spec.ports[0].port);
    expect(url.pathname).toBe(PATHS.ws);
    const tok = fileOf(pod, sim, args.tokens!);
    expect(tok.volume.secret.secretName).toBe((podSpec(find(objs, 'Deployment', 'fedgan')).volumes!.find((v) => v.secret) as any).secret.secretName);
    expect(keyAt(tok.volume.secret, tok.sub)).toBe('tokens.yaml');
    expect(args.clients).toBeGreaterThanOrEqual(fed.minAvailable);
    expect(args.model.imageSize).toBe(fed.model.imageSize);
    expect(fileOf(pod, sim, args.data).volume.persistentVolumeClaim.readOnly).toBe(true);
    expect(fileOf(pod, sim, args.out).volume.emptyDir).toBeDefined();
  });

  it('waits for the server through the readiness path of the Service', () => {
    const wait = pod.initContainers![0];
    expect(wait.command!.join(' ')).toContain(`'http://${svc.metadata.name}${PATHS.readyz}'`);
  });
});
