/**
 * Admission of WebSocket connections, as pure decisions with the time passed in (the transport wires the
 * sockets and timers):
 *
 * - PreAuthBudget: sockets that have not yet said a valid hello get a small budget of their own, in total
 *   and per source address. When it is full, the oldest unauthenticated socket of the address holding the
 *   most is closed to make room, so idle sockets from other addresses can never lock a hospital out: a
 *   hospital sends its hello right after connecting and is authenticated long before its socket would be
 *   the oldest. (Sockets from the hospital's own address compete with it unless it presents its upgrade
 *   credential; see CredentialedWaiting and docs/protocol.md §5.1.) Authenticated
 *   connections are bounded by the number of tokens (one live connection per token) and never evicted.
 * - CredentialedWaiting: sockets whose upgrade request carried a known hospital's key (the `fedgan.auth.`
 *   subprotocol, shared/protocol/upgradeAuth.ts) wait for their hello outside that budget, one per hospital,
 *   so even a flood from the hospital's own address cannot keep it out.
 * - AuthThrottle: failed sign-ins (unknown tokens or upgrade keys) per source address, with exponential backoff.
 * - originAllowed: the WebSocket Origin allow-list.
 * - AdmissionLog: refusals logged in summary (the first at once, then one line per kind every window).
 * - clientAddress: the source address, through trusted reverse proxies (TRUSTED_PROXIES).
 */
import { BlockList, isIP } from 'node:net';
import { clientText } from './log.ts';

/** The key a budget or throttle counts under: an IPv4 address (also IPv4-mapped IPv6) as is, IPv6 by its /64. */
export function addressKey(remote: string | undefined): string {
  if (!remote) return '?';
  const a = remote.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return mapped[1];
  if (!a.includes(':')) return a;
  // One host usually has a whole /64: count it as one address.
  const [head, tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = a.includes('::') && tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t] : h;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

// ---------------------------------------------------------------------------------------------------------
// Reverse proxies
// ---------------------------------------------------------------------------------------------------------

/** An IPv4-mapped IPv6 address as IPv4; others unchanged. */
function plainAddress(a: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return m ? m[1] : a;
}

/** Reverse proxies (an ingress controller) whose X-Forwarded-For header is believed. */
export class TrustedProxies {
  private readonly list = new BlockList();

  constructor(readonly entries: readonly { address: string; prefix: number }[]) {
    for (const e of entries) this.list.addSubnet(e.address, e.prefix, isIP(e.address) === 6 ? 'ipv6' : 'ipv4');
  }

  has(address: string): boolean {
    const a = plainAddress(address);
    const v = isIP(a);
    return v !== 0 && this.list.check(a, v === 6 ? 'ipv6' : 'ipv4');
  }
}

/**
 * Parse TRUSTED_PROXIES: comma-separated addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`, `192.168.1.5`).
 * Returns the list, or the problems naming each bad entry.
 */
export function parseTrustedProxies(text: string): { proxies: TrustedProxies; problems: string[] } {
  const entries: { address: string; prefix: number }[] = [];
  const problems: string[] = [];
  for (const raw of text.split(',')) {
    const s = raw.trim();
    if (!s) continue;
    const [address, prefixText] = s.split('/');
    const v = isIP(address);
    const max = v === 6 ? 128 : 32;
    const prefix = prefixText === undefined ? max : Number(prefixText);
    if (!v || !Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d+$/.test(prefixText))) {
      problems.push(`"${s}" is not an IP address or CIDR range (e.g. 10.0.0.0/8, fd00::/8, 192.168.1.5)`);
    } else entries.push({ address, prefix });
  }
  return { proxies: new TrustedProxies(entries), problems };
}

/**
 * The address a connection comes from: the socket's peer, unless that is a trusted proxy; then the
 * rightmost X-Forwarded-For entry that is not itself a trusted proxy (entries to its left could be
 * made up by the client). Without trusted proxies, X-Forwarded-For is ignored.
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted?: TrustedProxies): string | undefined {
  if (!peer || !trusted || !trusted.has(peer) || forwardedFor === undefined) return peer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!isIP(plainAddress(hops[i]))) return peer; // garbage: do not believe any of it
    if (!trusted.has(hops[i])) return hops[i];
  }
  return hops[0] ?? peer;
}

// ---------------------------------------------------------------------------------------------------------
// The budget of unauthenticated sockets
// ---------------------------------------------------------------------------------------------------------

export interface PreAuthLimits {
  /** All open WebSockets, authenticated or not. */
  maxConnections: number;
  /** Sockets waiting for a valid hello, in total. */
  maxUnauthenticated: number;
  /** Sockets waiting for a valid hello, per source address (addressKey). */
  maxUnauthenticatedPerAddress: number;
}

export type AdmitDecision<T> =
  /** Admitted; `evict` (if set) was waiting for its hello and must be closed to make room (`because` says which budget was full). */
  | { admit: true; evict?: T; because?: 'address' | 'total' | 'connections' }
  /** Refused: maxConnections hospitals are connected and no unauthenticated socket is left to evict. */
  | { admit: false; reason: 'server-full' };

interface Pending<T> {
  item: T;
  seq: number;
}

export class PreAuthBudget<T> {
  /** address → its waiting sockets, oldest first. */
  private readonly byAddress = new Map<string, Pending<T>[]>();
  private readonly addressOf = new Map<T, string>();
  private seq = 0;

  constructor(readonly limits: PreAuthLimits) {}

  /** Sockets waiting for their hello. */
  get size(): number {
    return this.addressOf.size;
  }

  countOf(address: string): number {
    return this.byAddress.get(address)?.length ?? 0;
  }

  has(item: T): boolean {
    return this.addressOf.has(item);
  }

  /**
   * A new socket from `address`, with `authenticated` connections open. It is admitted (and counted)
   * unless maxConnections hospitals are connected; if a budget is full, the socket to close is returned
   * (it is no longer counted). The address is over its own budget: its oldest socket goes. The total or
   * maxConnections is reached: the oldest socket of the address holding the most (counting the newcomer)
   * goes, so an address with one socket (a hospital about to say hello) is the last to lose it.
   */
  admit(address: string, item: T, authenticated: number): AdmitDecision<T> {
    let evict: T | undefined;
    let because: 'address' | 'total' | 'connections' | undefined;
    if (this.countOf(address) >= this.limits.maxUnauthenticatedPerAddress) {
      evict = this.byAddress.get(address)![0].item;
      because = 'address';
    } else if (this.size >= this.limits.maxUnauthenticated || authenticated + this.size >= this.limits.maxConnections) {
      if (this.size === 0) return { admit: false, reason: 'server-full' };
      evict = this.victim(address);
      because = this.size >= this.limits.maxUnauthenticated ? 'total' : 'connections';
    }
    if (evict !== undefined) this.release(evict);
    const list = this.byAddress.get(address) ?? [];
    list.push({ item, seq: this.seq++ });
    this.byAddress.set(address, list);
    this.addressOf.set(item, address);
    return evict === undefined ? { admit: true } : { admit: true, evict, because };
  }

  /**
   * Room for a socket admitted outside this budget (a hospital's upgrade credential): with `others`
   * connections that do not count here (hospitals, and credentialed sockets waiting for their hello, the
   * new one included), the oldest socket of the address holding the most is released and returned while
   * `others` + this budget exceed maxConnections. Undefined when there is room (or nothing to release).
   */
  makeRoom(others: number): T | undefined {
    if (!this.size || others + this.size <= this.limits.maxConnections) return undefined;
    const evict = this.victim(undefined);
    this.release(evict);
    return evict;
  }

  /** The oldest socket of the address with the most waiting (the newcomer counted; ties: the oldest socket). */
  private victim(newcomer: string | undefined): T {
    let best: Pending<T>[] | undefined;
    let bestCount = -1;
    for (const [address, list] of this.byAddress) {
      const count = list.length + (address === newcomer ? 1 : 0);
      if (count > bestCount || (count === bestCount && list[0].seq < best![0].seq)) {
        best = list;
        bestCount = count;
      }
    }
    return best![0].item;
  }

  /** The socket said a valid hello, or is closing: it no longer counts. Unknown items are ignored. */
  release(item: T): void {
    const address = this.addressOf.get(item);
    if (address === undefined) return;
    this.addressOf.delete(item);
    const list = this.byAddress.get(address)!;
    const i = list.findIndex((p) => p.item === item);
    if (i >= 0) list.splice(i, 1);
    if (!list.length) this.byAddress.delete(address);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Sockets that presented a hospital's upgrade credential
// ---------------------------------------------------------------------------------------------------------

/**
 * Sockets whose upgrade request carried a known hospital's key (shared/protocol/upgradeAuth.ts) and that
 * wait for their hello, outside the PreAuthBudget: at most one per hospital, so at most one per token
 * (a newer one replaces the older, which is returned to be closed). Sockets without a credential can
 * never take their place.
 */
export class CredentialedWaiting<T> {
  private readonly byHospital = new Map<string, T>();
  private readonly hospitalOf = new Map<T, string>();

  get size(): number {
    return this.hospitalOf.size;
  }

  /** The hospital whose key `item` presented, or undefined when it is not waiting here. */
  claimOf(item: T): string | undefined {
    return this.hospitalOf.get(item);
  }

  /** Count `item` as `hospital`'s waiting socket; returns the older one it replaces (no longer counted). */
  admit(hospital: string, item: T): { replaced?: T } {
    const replaced = this.byHospital.get(hospital);
    if (replaced !== undefined) this.hospitalOf.delete(replaced);
    this.byHospital.set(hospital, item);
    this.hospitalOf.set(item, hospital);
    return replaced === undefined ? {} : { replaced };
  }

  /** The socket said its hello, or is closing. Unknown items are ignored. */
  release(item: T): void {
    const hospital = this.hospitalOf.get(item);
    if (hospital === undefined) return;
    this.hospitalOf.delete(item);
    if (this.byHospital.get(hospital) === item) this.byHospital.delete(hospital);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Failed sign-ins
// ---------------------------------------------------------------------------------------------------------

export interface AuthThrottleLimits {
  /** Failed sign-ins an address may make before it has to wait. */
  authFailuresBeforeBackoff: number;
  /** The wait after the first failure beyond those; it doubles with each further failure… */
  authBackoffSeconds: number;
  /** …up to this. */
  authBackoffMaxSeconds: number;
}

/** An address's failures are forgotten after this long without one. */
export const AUTH_FAILURES_FORGOTTEN_AFTER_MS = 10 * 60_000;
/** Addresses tracked at most (the least recently failed are forgotten first). */
export const AUTH_THROTTLE_MAX_ADDRESSES = 10_000;

interface Failures {
  count: number;
  last: number;
  blockedUntil: number;
}

/**
 * Failed sign-ins per source address. After `authFailuresBeforeBackoff` failures, the k-th further one
 * makes the address wait min(authBackoffSeconds · 2^(k−1), authBackoffMaxSeconds) before the server looks
 * at another hello from it. A success does not reset the count (an attacker may share an address with a
 * hospital); quiet does, after AUTH_FAILURES_FORGOTTEN_AFTER_MS.
 */
export class AuthThrottle {
  private readonly byAddress = new Map<string, Failures>();

  constructor(
    readonly limits: AuthThrottleLimits,
    private readonly maxAddresses = AUTH_THROTTLE_MAX_ADDRESSES,
  ) {}

  /** Milliseconds `address` must still wait before its next sign-in (0: it may sign in now). */
  blockedFor(address: string, now: number): number {
    const f = this.current(address, now);
    return f ? Math.max(0, f.blockedUntil - now) : 0;
  }

  /** Record a failed sign-in; returns the failures counted and the wait it imposes (ms, 0 for none). */
  failure(address: string, now: number): { failures: number; waitMs: number } {
    const f = this.current(address, now) ?? { count: 0, last: now, blockedUntil: 0 };
    f.count++;
    f.last = now;
    const over = f.count - this.limits.authFailuresBeforeBackoff;
    const waitMs = over > 0 ? Math.min(this.limits.authBackoffSeconds * 1000 * 2 ** (over - 1), this.limits.authBackoffMaxSeconds * 1000) : 0;
    f.blockedUntil = now + waitMs;
    // Re-insert: the map's order is least recently failed first.
    this.byAddress.delete(address);
    this.byAddress.set(address, f);
    while (this.byAddress.size > this.maxAddresses) this.byAddress.delete(this.byAddress.keys().next().value!);
    return { failures: f.count, waitMs };
  }

  /** Addresses with failures on record. */
  get tracked(): number {
    return this.byAddress.size;
  }

  /** Forget addresses whose failures are old (call now and then). */
  prune(now: number): void {
    for (const [address, f] of this.byAddress) {
      if (now - f.last < AUTH_FAILURES_FORGOTTEN_AFTER_MS) break; // least recently failed first
      this.byAddress.delete(address);
    }
  }

  private current(address: string, now: number): Failures | undefined {
    const f = this.byAddress.get(address);
    if (f && now - f.last >= AUTH_FAILURES_FORGOTTEN_AFTER_MS) {
      this.byAddress.delete(address);
      return undefined;
    }
    return f;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Origin
// ---------------------------------------------------------------------------------------------------------

/**
 * Parse an ALLOWED_ORIGINS value: comma-separated origins (`https://app.example.org`, `http://localhost:5173`)
 * or `*` for any. Returns the normalised origins, or the problems naming each bad entry.
 */
export function parseAllowedOrigins(text: string): { origins: string[]; problems: string[] } {
  const origins: string[] = [];
  const problems: string[] = [];
  for (const raw of text.split(',')) {
    const s = raw.trim();
    if (!s) continue;
    if (s === '*') {
      origins.push('*');
      continue;
    }
    let u: URL | undefined;
    try {
      u = new URL(s);
    } catch {
      // reported below
    }
    if (!u || !/^https?:$/.test(u.protocol) || u.pathname !== '/' || u.search || u.hash || u.username || u.password) {
      problems.push(`"${s}" is not an origin (scheme://host[:port], e.g. https://fedgan.example.org)`);
    } else origins.push(u.origin);
  }
  return { origins, problems };
}

export interface OriginPolicy {
  /** Extra allowed origins (normalised, as parseAllowedOrigins returns them); `*` allows any. */
  allowed?: readonly string[];
  /** PUBLIC_URL: the served app's origin. */
  publicUrl?: string;
}

/**
 * Whether a WebSocket upgrade with this Origin header may proceed. Allowed: no Origin (non-browser
 * clients: the Node hospitals, other programs; they could send any Origin anyway), the request's own
 * host (the web app this server serves, also through `npm run dev`'s proxy), PUBLIC_URL's origin, and
 * every origin in `allowed`.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, policy: OriginPolicy): boolean {
  if (origin === undefined || origin === '') return true;
  if (policy.allowed?.includes('*')) return true;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false; // "null" (sandboxed frames, file://) or garbage
  }
  if (!/^https?:$/.test(u.protocol)) return false;
  if (host && u.host === host.toLowerCase()) return true;
  if (policy.publicUrl) {
    try {
      if (new URL(policy.publicUrl).origin === u.origin) return true;
    } catch {
      // an invalid PUBLIC_URL is refused by the config loader
    }
  }
  return policy.allowed?.includes(u.origin) ?? false;
}

// ---------------------------------------------------------------------------------------------------------
// Summary logging
// ---------------------------------------------------------------------------------------------------------

export type AdmissionEvent = 'evicted' | 'server-full' | 'throttled' | 'unauthorized' | 'origin' | 'hello-timeout' | 'bad-hello' | 'replaced';

/** How each kind of refusal reads in the log ("{n}": the count). */
export function admissionPhrases(l: PreAuthLimits & AuthThrottleLimits & { helloTimeoutSeconds: number }): Record<AdmissionEvent, (n: number) => string> {
  const s = (n: number, one: string, many: string) => (n === 1 ? one : many);
  return {
    evicted: (n) =>
      `closed ${n} unauthenticated ${s(n, 'connection', 'connections')} (no hello yet) to make room for new ones ` +
      `(budget: ${l.maxUnauthenticated} in all, ${l.maxUnauthenticatedPerAddress} per address; hospitals send their hello at once and are not affected)`,
    'server-full': (n) => `refused ${n} ${s(n, 'connection', 'connections')}: ${l.maxConnections} hospitals connected (limits.maxConnections)`,
    throttled: (n) => `refused ${n} ${s(n, 'connection', 'connections')} during a sign-in backoff (too many unknown tokens from the address)`,
    unauthorized: (n) =>
      `refused ${n} ${s(n, 'sign-in', 'sign-ins')} with an unknown token (after ${l.authFailuresBeforeBackoff} an address waits ` +
      `${l.authBackoffSeconds} s, doubling up to ${l.authBackoffMaxSeconds} s)`,
    origin: (n) => `refused ${n} WebSocket ${s(n, 'upgrade', 'upgrades')} from a web origin that is not allowed (ALLOWED_ORIGINS)`,
    'hello-timeout': (n) => `closed ${n} ${s(n, 'connection', 'connections')} that sent no hello within ${l.helloTimeoutSeconds} s`,
    'bad-hello': (n) => `closed ${n} ${s(n, 'connection', 'connections')} whose first message was not a valid hello`,
    replaced: (n) =>
      `closed ${n} ${s(n, 'connection', 'connections')} that presented a hospital's upgrade credential and ${s(n, 'was', 'were')} replaced by a newer one of that hospital before ${s(n, 'its', 'their')} hello`,
  };
}

interface Tally {
  /** When the last line of this kind was written. */
  lastLine?: number;
  count: number;
  addresses: Map<string, number>;
  detail?: string;
}

/**
 * Refusals in summary: the first of a kind after a quiet window is logged at once (an operator sees a
 * hospital's wrong token without waiting), the rest are counted and written as one line per kind when
 * the window has passed since that kind's last line: "refused 312 sign-ins … from 3 addresses in the
 * last 10 s (most from 10.0.0.7: 300)". Client-sent details are escaped.
 */
export class AdmissionLog {
  private readonly tallies = new Map<AdmissionEvent, Tally>();

  constructor(
    private readonly phrases: Record<AdmissionEvent, (n: number) => string>,
    readonly windowMs = 10_000,
  ) {}

  /** Count one refusal; returns a line to log now when this kind was quiet for a window. */
  note(kind: AdmissionEvent, address: string, now: number, detail?: string): string | undefined {
    let t = this.tallies.get(kind);
    if (!t) this.tallies.set(kind, (t = { count: 0, addresses: new Map() }));
    if (t.count === 0 && (t.lastLine === undefined || now - t.lastLine >= this.windowMs)) {
      t.lastLine = now;
      return `${this.phrases[kind](1)} from ${address}${detail !== undefined ? `: ${clientText(detail, 100)}` : ''}` + ` (more are summarised every ${this.windowMs / 1000} s)`;
    }
    t.count++;
    t.addresses.set(address, (t.addresses.get(address) ?? 0) + 1);
    if (detail !== undefined) t.detail ??= detail;
    return undefined;
  }

  /** Summary lines of the kinds whose window has passed. */
  flush(now: number, force = false): string[] {
    const lines: string[] = [];
    for (const [kind, t] of this.tallies) {
      if (!t.count || (!force && t.lastLine !== undefined && now - t.lastLine < this.windowMs)) continue;
      let top = '';
      let topCount = 0;
      for (const [a, n] of t.addresses) if (n > topCount) [top, topCount] = [a, n];
      const m = t.addresses.size;
      const seconds = Math.max(1, Math.round((now - (t.lastLine ?? now)) / 1000));
      lines.push(
        `${this.phrases[kind](t.count)} from ${m} ${m === 1 ? 'address' : 'addresses'} in the last ${seconds} s` +
          (m === 1 ? ` (${top})` : ` (most from ${top}: ${topCount})`) +
          (t.detail !== undefined ? `, e.g. ${clientText(t.detail, 100)}` : ''),
      );
      t.count = 0;
      t.addresses.clear();
      t.detail = undefined;
      t.lastLine = now;
    }
    return lines;
  }
}

