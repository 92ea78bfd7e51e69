import type { Container } from './k8sFiles.ts';

/**
 * What the kubelet does to a container's command, args and env before it starts, as far as the manifests
 * here use it: env from values and from fieldRefs to the pod's annotations (the Indexed Job's
 * batch.kubernetes.io/job-completion-index), and $(VAR) expansion. Used by the render tests and by the
 * container test (test/container/), which plays the kubelet for podman.
 */

export const INDEX_ANNOTATION = 'batch.kubernetes.io/job-completion-index';

/** The kubelet's $(VAR) expansion: defined variables only (others stay as written), $$ for a literal $. */
export function expand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name: string | undefined) => (name === undefined ? '$' : (env[name] ?? all)));
}

/** A container's environment in a pod with these annotations: values (expanded) and fieldRefs to annotations. */
export function podEnv(c: Pick<Container, 'env'>, annotations: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = expand(e.value, env);
    else {
      const m = /^metadata\.annotations\['(.+)'\]$/.exec(e.valueFrom?.fieldRef?.fieldPath ?? '');
      if (!m) throw new Error(`env ${e.name}: only values and fieldRefs to annotations are modelled here`);
      if (annotations[m[1]] === undefined) throw new Error(`env ${e.name}: the pod has no annotation ${m[1]}`);
      env[e.name] = annotations[m[1]];
    }
  }
  return env;
}
