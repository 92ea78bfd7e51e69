import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { kustomize, type K8sObject } from '../helpers/kustomize.ts';

/** Where deploy/k8s/ is, and its kustomization directories, rendered once per test file. */

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
export const K8S = join(ROOT, 'deploy', 'k8s');
export const NAMESPACE = 'fedgan';

/** Every directory under deploy/k8s/ (relative to it), depth first. */
export function k8sDirs(dir = K8S): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(relative(K8S, p), ...k8sDirs(p));
  }
  return out;
}

/** The buildable kustomizations: the base and each overlay. */
export const BUILDS = ['base', 'dev', 'prod', 'simulate', 'simulate-scale'] as const;
export type Build = (typeof BUILDS)[number];

/** The folder of a build, e.g. deploy/k8s/overlays/prod. */
export function buildDir(build: Build): string {
  return join(K8S, build === 'base' ? 'base' : `overlays/${build}`);
}

const cache = new Map<string, K8sObject[]>();
export function rendered(build: Build): K8sObject[] {
  if (!cache.has(build)) cache.set(build, kustomize(buildDir(build)));
  return structuredClone(cache.get(build)!);
}

export function find(objs: K8sObject[], kind: string, name: string): K8sObject {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name} among ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
  return o;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: any }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  readinessProbe?: any;
  livenessProbe?: any;
  resources?: any;
  securityContext?: any;
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: any[];
  securityContext?: any;
  [k: string]: any;
}

export function podSpec(o: K8sObject): PodSpec {
  return (o as any).spec.template.spec as PodSpec;
}
export function metadataOfTemplate(o: K8sObject): { labels?: Record<string, string>; annotations?: Record<string, string> } {
  return (o as any).spec.template.metadata;
}
