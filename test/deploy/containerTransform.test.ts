import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { parseSimulateArgs } from '../../cli/simulate.ts';
import { indexedJobAsPods, IGNORED_KINDS, nodeHttpProbe, serverForKubePlay } from '../container/kubePlay.ts';
import { podmanRunSpec, quantity } from '../container/podmanRun.ts';
import { find, podSpec, rendered } from './k8sFiles.ts';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The translations `npm run test:container` makes (test/container/), checked without podman: the podman run
 * flags come from the Deployment field by field (and refuse a field they do not know), and the kube play
 * transform changes only what podman 4.3.1 mishandles.
 */

const sources = { files: { config: '/v/config', tokens: '/v/tokens' }, named: { state: 'vol-state', tmp: 'vol-tmp' } };

describe('podman run flags from the prod Deployment', () => {
  const d = find(rendered('prod'), 'Deployment', 'fedgan');
  const spec = podmanRunSpec(d, sources, { 'fedgan-operator': { token: 'op-token-0123456789abcdef' } }, 41234);
  const pairs = (flag: string) => spec.flags.flatMap((f, i) => (f === flag ? [spec.flags[i + 1]] : []));

  it('runs as the pod securityContext says: uid:gid, fsGroup, read-only root without podman tmpfs, no-new-privileges, all capabilities dropped', () => {
    expect(pairs('--user')).toEqual(['1000:1000']);
    expect(pairs('--group-add')).toEqual(['1000']);
    expect(spec.flags).toContain('--read-only');
    expect(spec.flags).toContain('--read-only-tmpfs=false');
    expect(pairs('--security-opt')).toEqual(['no-new-privileges']);
    expect(pairs('--cap-drop')).toEqual(['ALL']);
    expect(pairs('--cap-add')).toEqual([]);
  });

  it("has the container's limits, env (the Secret's token included), mounts, the port on loopback and the grace period", () => {
    expect(pairs('--memory')).toEqual([`${1536 * 2 ** 20}b`]);
    expect(pairs('--cpus')).toEqual(['2']);
    const env = Object.fromEntries(pairs('--env').map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    const c = podSpec(d).containers[0];
    expect(Object.keys(env).sort()).toEqual(c.env!.map((e) => e.name).sort());
    expect(env.OPERATOR_TOKEN).toBe('op-token-0123456789abcdef');
    expect(env.TRUSTED_PROXIES).toBe('10.0.0.0/8');
    expect(pairs('-v').sort()).toEqual(['/v/config:/etc/fedgan/config:ro', '/v/tokens:/etc/fedgan/tokens:ro', 'vol-state:/var/lib/fedgan/state', 'vol-tmp:/tmp'].sort());
    expect(pairs('-p')).toEqual(['127.0.0.1:41234:8080']);
    expect(pairs('--stop-timeout')).toEqual(['15']);
    expect([spec.readinessPath, spec.livenessPath]).toEqual(['/readyz', '/healthz']);
  });

  it('leaves an optional Secret env out when the Secret is not there, and refuses a field it does not translate', () => {
    const s = podmanRunSpec(d, sources, {}, 1);
    expect(s.flags.some((f) => f.startsWith('OPERATOR_TOKEN='))).toBe(false);
    const bad = structuredClone(d) as any;
    bad.spec.template.spec.hostNetwork = true;
    expect(() => podmanRunSpec(bad, sources, {}, 1)).toThrow('pod.hostNetwork: not translated to podman');
    const bad2 = structuredClone(d) as any;
    bad2.spec.template.spec.containers[0].securityContext.privileged = true;
    expect(() => podmanRunSpec(bad2, sources, {}, 1)).toThrow('securityContext.privileged: not translated');
    expect(quantity('1536Mi')).toBe(1536 * 2 ** 20);
    expect(quantity('250m')).toBe(0.25);
  });
});

describe('the kube play transform of the dev overlay', () => {
  const dev = rendered('dev');
  const out = serverForKubePlay(dev, { configData: { 'fedgan-config': { 'federation.yaml': 'rounds: 1\n' } }, secretFiles: { 'fedgan-tokens': { 'tokens.yaml': '- hospital: a\n  token: t\n' } }, secrets: {}, hostPort: 40000 });

  it('drops what podman ignores, turns the Secret into a ConfigMap, binds the port to loopback, probes liveness with node', () => {
    expect(out.some((o) => IGNORED_KINDS.has(o.kind))).toBe(false);
    const pod = podSpec(find(out, 'Deployment', 'fedgan'));
    expect(pod.volumes!.some((v) => v.secret)).toBe(false);
    expect(pod.volumes!.find((v) => v.name === 'tokens').configMap).toEqual({ name: 'fedgan-tokens', items: [{ key: 'tokens.yaml', path: 'tokens.yaml' }], defaultMode: 0o440 });
    expect((find(out, 'ConfigMap', 'fedgan-tokens') as any).data['tokens.yaml']).toContain('hospital: a');
    const c = pod.containers[0];
    expect(c.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP', hostIP: '127.0.0.1', hostPort: 40000 }]);
    expect(c.livenessProbe.exec.command).toEqual(nodeHttpProbe(8080, '/healthz'));
    expect(c.livenessProbe.httpGet).toBeUndefined();
    expect(c.env!.some((e) => e.name === 'OPERATOR_TOKEN')).toBe(false);
  });

  it('keeps everything else as rendered: securityContext, resources, mounts, the PVC, the readiness probe', () => {
    const before = podSpec(find(dev, 'Deployment', 'fedgan'));
    const after = podSpec(find(out, 'Deployment', 'fedgan'));
    expect(after.securityContext).toEqual(before.securityContext);
    for (const k of ['securityContext', 'resources', 'volumeMounts', 'readinessProbe', 'image'] as const) expect(after.containers[0][k], k).toEqual(before.containers[0][k]);
    expect(find(out, 'PersistentVolumeClaim', 'fedgan-state')).toEqual(find(dev, 'PersistentVolumeClaim', 'fedgan-state'));
    expect((find(out, 'ConfigMap', 'fedgan-config') as any).data).toEqual({ 'federation.yaml': 'rounds: 1\n' });
  });
});

describe('the exec liveness probe of the kube play transform', () => {
  it('run as podman 4.3.1 runs it (its words joined in a shell), exits 0 on 200 and 1 on 500 or no answer', async () => {
    let code = 200;
    const server = createServer((_, res) => res.writeHead(code).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    // podman: Test ["CMD-SHELL", ...the command split at spaces, "||", "exit", "1"], run by /bin/sh -c.
    const words = nodeHttpProbe(port, '/healthz').flatMap((a) => a.split(' '));
    expect(words).toEqual(nodeHttpProbe(port, '/healthz'));
    const probe = () => new Promise<number | null>((res) => spawn('sh', ['-c', [...words, '||', 'exit', '1'].join(' ')], { stdio: 'ignore' }).once('exit', res));
    expect(await probe()).toBe(0);
    code = 500;
    expect(await probe()).toBe(1);
    await new Promise((r) => server.close(r));
    expect(await probe()).toBe(1);
  });
});

describe("the simulate-scale Job as the pods podman plays", () => {
  it('one pod per index, with the index annotation, its arguments expanded and the Service address replaced', () => {
    const job = find(rendered('simulate-scale'), 'Job', 'fedgan-hospitals');
    const pods = indexedJobAsPods(job, { hospitals: 2, service: { host: 'fedgan', to: '10.88.0.5:8080' }, secrets: {} }) as any[];
    expect(pods.map((p) => p.metadata.name)).toEqual(['fedgan-hospitals-0', 'fedgan-hospitals-1']);
    for (const [i, p] of pods.entries()) {
      expect(p.metadata.annotations['batch.kubernetes.io/job-completion-index']).toBe(String(i));
      const c = p.spec.containers[0];
      const args = parseSimulateArgs(c.args);
      expect(args).toMatchObject({ clients: 2, hospitalIndex: i, server: 'ws://10.88.0.5:8080/ws' });
      expect(p.spec.initContainers[0].command.join(' ')).toContain('http://10.88.0.5:8080/readyz');
      expect(p.spec.volumes.find((v: any) => v.name === 'tokens').configMap.name).toBe('fedgan-tokens');
      expect(c.securityContext).toEqual(podSpec(job).containers[0].securityContext);
      expect(c.resources).toEqual(podSpec(job).containers[0].resources);
    }
  });
});
