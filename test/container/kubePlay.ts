import { stringify } from 'yaml';
import { applyJson6902, type K8sObject } from '../helpers/kustomize.ts';
import { expand, INDEX_ANNOTATION, podEnv } from '../deploy/kubelet.ts';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The test-only transform of rendered manifests for `podman kube play` (podman 4.3.1), limited to what
 * podman mishandles or what a cluster provides and podman does not. Everything else (securityContext,
 * resources, ConfigMap volumes, the PVC as a named volume, env values, command and args) goes through as
 * rendered.
 *
 *   - Namespace, Service, NetworkPolicy: podman ignores them; they are left out.
 *   - Secrets: podman 4.3.1 crashes on a Secret volume without `optional`, and with `optional: false` it
 *     mounts the base64 text as the file; the Secret becomes a ConfigMap of the same name, same items and
 *     mode. An env secretKeyRef becomes its value (or is left out when optional and not given).
 *   - containerPort: podman publishes it on every address; a hostPort bound to 127.0.0.1 is added.
 *   - httpGet liveness probe: podman turns it into `curl …`, which the image lacks (the kubelet makes the
 *     request itself in a cluster); it becomes an exec probe of the same path and port made by node.
 *     Readiness is ignored by podman: the test polls it from the host.
 *   - An Indexed Job: podman runs no Jobs; each index becomes a Pod with the index annotation, its env
 *     fieldRef resolved and $(VAR) in command and args expanded, as the Job controller and the kubelet do.
 *   - The Service address `fedgan` (port 80 to the pod's 8080): the server pod's address and port, as
 *     kube-proxy would route it.
 */

export const IGNORED_KINDS = new Set(['Namespace', 'Service', 'NetworkPolicy']);

function secretToConfigMap(pod: any): void {
  for (const v of pod.volumes ?? []) {
    if (!v.secret) continue;
    v.configMap = { name: v.secret.secretName, ...(v.secret.items ? { items: v.secret.items } : {}), ...(v.secret.defaultMode !== undefined ? { defaultMode: v.secret.defaultMode } : {}) };
    delete v.secret;
  }
}

function secretEnv(c: any, secrets: Record<string, Record<string, string>>): void {
  c.env = (c.env ?? []).flatMap((e: any) => {
    const r = e.valueFrom?.secretKeyRef;
    if (!r) return [e];
    const v = secrets[r.name]?.[r.key];
    if (v !== undefined) return [{ name: e.name, value: v }];
    if (r.optional) return [];
    throw new Error(`env ${e.name}: Secret ${r.name} key ${r.key} not given`);
  });
}

/**
 * The httpGet probe as an exec probe the image can run: node exits 0 when GET http://127.0.0.1:<port><path>
 * answers 2xx. podman 4.3.1 does not run an exec probe's arguments as given: it splits them at spaces and
 * runs them joined in a shell (CMD-SHELL), so the script has no space and is shell-quoted in its argument.
 * (In a cluster the kubelet makes the httpGet request itself, so the manifests keep httpGet.)
 */
export function nodeHttpProbe(port: number, path: string): string[] {
  if (!/^\/[\w/.-]*$/.test(path)) throw new Error(`probe path ${path}: only plain paths are handled`);
  return ['node', '-e', `'fetch("http://127.0.0.1:${port}${path}").then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))'`];
}

function portOf(c: any, p: number | string): number {
  if (typeof p === 'number') return p;
  const found = (c.ports ?? []).find((x: any) => x.name === p);
  if (!found) throw new Error(`probe port ${p} is not a named port of ${c.name}`);
  return found.containerPort;
}

/**
 * The server's manifests (the dev overlay) for kube play: `files` replaces ConfigMap data by name (the
 * test's small federation), `secretFiles` are the Secrets' data by name (as ConfigMaps), `hostPorts`
 * container port → loopback host port.
 */
export function serverForKubePlay(objs: K8sObject[], opts: { configData: Record<string, Record<string, string>>; secretFiles: Record<string, Record<string, string>>; secrets: Record<string, Record<string, string>>; hostPort: number }): K8sObject[] {
  const out: K8sObject[] = [];
  for (const o0 of objs) {
    if (IGNORED_KINDS.has(o0.kind)) continue;
    const o = structuredClone(o0) as any;
    if (o.kind === 'ConfigMap' && opts.configData[o.metadata.name]) o.data = { ...opts.configData[o.metadata.name] };
    if (o.kind === 'Deployment') {
      const pod = o.spec.template.spec;
      secretToConfigMap(pod);
      for (const c of pod.containers) {
        secretEnv(c, opts.secrets);
        for (const p of c.ports ?? []) Object.assign(p, { hostIP: '127.0.0.1', hostPort: opts.hostPort });
        if (c.livenessProbe?.httpGet) {
          const { path, port } = c.livenessProbe.httpGet;
          const { httpGet: _h, ...rest } = c.livenessProbe;
          c.livenessProbe = { ...rest, exec: { command: nodeHttpProbe(portOf(c, port), path) } };
        }
      }
    }
    out.push(o);
  }
  for (const [name, data] of Object.entries(opts.secretFiles)) out.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: objs[0]?.metadata.namespace }, data } as K8sObject);
  return out;
}

/**
 * An Indexed Job as the Pods the Job controller would create, `hospitals` of them (the Job's completions,
 * parallelism and --clients set to it, as docs/deploy.md changes N), with the Service host replaced.
 */
export function indexedJobAsPods(job: K8sObject, opts: { hospitals: number; service: { host: string; to: string }; secrets: Record<string, Record<string, string>> }): K8sObject[] {
  const j = structuredClone(job) as any;
  if (j.spec.completionMode !== 'Indexed') throw new Error(`${j.metadata.name} is not an Indexed Job`);
  // The same change of N as docs/deploy.md's 32-hospital overlay.
  applyJson6902(
    j,
    [
      { op: 'replace', path: '/spec/completions', value: opts.hospitals },
      { op: 'replace', path: '/spec/parallelism', value: opts.hospitals },
      { op: 'test', path: '/spec/template/spec/containers/0/args/4', value: '--clients' },
      { op: 'replace', path: '/spec/template/spec/containers/0/args/5', value: String(opts.hospitals) },
    ],
    'N for the container test',
  );
  const pods: K8sObject[] = [];
  for (let i = 0; i < j.spec.completions; i++) {
    const t = structuredClone(j.spec.template);
    const annotations = { ...(t.metadata.annotations ?? {}), [INDEX_ANNOTATION]: String(i) };
    const spec = t.spec;
    secretToConfigMap(spec);
    const replaceHost = (s: string) => s.split(`//${opts.service.host}/`).join(`//${opts.service.to}/`);
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      secretEnv(c, opts.secrets);
      const env = podEnv(c, annotations);
      c.env = Object.entries(env).map(([name, value]) => ({ name, value }));
      if (c.env.length === 0) delete c.env;
      if (c.command) c.command = c.command.map((s: string) => replaceHost(expand(s, env)));
      if (c.args) c.args = c.args.map((s: string) => replaceHost(expand(s, env)));
    }
    pods.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${j.metadata.name}-${i}`, namespace: j.metadata.namespace, labels: t.metadata.labels, annotations }, spec } as K8sObject);
  }
  return pods;
}

export function toYaml(objs: K8sObject[]): string {
  return objs.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}
