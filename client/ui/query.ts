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

/**
 * `?reconnectMaxMs=N`: the cap of this page's reconnection backoff (shared/protocol/connection.ts
 * DEFAULT_BACKOFF: 0.5 s doubling up to 30 s), a whole number of milliseconds ≥ 500; anything else is
 * ignored (the default). The end-to-end tests shorten the waits of a refused token with it.
 */
export function reconnectFromQuery(value: string | null): { maxMs: number } | undefined {
  if (!value || !/^\d+$/.test(value)) return undefined;
  const maxMs = Number(value);
  return maxMs >= 500 ? { maxMs } : undefined;
}

/**
 * A join link's token and the page's address without it. Join links carry the token in the fragment
 * (`https://host/#token=…`), which browsers never send to a server: it stays out of access logs, proxies and
 * Referer headers. Links of older servers carried it in the query (`?token=…`); both are read, the fragment
 * first. `cleanUrl` (path, query and fragment, for history.replaceState) keeps every other parameter and
 * drops the token from both places, so it is not left in the address bar or the history.
 */
export function tokenFromLink(href: string): { token?: string; cleanUrl: string } {
  const url = new URL(href);
  const fragment = new URLSearchParams(url.hash.replace(/^#/, ''));
  const token = fragment.get('token') || url.searchParams.get('token') || undefined;
  // Only a part that held a token is rewritten (an ordinary #anchor or query stays byte for byte).
  let hash = url.hash.replace(/^#/, '');
  if (fragment.has('token')) {
    fragment.delete('token');
    hash = fragment.toString();
  }
  let query = url.search.replace(/^\?/, '');
  if (url.searchParams.has('token')) {
    url.searchParams.delete('token');
    query = url.searchParams.toString();
  }
  return { ...(token ? { token } : {}), cleanUrl: `${url.pathname}${query ? `?${query}` : ''}${hash ? `#${hash}` : ''}` };
}
