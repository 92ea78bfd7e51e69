import type { K8sObject } from '../helpers/kustomize.ts';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * `podman run` flags for a Deployment's pod, taken from the rendered manifest field by field, so that the
 * container test runs the image under exactly the constraints the cluster would. A field this does not know
 * is an error: a new constraint in the manifests must be translated here, not silently dropped.
 *
 * What the translation cannot reproduce, said here once: requests (podman has limits only), the probes
 * (the test polls them from the host), emptyDir's sizeLimit (kubelet eviction), Service, NetworkPolicy and
 * Pod Security admission (cluster objects).
 */

/** Where each volume's content comes from in the test (the kubelet's job). */
export interface VolumeSources {
  /** configMap and secret volumes: a host directory holding the projected files. */
  files: Record<string, string>;
  /** persistentVolumeClaim and emptyDir volumes: a podman named volume. */
  named: Record<string, string>;
}

export interface RunSpec {
  /** podman run flags, the image and the command excluded. */
  flags: string[];
  /** The container's command and args (empty: the image's ENTRYPOINT and CMD). */
  entrypoint?: string[];
  args?: string[];
  /** The container port the test publishes. */
  port: number;
  uid: number;
  gid: number;
  fsGroup?: number;
  stopTimeoutSeconds: number;
  readinessPath: string;
  livenessPath: string;
}

const POD_FIELDS = new Set(['automountServiceAccountToken', 'enableServiceLinks', 'terminationGracePeriodSeconds', 'securityContext', 'containers', 'volumes']);
const CONTAINER_FIELDS = new Set(['name', 'image', 'command', 'args', 'ports', 'env', 'volumeMounts', 'readinessProbe', 'livenessProbe', 'resources', 'securityContext']);
const POD_SECURITY = new Set(['runAsNonRoot', 'runAsUser', 'runAsGroup', 'fsGroup', 'fsGroupChangePolicy', 'seccompProfile']);
const CONTAINER_SECURITY = new Set(['runAsNonRoot', 'readOnlyRootFilesystem', 'allowPrivilegeEscalation', 'capabilities', 'seccompProfile']);

function unknown(where: string, o: Record<string, unknown> | undefined, known: Set<string>): void {
  for (const k of Object.keys(o ?? {})) if (!known.has(k)) throw new Error(`${where}.${k}: not translated to podman by test/container/podmanRun.ts (add it there)`);
}

/** A Kubernetes quantity in bytes (memory) or cores (cpu). */
export function quantity(q: string | number): number {
  const m = /^([\d.]+)(m|k|M|G|Ki|Mi|Gi)?$/.exec(String(q));
  if (!m) throw new Error(`quantity "${q}" is not understood`);
  const unit: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 };
  return Number(m[1]) * unit[m[2] ?? ''];
}

/**
 * The flags for the one container of `deployment`'s pod. `env` values come from the manifest; a
 * secretKeyRef is looked up in `secrets` (name → key → value) and left unset only when it is optional.
 */
export function podmanRunSpec(deployment: K8sObject, sources: VolumeSources, secrets: Record<string, Record<string, string>>, hostPort: number): RunSpec {
  const pod = (deployment as any).spec.template.spec;
  unknown('pod', pod, POD_FIELDS);
  if (pod.containers.length !== 1) throw new Error(`expected one container, got ${pod.containers.length}`);
  const c = pod.containers[0];
  unknown(`containers[${c.name}]`, c, CONTAINER_FIELDS);
  const psc = pod.securityContext ?? {};
  const csc = c.securityContext ?? {};
  unknown('pod.securityContext', psc, POD_SECURITY);
  unknown(`containers[${c.name}].securityContext`, csc, CONTAINER_SECURITY);
  unknown(`containers[${c.name}].securityContext.capabilities`, csc.capabilities, new Set(['drop', 'add']));

  const flags: string[] = [];
  const uid = csc.runAsUser ?? psc.runAsUser;
  const gid = csc.runAsGroup ?? psc.runAsGroup;
  if (uid === undefined || gid === undefined) throw new Error('runAsUser and runAsGroup must be set (the test runs the image as the manifest says)');
  if ((psc.runAsNonRoot || csc.runAsNonRoot) && uid === 0) throw new Error('runAsNonRoot with runAsUser 0');
  flags.push('--user', `${uid}:${gid}`);
  if (psc.fsGroup !== undefined) flags.push('--group-add', String(psc.fsGroup));
  if (csc.readOnlyRootFilesystem) flags.push('--read-only', '--read-only-tmpfs=false');
  if (csc.allowPrivilegeEscalation === false) flags.push('--security-opt', 'no-new-privileges');
  for (const cap of csc.capabilities?.drop ?? []) flags.push('--cap-drop', cap);
  for (const cap of csc.capabilities?.add ?? []) flags.push('--cap-add', cap);
  for (const sp of [psc.seccompProfile, csc.seccompProfile]) {
    // podman's default seccomp profile is the runtime default.
    if (sp && sp.type !== 'RuntimeDefault') throw new Error(`seccompProfile ${sp.type}: only RuntimeDefault is translated`);
  }
  // The pod is not the cluster's: no service-account token, no service links to leave out.

  const limits = c.resources?.limits ?? {};
  for (const k of Object.keys(limits)) if (k !== 'cpu' && k !== 'memory') throw new Error(`resources.limits.${k}: not translated`);
  if (limits.memory !== undefined) flags.push('--memory', `${Math.round(quantity(limits.memory))}b`, '--memory-swap', `${Math.round(quantity(limits.memory))}b`);
  if (limits.cpu !== undefined) flags.push('--cpus', String(quantity(limits.cpu)));

  for (const e of c.env ?? []) {
    if (e.value !== undefined) flags.push('--env', `${e.name}=${e.value}`);
    else if (e.valueFrom?.secretKeyRef) {
      const r = e.valueFrom.secretKeyRef;
      const v = secrets[r.name]?.[r.key];
      if (v !== undefined) flags.push('--env', `${e.name}=${v}`);
      else if (!r.optional) throw new Error(`env ${e.name}: Secret ${r.name} key ${r.key} is not given and not optional`);
    } else throw new Error(`env ${e.name}: only values and secretKeyRefs are translated`);
  }

  for (const m of c.volumeMounts ?? []) {
    const v = (pod.volumes ?? []).find((x: any) => x.name === m.name);
    if (!v) throw new Error(`volumeMount ${m.name} has no volume`);
    const ro = m.readOnly ? ':ro' : '';
    if (v.configMap || v.secret) {
      const dir = sources.files[m.name];
      if (!dir) throw new Error(`volume ${m.name}: no files given for it`);
      if (!m.readOnly) throw new Error(`volume ${m.name}: configMap and secret volumes are read-only in Kubernetes; mount it readOnly`);
      flags.push('-v', `${dir}:${m.mountPath}:ro`);
    } else if (v.persistentVolumeClaim || v.emptyDir) {
      const name = sources.named[m.name];
      if (!name) throw new Error(`volume ${m.name}: no podman volume given for it`);
      flags.push('-v', `${name}:${m.mountPath}${ro}`);
    } else throw new Error(`volume ${m.name}: only configMap, secret, persistentVolumeClaim and emptyDir are translated`);
  }

  const ports = c.ports ?? [];
  if (ports.length !== 1) throw new Error(`expected one container port, got ${ports.length}`);
  const port = ports[0].containerPort;
  // Published on the loopback address only: nothing of the test is reachable from outside this machine.
  flags.push('-p', `127.0.0.1:${hostPort}:${port}`);

  const grace = pod.terminationGracePeriodSeconds ?? 30;
  flags.push('--stop-timeout', String(grace));
  const probePath = (p: any, what: string) => {
    if (!p?.httpGet?.path) throw new Error(`${what}: only httpGet probes are translated`);
    const pp = p.httpGet.port;
    if (pp !== port && pp !== ports[0].name) throw new Error(`${what} probes port ${pp}, not the container's ${port}`);
    return p.httpGet.path as string;
  };
  return {
    flags,
    entrypoint: c.command,
    args: c.args,
    port,
    uid,
    gid,
    fsGroup: psc.fsGroup,
    stopTimeoutSeconds: grace,
    readinessPath: probePath(c.readinessProbe, 'readinessProbe'),
    livenessPath: probePath(c.livenessProbe, 'livenessProbe'),
  };
}
