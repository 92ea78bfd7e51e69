import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { schemaProblems, unknownFields } from '../helpers/k8sSchema.ts';
import { kustomize, objectId, parseK8sYaml, readKustomization, stripNameHash, type K8sObject } from '../helpers/kustomize.ts';
import { buildDir, BUILDS, K8S, k8sDirs, NAMESPACE, rendered } from './k8sFiles.ts';

/**
 * deploy/k8s/ without a cluster: every file parses, every kustomization lists exactly the files of its
 * folder, every rendered object validates against the Kubernetes schemas with no unknown field, and the
 * test renderer agrees with `kubectl kustomize` where kubectl is installed.
 */

const tmp = mkdtempSync(join(tmpdir(), 'fedgan-k8s-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of deploy/k8s/ whose prod overlay has its optional Prometheus components switched on, as docs/deploy.md says. */
function withPrometheusComponents(): string {
  const copy = join(tmp, 'k8s');
  if (!existsSync(copy)) {
    cpSync(K8S, copy, { recursive: true });
    const file = join(copy, 'overlays/prod/kustomization.yaml');
    const text = readFileSync(file, 'utf8');
    const commented = '# components:\n#   - ../../components/metrics-access\n#   - ../../components/servicemonitor\n';
    if (!text.includes(commented)) throw new Error('overlays/prod/kustomization.yaml no longer holds the commented-out Prometheus components');
    writeFileSync(file, text.replace(commented, commented.replace(/^# ?/gm, '')));
  }
  return join(copy, 'overlays/prod');
}

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;

/** kustomize's output with the generated ConfigMaps' hash suffixes removed (the test renderer does not hash). */
function kubectlKustomize(dir: string): K8sObject[] {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${r.stderr}`);
  const objs = parseK8sYaml(r.stdout, dir) as K8sObject[];
  const generated = new Set(objs.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name));
  for (const o of objs) {
    if (o.kind === 'ConfigMap') o.metadata.name = stripNameHash(o.metadata.name);
    const vols = (o as { spec?: { template?: { spec?: { volumes?: { configMap?: { name: string } }[] } } } }).spec?.template?.spec?.volumes ?? [];
    for (const v of vols) if (v.configMap && generated.has(v.configMap.name)) v.configMap.name = stripNameHash(v.configMap.name);
  }
  return objs;
}

const byId = (objs: K8sObject[]) => Object.fromEntries(objs.map((o) => [objectId(o), o]));

describe('deploy/k8s files', () => {
  it('every YAML file parses (as YAML 1.1, like Kubernetes), and every manifest names apiVersion, kind and metadata.name', () => {
    let count = 0;
    for (const dir of ['', ...k8sDirs()]) {
      for (const f of readdirSync(join(K8S, dir))) {
        const p = join(K8S, dir, f);
        if (statSync(p).isDirectory()) continue;
        expect(f, `${dir}/${f}`).toMatch(/\.yaml$/);
        const docs = parseK8sYaml(readFileSync(p, 'utf8'), p);
        expect(docs.length, p).toBeGreaterThan(0);
        count++;
        const k = readKustomizationSafe(join(K8S, dir));
        const referencedAsResource = (k?.resources ?? []).includes(f);
        if (referencedAsResource) {
          for (const d of docs as K8sObject[]) {
            expect(typeof d.apiVersion, `${p}: apiVersion`).toBe('string');
            expect(typeof d.kind, `${p}: kind`).toBe('string');
            expect(typeof d.metadata?.name, `${p}: metadata.name`).toBe('string');
          }
        }
      }
    }
    expect(count).toBeGreaterThan(15);
  });

  it('every folder is a kustomization that lists exactly the files in it, and everything it references exists', () => {
    for (const dir of k8sDirs().filter((d) => d !== 'overlays' && d !== 'components')) {
      const abs = join(K8S, dir);
      const k = readKustomization(abs);
      const listed = new Set<string>();
      for (const r of k.resources ?? []) {
        const p = resolve(abs, r);
        expect(existsSync(p), `${dir}: resource ${r}`).toBe(true);
        if (statSync(p).isDirectory()) expect(readKustomization(p).kind, `${dir}: ${r}`).toBe('Kustomization');
        else listed.add(r);
      }
      for (const c of k.components ?? []) expect(readKustomization(resolve(abs, c)).kind, `${dir}: component ${c}`).toBe('Component');
      for (const g of k.configMapGenerator ?? []) for (const f of g.files ?? []) listed.add(f.split('=').at(-1)!);
      for (const p of k.patches ?? []) if (p.path) listed.add(p.path);
      const files = readdirSync(abs).filter((f) => f !== 'kustomization.yaml' && statSync(join(abs, f)).isFile());
      expect([...listed].sort(), `${dir}: files listed in kustomization.yaml`).toEqual(files.sort());
    }
    // The two grouping folders hold only kustomizations.
    expect(readdirSync(join(K8S, 'overlays')).sort()).toEqual(['dev', 'prod', 'simulate', 'simulate-scale']);
    expect(readdirSync(join(K8S, 'components')).sort()).toEqual(['gpu-hospitals', 'metrics-access', 'servicemonitor', 'simulated-hospitals-access']);
    expect(readdirSync(K8S).sort()).toEqual(['base', 'components', 'overlays']);
  });

  it.each(BUILDS)('%s: every object validates against the Kubernetes schemas, with no unknown field, in namespace fedgan', async (build) => {
    const objs = rendered(build);
    expect(objs.length).toBeGreaterThan(5);
    for (const o of objs) {
      expect(await schemaProblems(o), objectId(o)).toEqual([]);
      expect(unknownFields(o), objectId(o)).toEqual([]);
      if (o.kind === 'Namespace') expect(o.metadata.name).toBe(NAMESPACE);
      else expect(o.metadata.namespace, objectId(o)).toBe(NAMESPACE);
    }
  });

  it('the prod overlay with the optional Prometheus components validates too (ServiceMonitor included)', async () => {
    const objs = kustomize(withPrometheusComponents());
    expect(objs.map((o) => o.kind)).toEqual(expect.arrayContaining(['ServiceMonitor', 'Ingress']));
    for (const o of objs) {
      expect(await schemaProblems(o), objectId(o)).toEqual([]);
      expect(unknownFields(o), objectId(o)).toEqual([]);
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, objectId(o)).toBe(NAMESPACE);
    }
  });

  it('the schema checks catch a wrong type, a misspelt field and an unknown kind', async () => {
    const d = rendered('base').find((o) => o.kind === 'Deployment')! as K8sObject & { spec: any };
    d.spec.replicas = 'one';
    d.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true;
    expect((await schemaProblems(d)).join()).toContain('spec/replicas must be integer');
    expect(unknownFields(d)).toEqual(['spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem']);
    expect(await schemaProblems({ apiVersion: 'v1', kind: 'Nonsense', metadata: { name: 'x' } })).toEqual(['no schema for v1 Nonsense']);
  });

  it('the manifests shown in docs/deploy.md validate as well', async () => {
    const doc = readFileSync(join(K8S, '../../docs/deploy.md'), 'utf8');
    const manifests = [...doc.matchAll(/```yaml\n(apiVersion:[\s\S]*?)```/g)].flatMap((m) => parseK8sYaml(m[1], 'docs/deploy.md') as K8sObject[]);
    expect(manifests.length).toBeGreaterThan(0);
    for (const o of manifests) {
      expect(await schemaProblems(o), objectId(o)).toEqual([]);
      expect(unknownFields(o), objectId(o)).toEqual([]);
    }
  });

  it.skipIf(!kubectl)('the test renderer gives what `kubectl kustomize` gives (generated-name hashes aside)', () => {
    for (const build of BUILDS) expect(byId(rendered(build)), build).toEqual(byId(kubectlKustomize(buildDir(build))));
    const prod = withPrometheusComponents();
    expect(byId(kustomize(prod)), 'prod + components').toEqual(byId(kubectlKustomize(prod)));
  });
});

function readKustomizationSafe(dir: string) {
  try {
    return readKustomization(dir);
  } catch {
    return undefined;
  }
}

/* eslint-disable @typescript-eslint/no-explicit-any */
