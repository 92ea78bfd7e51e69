import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selectHospitals } from '../../cli/remote.ts';
import { parseSimulateArgs, type SimulateArgs } from '../../cli/simulate.ts';
import { parseFedConfigText } from '../../shared/config/fedConfig.ts';
import { schemaProblems, unknownFields } from '../helpers/k8sSchema.ts';
import { kustomize, kustomizeWith, objectId, parseK8sYaml, stripNameHash, type K8sObject } from '../helpers/kustomize.ts';
import { buildDir, find, K8S, podSpec, rendered, ROOT } from './k8sFiles.ts';
import { expand, INDEX_ANNOTATION, podEnv } from './kubelet.ts';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * overlays/simulate-scale: the paper's cluster experiment as one pod per hospital (an Indexed Job), and
 * the simulate overlay's one-pod Job: the pods' arguments, as the kubelet expands them for each index,
 * parse with the simulation's own parser (cli/simulate.ts) and pick the token of their index
 * (cli/remote.ts); the numbers that must agree (completions, parallelism, --clients, the federation's
 * minimums, the image size) agree; the GPU component adds a GPU and leaves the rest alone.
 */

/** The simulation's arguments of the Job's pod with this index (undefined: a Job that is not Indexed). */
function podArgs(job: any, index?: number): string[] {
  const c = podSpec(job).containers[0];
  expect(c.command!.slice(-1)).toEqual(['cli/simulate.ts']);
  const env = podEnv(c, index === undefined ? {} : { [INDEX_ANNOTATION]: String(index) });
  return c.args!.map((a) => expand(a, env));
}

function parsed(argv: string[]): SimulateArgs {
  const a = parseSimulateArgs(argv);
  if (a === 'help') throw new Error('help');
  return a;
}

const tokensFor = (n: number) => Array.from({ length: n }, (_, i) => ({ hospital: `sim-${i + 1}`, token: `token-of-sim-${i + 1}-0123456789` }));

describe('simulate-scale overlay: one pod per hospital', () => {
  const objs = rendered('simulate-scale');
  const job = find(objs, 'Job', 'fedgan-hospitals') as any;
  const fed = parseFedConfigText((find(objs, 'ConfigMap', 'fedgan-config') as any).data['federation.yaml'], 'federation.yaml');
  const n = job.spec.completions as number;

  it('is the dev deployment plus the Indexed Job, the network exception and a tiles volume the pods share', () => {
    const kinds = (o: K8sObject[]) => o.map((x) => `${x.kind}/${x.metadata.name}`).sort();
    expect(kinds(objs)).toEqual([...kinds(rendered('dev')), 'Job/fedgan-hospitals', 'NetworkPolicy/fedgan-allow-simulated-hospitals', 'PersistentVolumeClaim/fedgan-scale-tiles'].sort());
    const claim = podSpec(job).volumes!.find((v) => v.persistentVolumeClaim)!.persistentVolumeClaim;
    expect(claim).toEqual({ claimName: 'fedgan-scale-tiles', readOnly: true });
    expect((find(objs, 'PersistentVolumeClaim', 'fedgan-scale-tiles') as any).spec.accessModes).toEqual(['ReadWriteMany']);
  });

  it('runs N = 4 pods at once, completions = parallelism = --clients = the minimums of its federation config', () => {
    expect(job.spec.completionMode).toBe('Indexed');
    expect(n).toBe(4);
    expect(job.spec.parallelism).toBe(n);
    expect(parsed(podArgs(job, 0)).clients).toBe(n);
    expect([fed.minAvailable, fed.minFit, fed.minCompletion]).toEqual([n, n, n]);
    expect(fed.fraction).toBe(1);
    expect(parsed(podArgs(job, 0)).model.imageSize).toBe(fed.model.imageSize);
  });

  it("each pod's arguments, expanded for its index as the kubelet does, parse with the simulation's parser: hospital i of N, with token i", () => {
    const tokens = tokensFor(n);
    const server = podSpec(job).containers[0];
    const tokensMount = server.volumeMounts!.find((m) => m.name === 'tokens')!.mountPath;
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const args = parsed(podArgs(job, i));
      expect(args).toMatchObject({ server: 'ws://fedgan/ws', clients: n, hospitalIndex: i, data: '/data', tokens: join(tokensMount, 'tokens.yaml') });
      const [h] = selectHospitals(tokens, args.clients, args.tokens!, args.hospitalIndex);
      expect(h).toEqual({ index: i, ...tokens[i] });
      seen.add(h.hospital);
    }
    expect(seen.size).toBe(n);
    // One token short: the last pod stops with a message naming what is missing.
    expect(() => selectHospitals(tokens.slice(0, n - 1), n, '/etc/fedgan/tokens/tokens.yaml', n - 1)).toThrow(`hospital index ${n - 1} has no token`);
  });

  it('without its index (a plain Job, or a kubelet that did not expand it) the pod refuses to start', () => {
    expect(() => parsed(podArgs(job, undefined as unknown as number))).toThrow();
    const c = structuredClone(podSpec(job).containers[0]);
    c.env = [];
    expect(() => parsed(c.args!)).toThrow('--hospital-index must be an integer ≥ 0, got "$(JOB_COMPLETION_INDEX)"');
  });

  it('runs as locked down as the server, with limits, the same image, and the NetworkPolicy admits its pods', () => {
    const server = podSpec(find(objs, 'Deployment', 'fedgan')).containers[0];
    const pod = podSpec(job);
    expect(pod.restartPolicy).toBe('Never');
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
      expect(c.securityContext, c.name).toEqual(server.securityContext);
      expect(c.resources.limits, c.name).toBeDefined();
      expect(c.image, c.name).toBe(server.image);
    }
    expect(pod.containers[0].resources.limits['nvidia.com/gpu']).toBeUndefined();
    expect(pod.nodeSelector).toBeUndefined();
    const np = find(objs, 'NetworkPolicy', 'fedgan-allow-simulated-hospitals') as any;
    for (const [k, v] of Object.entries(np.spec.ingress[0].from[0].podSelector.matchLabels)) expect(job.spec.template.metadata.labels[k], k).toBe(v);
  });

  it('with components/gpu-hospitals: one GPU per pod on a GPU node, training through Dawn; the server untouched; valid', async () => {
    const gpu = kustomizeWith(buildDir('simulate-scale'), [join(K8S, 'components/gpu-hospitals')]);
    const g = find(gpu, 'Job', 'fedgan-hospitals') as any;
    const pod = podSpec(g);
    expect(pod.containers[0].resources.limits['nvidia.com/gpu']).toBe(1);
    expect(pod.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(pod.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(podEnv(pod.containers[0], { [INDEX_ANNOTATION]: '0' }).DAWN_NODE).toBe('/opt/dawn/dawn.node');
    expect(find(gpu, 'Deployment', 'fedgan')).toEqual(find(objs, 'Deployment', 'fedgan'));
    for (let i = 0; i < n; i++) expect(parsed(podArgs(g, i)).hospitalIndex).toBe(i);
    for (const o of gpu) {
      expect(await schemaProblems(o), objectId(o)).toEqual([]);
      expect(unknownFields(o), objectId(o)).toEqual([]);
    }
  });

  it("docs/deploy.md's 32-hospital overlay renders 32 pods whose arguments and federation config agree", async () => {
    const doc = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8');
    const m = /```yaml\n# my-experiment\/kustomization\.yaml\n([\s\S]*?)```/.exec(doc);
    expect(m, 'docs/deploy.md shows my-experiment/kustomization.yaml').not.toBeNull();
    const fedBlock = /```yaml\n# my-experiment\/federation\.yaml\n([\s\S]*?)```/.exec(doc);
    expect(fedBlock, 'docs/deploy.md shows my-experiment/federation.yaml').not.toBeNull();
    const tmp = mkdtempSync(join(tmpdir(), 'fedgan-scale-doc-'));
    try {
      // The folder beside deploy/ as the docs lay it out.
      symlinkSync(join(ROOT, 'deploy'), join(tmp, 'deploy'));
      mkdirSync(join(tmp, 'my-experiment'));
      writeFileSync(join(tmp, 'my-experiment/kustomization.yaml'), m![1]);
      writeFileSync(join(tmp, 'my-experiment/federation.yaml'), fedBlock![1]);
      const objs32 = kustomize(join(tmp, 'my-experiment'));
      const j = find(objs32, 'Job', 'fedgan-hospitals') as any;
      expect([j.spec.completions, j.spec.parallelism]).toEqual([32, 32]);
      const f = parseFedConfigText((find(objs32, 'ConfigMap', 'fedgan-config') as any).data['federation.yaml'], 'federation.yaml');
      expect([f.minAvailable, f.minFit, f.minCompletion]).toEqual([32, 32, 32]);
      const seen = new Set<number>();
      for (let i = 0; i < 32; i++) {
        const a = parsed(podArgs(j, i));
        expect(a.clients).toBe(32);
        expect(a.model.imageSize).toBe(f.model.imageSize);
        seen.add(a.hospitalIndex!);
      }
      expect(seen.size).toBe(32);
      for (const o of objs32) expect(await schemaProblems(o), objectId(o)).toEqual([]);
      // kustomize itself, where kubectl is installed, renders the same (the generated ConfigMap's hash aside).
      const r = spawnSync('kubectl', ['kustomize', join(tmp, 'my-experiment')], { encoding: 'utf8' });
      if (!r.error) {
        expect(r.status, r.stderr).toBe(0);
        const real = parseK8sYaml(r.stdout, 'kubectl kustomize') as any[];
        for (const o of real) if (o.kind === 'ConfigMap') o.metadata.name = stripNameHash(o.metadata.name);
        const realJob = find(real, 'Job', 'fedgan-hospitals') as any;
        expect(realJob).toEqual(j);
        expect((find(real, 'ConfigMap', 'fedgan-config') as any).data).toEqual((find(objs32, 'ConfigMap', 'fedgan-config') as any).data);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe("simulate overlay: the one-pod Job's arguments parse with the simulation's parser", () => {
  it('runs --clients hospitals, as many as its federation waits for, at its image size', () => {
    const objs = rendered('simulate');
    const job = find(objs, 'Job', 'fedgan-simulated-hospitals') as any;
    const fed = parseFedConfigText((find(objs, 'ConfigMap', 'fedgan-config') as any).data['federation.yaml'], 'federation.yaml');
    const a = parsed(podArgs(job));
    expect(a).toMatchObject({ server: 'ws://fedgan/ws', clients: fed.minAvailable });
    expect(a.hospitalIndex).toBeUndefined();
    expect(a.model.imageSize).toBe(fed.model.imageSize);
    expect(selectHospitals(tokensFor(a.clients), a.clients, a.tokens!)).toHaveLength(a.clients);
  });
});
