import type { BackendName } from '../../shared/backend.ts';

/** Parse `?backend=webgl` (or a comma list such as `webgl,cpu`) into a backend order; unknown names are dropped. */
export function backendOrderFromQuery(value: string | null): BackendName[] | undefined {
  if (!value) return undefined;
  const known: BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];
  const order = value
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s): s is BackendName => (known as string[]).includes(s));
  return order.length ? order : undefined;
}
