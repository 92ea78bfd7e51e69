import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTrustedProxies } from '../../server/admission.ts';
import { ENV, PATHS } from '../../server/config.ts';
import type { K8sObject } from '../helpers/kustomize.ts';
import { BUILDS, find, K8S, metadataOfTemplate, podSpec, rendered } from './k8sFiles.ts';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * What each rendered kustomization holds: the locked-down Deployment the issue asks for in every build,
 * NodePort without TLS in dev, Ingress with TLS and WebSocket timeouts in prod, the simulated hospitals'
 * Job only in the simulate overlay.
 */

const server = (objs: K8sObject[]) => find(objs, 'Deployment', 'fedgan');
const kinds = (objs: K8sObject[]) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();

describe.each(BUILDS)('%s: the federation server Deployment', (build) => {
  const objs = rendered(build);
  const d = server(objs) as K8sObject & { spec: any };
  const pod = podSpec(d);
  const [c] = pod.containers;

  it('runs 1 replica with the Recreate strategy, its state on a ReadWriteOnce PersistentVolumeClaim', () => {
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy).toEqual({ type: 'Recreate' });
    const stateVol = pod.volumes!.find((v) => v.persistentVolumeClaim);
    const pvc = find(objs, 'PersistentVolumeClaim', stateVol.persistentVolumeClaim.claimName) as any;
    expect(pvc.spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(c.volumeMounts!.find((m) => m.name === stateVol.name)?.readOnly).not.toBe(true);
  });

  it('has the securityContext of the issue: non-root, read-only root filesystem, no privilege escalation, no capability, seccomp RuntimeDefault', () => {
    expect(pod.containers).toHaveLength(1);
    expect(c.securityContext).toEqual({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.hostNetwork ?? false).toBe(false);
  });

  it('has requests and limits for CPU and memory, requests within limits', () => {
    const parse = (q: string | number) => {
      const m = /^([\d.]+)(m|Ki|Mi|Gi)?$/.exec(String(q))!;
      return Number(m[1]) * ({ m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 } as Record<string, number>)[m[2] ?? ''] || Number(m[1]);
    };
    for (const r of ['cpu', 'memory']) {
      expect(c.resources.requests[r], r).toBeDefined();
      expect(c.resources.limits[r], r).toBeDefined();
      expect(parse(c.resources.requests[r])).toBeLessThanOrEqual(parse(c.resources.limits[r]));
    }
  });

  it('probes readiness on /readyz and liveness on /healthz; /tmp is an emptyDir', () => {
    expect(c.readinessProbe.httpGet.path).toBe(PATHS.readyz);
    expect(c.livenessProbe.httpGet.path).toBe(PATHS.healthz);
    const tmp = c.volumeMounts!.find((m) => m.mountPath === '/tmp')!;
    expect(pod.volumes!.find((v) => v.name === tmp.name).emptyDir).toBeDefined();
  });

  it('takes the federation config from a ConfigMap and the tokens from a Secret, both mounted read-only as files', () => {
    const cfgVol = pod.volumes!.find((v) => v.configMap);
    const secVol = pod.volumes!.find((v) => v.secret);
    expect(find(objs, 'ConfigMap', cfgVol.configMap.name)).toBeDefined();
    expect(secVol.secret.secretName).toBe('fedgan-tokens');
    for (const v of [cfgVol, secVol]) expect(c.volumeMounts!.find((m) => m.name === v.name)?.readOnly, v.name).toBe(true);
    // Readable by the server's group (fsGroup), by no one else: 0o440.
    expect(secVol.secret.defaultMode).toBe(0o440);
    expect(pod.securityContext.fsGroup).toBe(pod.securityContext.runAsGroup);
  });

  it('takes OPERATOR_TOKEN from the optional Secret fedgan-operator (unset without it), and TRUSTED_PROXIES only behind the prod Ingress', () => {
    const op = c.env!.filter((e) => e.name === ENV.OPERATOR_TOKEN);
    expect(op).toEqual([{ name: ENV.OPERATOR_TOKEN, valueFrom: { secretKeyRef: { name: 'fedgan-operator', key: 'token', optional: true } } }]);
    const proxies = c.env!.filter((e) => e.name === ENV.TRUSTED_PROXIES);
    if (build === 'prod') {
      expect(proxies).toHaveLength(1);
      const parsed = parseTrustedProxies(proxies[0].value!);
      expect(parsed.problems).toEqual([]);
      expect(proxies[0].value).toBe('10.0.0.0/8');
    } else expect(proxies, 'no proxy in front of the server without the Ingress').toEqual([]);
    // Each variable once.
    expect(new Set(c.env!.map((e) => e.name)).size).toBe(c.env!.length);
  });

  it('carries Prometheus scrape annotations on the pod', () => {
    const a = metadataOfTemplate(d).annotations!;
    expect(a['prometheus.io/scrape']).toBe('true');
    expect(a['prometheus.io/path']).toBe(PATHS.metrics);
    expect(Number(a['prometheus.io/port'])).toBe(c.ports![0].containerPort);
  });

  it('is selected by a ClusterIP or NodePort Service and protected by a NetworkPolicy with no egress', () => {
    const labels = metadataOfTemplate(d).labels!;
    const svc = find(objs, 'Service', 'fedgan') as any;
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(labels[k]).toBe(v);
    const np = find(objs, 'NetworkPolicy', 'fedgan-server') as any;
    for (const [k, v] of Object.entries(np.spec.podSelector.matchLabels)) expect(labels[k]).toBe(v);
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(np.spec.egress).toEqual([]);
    expect(np.spec.ingress.flatMap((r: any) => r.ports.map((p: any) => p.port))).toEqual([c.ports![0].containerPort]);
  });
});

describe('base', () => {
  const objs = rendered('base');
  it('holds the Namespace (Pod Security "restricted"), Deployment, ClusterIP Service, PVC, NetworkPolicy and the config, and no exposure', () => {
    expect(kinds(objs)).toEqual(['ConfigMap/fedgan-config', 'Deployment/fedgan', 'Namespace/fedgan', 'NetworkPolicy/fedgan-server', 'PersistentVolumeClaim/fedgan-state', 'Service/fedgan']);
    expect((find(objs, 'Service', 'fedgan') as any).spec.type).toBe('ClusterIP');
    expect(find(objs, 'Namespace', 'fedgan').metadata.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted' });
  });

  it('lets only the ingress controller reach the server', () => {
    const np = find(objs, 'NetworkPolicy', 'fedgan-server') as any;
    expect(np.spec.ingress).toHaveLength(1);
    expect(np.spec.ingress[0].from).toEqual([
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ingress-nginx' } } },
    ]);
  });

  it('has no PodDisruptionBudget, and its kustomization says why', () => {
    for (const b of BUILDS) expect(rendered(b).some((o) => o.kind === 'PodDisruptionBudget')).toBe(false);
    const text = readFileSync(join(K8S, 'base/kustomization.yaml'), 'utf8');
    expect(text).toContain('No PodDisruptionBudget, on purpose');
    expect(text).toMatch(/minAvailable: 1[\s\S]*drain/);
  });
});

describe('dev overlay', () => {
  const objs = rendered('dev');
  it('exposes the server on a NodePort, without Ingress or TLS, and opens the port to NodePort traffic', () => {
    const svc = find(objs, 'Service', 'fedgan') as any;
    expect(svc.spec.type).toBe('NodePort');
    expect(svc.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP', nodePort: 30080 }]);
    expect(objs.some((o) => o.kind === 'Ingress')).toBe(false);
    const np = find(objs, 'NetworkPolicy', 'fedgan-server') as any;
    expect(np.spec.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 8080 }] }]);
    expect(podSpec(server(objs)).containers[0].image).toBe('fedgan-crc:dev');
  });
});

describe('prod overlay', () => {
  const objs = rendered('prod');
  const ingresses = objs.filter((o) => o.kind === 'Ingress') as any[];
  const paths = ingresses.flatMap((i) => i.spec.rules.flatMap((r: any) => r.http.paths.map((p: any) => ({ ingress: i, host: r.host, ...p }))));

  it('serves / and /ws through Ingresses with TLS from the referenced Secret, HTTP redirected to HTTPS', () => {
    expect(paths.map((p) => p.path).sort()).toEqual(['/', PATHS.ws]);
    for (const i of ingresses) {
      expect(i.spec.tls).toEqual([{ hosts: [i.spec.rules[0].host], secretName: 'fedgan-tls' }]);
      expect(i.metadata.annotations['nginx.ingress.kubernetes.io/force-ssl-redirect']).toBe('true');
      for (const r of i.spec.rules) expect(i.spec.tls[0].hosts).toContain(r.host);
    }
    for (const p of paths) expect(p.backend).toEqual({ service: { name: 'fedgan', port: { name: 'http' } } });
    expect((find(objs, 'Service', 'fedgan') as any).spec.type).toBe('ClusterIP');
  });

  it('gives /ws WebSocket-friendly timeouts (an hour), and only /ws', () => {
    const ws = paths.find((p) => p.path === PATHS.ws)!;
    const root = paths.find((p) => p.path === '/')!;
    expect(ws.ingress).not.toBe(root.ingress);
    for (const k of ['proxy-read-timeout', 'proxy-send-timeout']) {
      expect(Number(ws.ingress.metadata.annotations[`nginx.ingress.kubernetes.io/${k}`]), k).toBeGreaterThanOrEqual(3600);
      expect(root.ingress.metadata.annotations[`nginx.ingress.kubernetes.io/${k}`], k).toBeUndefined();
    }
  });

  it('pulls a pinned image from a registry and announces its public HTTPS URL', () => {
    const c = podSpec(server(objs)).containers[0];
    expect(c.image).toMatch(/^[a-z0-9.-]+\.[a-z]+\/[\w./-]+:[\w.-]+$/);
    expect(c.image).not.toMatch(/:latest$/);
    const host = paths[0].host;
    expect(c.env!.find((e) => e.name === 'PUBLIC_URL')?.value).toBe(`https://${host}`);
  });
});

describe('simulate overlay', () => {
  const objs = rendered('simulate');
  it('is the dev deployment plus the Job, its network exception and its tiles volume, with its own federation config', () => {
    const dev = rendered('dev');
    expect(kinds(objs)).toEqual([...kinds(dev), 'Job/fedgan-simulated-hospitals', 'NetworkPolicy/fedgan-allow-simulated-hospitals', 'PersistentVolumeClaim/fedgan-sim-tiles'].sort());
    expect(find(objs, 'ConfigMap', 'fedgan-config').data).not.toEqual(find(dev, 'ConfigMap', 'fedgan-config').data);
    for (const b of ['base', 'dev', 'prod'] as const) expect(rendered(b).some((o) => o.kind === 'Job'), b).toBe(false);
  });

  it('runs the Job as locked down as the server, and lets only its pods through the extra NetworkPolicy', () => {
    const job = find(objs, 'Job', 'fedgan-simulated-hospitals') as any;
    const pod = podSpec(job);
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
      expect(c.securityContext, c.name).toEqual(podSpec(server(objs)).containers[0].securityContext);
      expect(c.resources.limits, c.name).toBeDefined();
      expect(c.image).toBe(podSpec(server(objs)).containers[0].image);
    }
    const np = find(objs, 'NetworkPolicy', 'fedgan-allow-simulated-hospitals') as any;
    expect(np.spec.ingress[0].from).toEqual([{ podSelector: { matchLabels: job.spec.template.metadata.labels && pick(job.spec.template.metadata.labels, Object.keys(np.spec.ingress[0].from[0].podSelector.matchLabels)) } }]);
    expect(Object.keys(np.spec.ingress[0].from[0].podSelector.matchLabels)).toContain('app.kubernetes.io/component');
  });
});

function pick(o: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}
