import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * A small kustomize renderer for the tests of deploy/k8s/: exactly the features those kustomizations use,
 * with kustomize's semantics, and a loud error for anything else (so that a new feature in a manifest
 * needs a matching change here instead of being silently ignored). When `kubectl` is installed the tests
 * compare this renderer's output with `kubectl kustomize`.
 *
 * Supported: `resources` (files and kustomization directories), `components`, `namespace`,
 * `configMapGenerator` (files and literals; behavior create, replace, merge), `images`, and `patches` with a
 * target whose patch is a JSON 6902 list (ops add, remove, replace, test). Generated ConfigMaps keep their
 * plain name (kustomize appends a content hash and rewrites the references; see `stripNameHash`).
 */

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

/** Parse YAML the way Kubernetes does: YAML 1.1 (so `0440` would be octal, `yes` a boolean). */
export function parseK8sYaml(text: string, source: string): unknown[] {
  const docs = parseAllDocuments(text, { version: '1.1', prettyErrors: true });
  const out: unknown[] = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`${source}: ${d.errors[0].message}`);
    const v = d.toJS();
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

const KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'components', 'configMapGenerator', 'images', 'patches']);

/** Kinds that have no namespace (only those a manifest here could contain). */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass', 'CustomResourceDefinition', 'IngressClass', 'PriorityClass']);

interface Kustomization {
  apiVersion: string;
  kind: 'Kustomization' | 'Component';
  namespace?: string;
  resources?: string[];
  components?: string[];
  configMapGenerator?: { name: string; behavior?: 'create' | 'replace' | 'merge'; files?: string[]; literals?: string[] }[];
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[];
  patches?: { target?: { kind?: string; name?: string; group?: string; version?: string }; path?: string; patch?: string }[];
}

export function readKustomization(dir: string): Kustomization {
  const file = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].map((f) => join(dir, f)).find((f) => existsSync(f));
  if (!file) throw new Error(`${dir}: no kustomization.yaml`);
  const [k, ...rest] = parseK8sYaml(readFileSync(file, 'utf8'), file) as Kustomization[];
  if (!k || rest.length) throw new Error(`${file}: must hold exactly one YAML document`);
  for (const key of Object.keys(k)) if (!KUSTOMIZATION_FIELDS.has(key)) throw new Error(`${file}: field "${key}" is not supported by the test renderer`);
  if (k.kind !== 'Kustomization' && k.kind !== 'Component') throw new Error(`${file}: kind must be Kustomization or Component, got ${String(k.kind)}`);
  return k;
}

/** Render a kustomization directory into its list of objects. */
export function kustomize(dir: string): K8sObject[] {
  const k = readKustomization(dir);
  if (k.kind !== 'Kustomization') throw new Error(`${dir}: a Component cannot be built on its own`);
  return build(resolve(dir), k, []);
}

/** Render `extraComponents` on top of a kustomization directory, as an overlay listing them would. */
export function kustomizeWith(dir: string, extraComponents: string[]): K8sObject[] {
  return build(resolve(dir), { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: [resolve(dir)], components: extraComponents.map((c) => resolve(c)) }, []);
}

function build(dir: string, k: Kustomization, inherited: K8sObject[]): K8sObject[] {
  let objs = [...inherited];
  for (const r of k.resources ?? []) {
    const p = resolve(dir, r);
    if (!existsSync(p)) throw new Error(`${dir}: resource ${r} does not exist`);
    if (statSync(p).isDirectory()) {
      const sub = readKustomization(p);
      if (sub.kind !== 'Kustomization') throw new Error(`${dir}: resource ${r} is a Component (list it under components)`);
      objs.push(...build(p, sub, []));
    } else {
      for (const doc of parseK8sYaml(readFileSync(p, 'utf8'), p)) objs.push(asObject(doc, p));
    }
  }
  for (const c of k.components ?? []) {
    const p = resolve(dir, c);
    const comp = readKustomization(p);
    if (comp.kind !== 'Component') throw new Error(`${dir}: component ${c} is not a kind: Component`);
    objs = build(p, comp, objs);
  }
  for (const g of k.configMapGenerator ?? []) objs = generateConfigMap(dir, g, objs);
  for (const p of k.patches ?? []) applyPatch(dir, p, objs);
  if (k.namespace) {
    for (const o of objs) {
      if (o.kind === 'Namespace') {
        if (o.metadata.name !== k.namespace) throw new Error(`${dir}: namespace ${k.namespace} with a Namespace named ${o.metadata.name} (kustomize would rename it)`);
      } else if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
    }
  }
  for (const img of k.images ?? []) setImage(objs, img);
  checkUnique(dir, objs);
  return objs;
}

function asObject(doc: unknown, source: string): K8sObject {
  const o = doc as K8sObject;
  if (!o || typeof o !== 'object' || typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string') {
    throw new Error(`${source}: every document needs apiVersion, kind and metadata.name`);
  }
  return structuredClone(o);
}

export function objectId(o: K8sObject): string {
  return `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function checkUnique(dir: string, objs: K8sObject[]): void {
  const seen = new Set<string>();
  for (const o of objs) {
    const id = objectId(o);
    if (seen.has(id)) throw new Error(`${dir}: ${id} is defined twice`);
    seen.add(id);
  }
}

function generateConfigMap(dir: string, g: NonNullable<Kustomization['configMapGenerator']>[number], objs: K8sObject[]): K8sObject[] {
  const data: Record<string, string> = {};
  for (const f of g.files ?? []) {
    const [key, path] = f.includes('=') ? f.split('=', 2) : [basename(f), f];
    data[key] = readFileSync(resolve(dir, path), 'utf8');
  }
  for (const l of g.literals ?? []) {
    const i = l.indexOf('=');
    if (i < 1) throw new Error(`${dir}: configMapGenerator literal "${l}" is not KEY=VALUE`);
    data[l.slice(0, i)] = l.slice(i + 1);
  }
  const behavior = g.behavior ?? 'create';
  const existing = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === g.name);
  if (behavior === 'create') {
    if (existing) throw new Error(`${dir}: ConfigMap ${g.name} already exists (use behavior: replace or merge)`);
    return [...objs, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g.name }, data }];
  }
  if (!existing) throw new Error(`${dir}: configMapGenerator ${g.name} with behavior ${behavior} but no such ConfigMap below`);
  existing.data = behavior === 'replace' ? data : { ...(existing.data as Record<string, string>), ...data };
  return objs;
}

function applyPatch(dir: string, p: NonNullable<Kustomization['patches']>[number], objs: K8sObject[]): void {
  if (!p.target) throw new Error(`${dir}: patches without a target (strategic merge) are not supported by the test renderer`);
  const text = p.path !== undefined ? readFileSync(resolve(dir, p.path), 'utf8') : p.patch;
  if (text === undefined) throw new Error(`${dir}: a patch needs path or patch`);
  const [ops] = parseK8sYaml(text, p.path ?? 'inline patch');
  if (!Array.isArray(ops)) throw new Error(`${dir}: ${p.path ?? 'inline patch'} is not a JSON 6902 list (strategic merge is not supported by the test renderer)`);
  const t = p.target;
  const targets = objs.filter((o) => (t.kind === undefined || o.kind === t.kind) && (t.name === undefined || o.metadata.name === t.name));
  if (targets.length === 0) throw new Error(`${dir}: patch ${p.path ?? ''} matches no resource (${JSON.stringify(t)})`);
  for (const o of targets) applyJson6902(o, ops, `${dir}/${p.path ?? 'inline patch'} on ${objectId(o)}`);
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new Error(`JSON pointer "${path}" must start with /`);
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** RFC 6902 add/remove/replace/test on a JSON document, in place. */
export function applyJson6902(doc: unknown, ops: { op: string; path: string; value?: unknown }[], where: string): void {
  for (const { op, path, value } of ops) {
    const parts = pointer(path);
    const last = parts.pop();
    if (last === undefined) throw new Error(`${where}: op ${op} on the whole document is not supported`);
    let parent: unknown = doc;
    for (const seg of parts) {
      parent = Array.isArray(parent) ? parent[Number(seg)] : (parent as Record<string, unknown> | undefined)?.[seg];
      if (parent === undefined || parent === null || typeof parent !== 'object') throw new Error(`${where}: ${op} ${path}: no such path`);
    }
    const arr = Array.isArray(parent) ? (parent as unknown[]) : undefined;
    const obj = parent as Record<string, unknown>;
    const index = (allowEnd: boolean): number => {
      const i = last === '-' && allowEnd ? arr!.length : Number(last);
      if (!Number.isInteger(i) || i < 0 || i > arr!.length - (allowEnd ? 0 : 1)) throw new Error(`${where}: ${op} ${path}: index out of range`);
      return i;
    };
    const has = arr ? Number.isInteger(Number(last)) && Number(last) < arr.length : Object.prototype.hasOwnProperty.call(obj, last);
    switch (op) {
      case 'add':
        if (arr) arr.splice(index(true), 0, structuredClone(value));
        else obj[last] = structuredClone(value);
        break;
      case 'remove':
      case 'replace':
        if (!has) throw new Error(`${where}: ${op} ${path}: no such path`);
        if (op === 'remove') {
          if (arr) arr.splice(index(false), 1);
          else delete obj[last];
        } else if (arr) arr[index(false)] = structuredClone(value);
        else obj[last] = structuredClone(value);
        break;
      case 'test': {
        const actual = arr ? arr[Number(last)] : obj[last];
        if (JSON.stringify(actual) !== JSON.stringify(value)) throw new Error(`${where}: test ${path} failed: ${JSON.stringify(actual)} is not ${JSON.stringify(value)}`);
        break;
      }
      default:
        throw new Error(`${where}: op "${op}" is not supported by the test renderer`);
    }
  }
}

/** The containers of a workload (pod template or pod), init containers included. */
export function podSpecOf(o: K8sObject): Record<string, unknown> | undefined {
  const spec = o.spec as Record<string, any> | undefined;
  if (!spec) return undefined;
  if (o.kind === 'Pod') return spec;
  if (o.kind === 'CronJob') return spec.jobTemplate?.spec?.template?.spec;
  return spec.template?.spec;
}

function setImage(objs: K8sObject[], img: NonNullable<Kustomization['images']>[number]): void {
  for (const o of objs) {
    const pod = podSpecOf(o) as { containers?: { image?: string }[]; initContainers?: { image?: string }[] } | undefined;
    for (const c of [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])]) {
      if (typeof c.image !== 'string') continue;
      const m = /^(.*?)(?::([^:/@]+))?(?:@(.+))?$/.exec(c.image)!;
      if (m[1] !== img.name) continue;
      const name = img.newName ?? m[1];
      if (img.digest) c.image = `${name}@${img.digest}`;
      else c.image = `${name}${img.newTag !== undefined ? `:${img.newTag}` : m[2] ? `:${m[2]}` : ''}${!img.newTag && m[3] ? `@${m[3]}` : ''}`;
    }
  }
}

/** kustomize names a generated ConfigMap `<name>-<10 character hash>`; this gives back `<name>`. */
export function stripNameHash(name: string): string {
  return name.replace(/-[a-z0-9]{10}$/, '');
}
