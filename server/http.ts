import { createHash, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { ENV, PATHS } from './config.ts';
import { AdmissionLog, addressKey, AuthThrottle, clientAddress, type AdmissionEvent, type AuthThrottleLimits, type TrustedProxies } from './admission.ts';
import { silentLogger, type Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { StatusJson } from './roundMachine.ts';
import { AUTH_SUBPROTOCOL_PREFIX, upgradeKeyFromTokenHash } from '../shared/protocol/upgradeAuth.ts';

/** HTTP routes: probes, metrics, status JSON and the built web app. */

export interface HttpDeps {
  isReady(): boolean;
  /** Why /readyz answers 503 (default "loading state"), e.g. a checkpoint that cannot be written. */
  notReadyReason?(): string;
  metrics(): string;
  /** The full status (server/roundMachine.ts StatusJson), or `{phase: 'loading'}` before the state is loaded. */
  status(): StatusJson | { phase: 'loading' };
  /** Who may read the full status (the server always has one: server/console/setup.ts); without it, /api/status answers everyone with the public view only. */
  operator?: OperatorAuth;
  /** Directory of the built web app (`dist/`). */
  staticDir: string;
  /** The operator console's API (server/console/console.ts): every path under /api/console/. */
  console?(req: IncomingMessage, res: ServerResponse, pathname: string): void;
}

/** The operator console page: dist/console/index.html (the client/console/ entry of vite.config.ts), served at /console. */
export const CONSOLE_PAGE = '/console';
const CONSOLE_API_PREFIX = '/api/console/';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.webmanifest': 'application/manifest+json',
};

export const PLACEHOLDER_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>FedGAN federation server</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>FedGAN federation server</h1>
<p>The server is running, but the web app is not built.</p>
<p>Run <code>npm run build</code> (or <code>npm start</code>, which builds first) to serve it here.</p>
<p>Status: <a href="${PATHS.status}">${PATHS.status}</a> · Metrics: <a href="${PATHS.metrics}">${PATHS.metrics}</a></p>
</body></html>
`;

/**
 * Headers of every HTTP response the server sends (the WebSocket upgrade refusals of server/transport.ts
 * too, through rawHttpResponse). `Referrer-Policy: no-referrer`: a page of this server never tells another
 * site its address, so a join link that still carries a token (an old `?token=` link) cannot leak it
 * through a Referer header.
 */
export const COMMON_HEADERS = {
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
} as const;

/** Headers that let the web app use SharedArrayBuffer (tfjs wasm threads) and keep it same-origin. */
const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

function send(res: ServerResponse, code: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body), ...COMMON_HEADERS, ...extra });
  res.end(body);
}

/** A whole HTTP/1.1 response (`status` e.g. "404 Not Found"), for a socket refused before any HTTP handler (WebSocket upgrades). */
export function rawHttpResponse(status: string, extra: Record<string, string> = {}, body = ''): string {
  const headers = { Connection: 'close', ...COMMON_HEADERS, ...extra, 'Content-Length': String(Buffer.byteLength(body)) };
  return `HTTP/1.1 ${status}\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n')}\r\n\r\n${body}`;
}

export function createHttpHandler(deps: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const root = resolve(deps.staticDir);
  return (req, res) => {
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return send(res, 400, 'text/plain; charset=utf-8', 'bad request\n');
    }
    if (pathname.startsWith(CONSOLE_API_PREFIX)) {
      if (deps.console) return deps.console(req, res, pathname);
      return send(res, 503, 'application/json; charset=utf-8', JSON.stringify({ error: 'the console is not ready yet (loading state)' }));
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
    }
    switch (pathname) {
      case PATHS.healthz:
        return send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      case PATHS.readyz:
        return deps.isReady() ? send(res, 200, 'text/plain; charset=utf-8', 'ready\n') : send(res, 503, 'text/plain; charset=utf-8', `${deps.notReadyReason?.() ?? 'loading state'}\n`);
      case PATHS.metrics:
        return send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', deps.metrics());
      case PATHS.status:
        return sendStatus(deps, req, res);
      case PATHS.ws:
        return send(res, 426, 'text/plain; charset=utf-8', 'this is a WebSocket endpoint\n', { Upgrade: 'websocket' });
    }
    serveStatic(root, pathname, req, res);
  };
}

function serveStatic(root: string, pathname: string, req: IncomingMessage, res: ServerResponse): void {
  // The console is its own page: never the hospital app in its place.
  if ((pathname === CONSOLE_PAGE || pathname.startsWith(CONSOLE_PAGE + '/')) && extname(pathname) === '') {
    const page = join(root, 'console', 'index.html');
    if (!existsSync(page)) return send(res, 404, 'text/plain; charset=utf-8', 'not found (the operator console is not built: run npm run build)\n');
    pathname = '/console/index.html';
  }
  const index = join(root, 'index.html');
  if (!existsSync(index)) {
    if (pathname === '/' || pathname === '/index.html') return send(res, 200, 'text/html; charset=utf-8', PLACEHOLDER_HTML, ISOLATION_HEADERS);
    return send(res, 404, 'text/plain; charset=utf-8', 'not found (the web app is not built: run npm run build)\n');
  }
  const rel = normalize(pathname).replace(/^([/\\])+/, '');
  let file = resolve(root, rel);
  if (file !== root && !file.startsWith(root + sep)) return send(res, 403, 'text/plain; charset=utf-8', 'forbidden\n');
  let st = safeStat(file);
  if (st?.isDirectory()) {
    file = join(file, 'index.html');
    st = safeStat(file);
  }
  if (!st || !st.isFile()) {
    // Unknown paths without an extension are app routes: serve the app.
    if (extname(pathname) === '') {
      file = index;
      st = safeStat(file);
    }
    if (!st) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }
  const type = TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
  const immutable = /[/\\]assets[/\\]/.test(file);
  res.writeHead(200, {
    'Content-Type': type,
    'Content-Length': st.size,
    'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    ...COMMON_HEADERS,
    ...ISOLATION_HEADERS,
  });
  if (req.method === 'HEAD') return void res.end();
  createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res);
}

function safeStat(file: string) {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// /api/status: public aggregate view, full view for the operator
// ---------------------------------------------------------------------------------------------------------

/**
 * /api/status as anyone may read it (the web app reads the model config and the history from it): the
 * federation's aggregate progress and nothing about any one hospital. No hospital names, who is online or
 * sampled only as counts, no per-hospital progress, no checkpoint error text. Built field by field, so
 * that a field added to the full status stays private until it is added here.
 */
export interface PublicStatus {
  view: 'public';
  round: number;
  rounds: number;
  phase: StatusJson['phase'];
  attempt: number | null;
  /** Counts of the hospitals connected, sampled in the round in flight, whose updates it accepted, and sampled ones waiting to reconnect. */
  hospitals: { connected: number; sampled: number; received: number; reconnecting: number };
  deadline: string | null;
  fingerprint: string;
  parameters: number;
  config: StatusJson['config'];
  /**
   * The history, field by field too: no names of the hospitals of each round (`participants` counts them),
   * no median example count (a count one hospital sent), nothing added to history entries later.
   */
  history: PublicHistoryEntry[];
  retry: StatusJson['retry'];
  checkpoint: { writeFailures: number; pending: { round: number; failures: number; nextRetryAt: string | null } | null };
  quality: StatusJson['quality'];
}

/** A round of the public history: sums and means over its hospitals, never one hospital's figure. */
export type PublicHistoryEntry = Pick<StatusJson['history'][number], 'round' | 'participants' | 'examples' | 'dLoss' | 'gLoss' | 'seconds' | 'attempts' | 'completedAt' | 'quality'>;

export function publicStatus(s: StatusJson): PublicStatus {
  return {
    view: 'public',
    round: s.round,
    rounds: s.rounds,
    phase: s.phase,
    attempt: s.attempt,
    hospitals: { connected: s.connected.length, sampled: s.sampled.length, received: s.received.length, reconnecting: s.reconnecting?.length ?? 0 },
    deadline: s.deadline,
    fingerprint: s.fingerprint,
    parameters: s.parameters,
    config: s.config,
    history: s.history.map((h) => ({
      round: h.round,
      participants: h.participants,
      examples: h.examples,
      dLoss: h.dLoss,
      gLoss: h.gLoss,
      seconds: h.seconds,
      attempts: h.attempts,
      completedAt: h.completedAt,
      ...(h.quality ? { quality: h.quality } : {}),
    })),
    retry: { failedAttempts: s.retry.failedAttempts, nextAttemptAt: s.retry.nextAttemptAt, stopped: s.retry.stopped },
    checkpoint: {
      writeFailures: s.checkpoint.writeFailures,
      pending: s.checkpoint.pending ? { round: s.checkpoint.pending.round, failures: s.checkpoint.pending.failures, nextRetryAt: s.checkpoint.pending.nextRetryAt } : null,
    },
    quality: s.quality,
  };
}

function sendStatus(deps: HttpDeps, req: IncomingMessage, res: ServerResponse): void {
  const json = 'application/json; charset=utf-8';
  const status = deps.status();
  const vary = { Vary: 'Authorization' };
  // Still loading: nothing to show in either view.
  if (!('connected' in status)) return send(res, 200, json, JSON.stringify(status), vary);
  const auth = req.headers.authorization;
  if (auth === undefined) return send(res, 200, json, JSON.stringify(publicStatus(status)), vary);
  const verdict: OperatorVerdict = deps.operator
    ? deps.operator.check(auth, req.socket.remoteAddress, req.headers['x-forwarded-for'])
    : { ok: false, code: 401, message: `this server has no operator token (neither ${ENV.OPERATOR_TOKEN} nor an operator entry in ${ENV.TOKENS_FILE}): only the public view, without Authorization` };
  if (verdict.ok) return send(res, 200, json, JSON.stringify({ view: 'operator', ...status }), vary);
  const extra: Record<string, string> = { 'WWW-Authenticate': 'Bearer realm="fedgan operator"' };
  if (verdict.code === 429) extra['Retry-After'] = String(verdict.retryAfterSeconds);
  return send(res, verdict.code, json, JSON.stringify({ error: verdict.message }), extra);
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export type OperatorVerdict =
  | { ok: true }
  | { ok: false; code: 401; message: string }
  | { ok: false; code: 403; message: string }
  | { ok: false; code: 429; message: string; retryAfterSeconds: number };

export interface OperatorAuthOptions {
  /** The operator's secret (OPERATOR_TOKEN)… */
  token?: string;
  /** …and/or the SHA-256 (hex) of operator tokens (`operator` entries of the tokens file). At least one token in all. */
  sha256?: readonly string[];
  log?: Logger;
  metrics?: Metrics;
  /** Milliseconds since the epoch (tests inject a clock). */
  now?: () => number;
  /** Backoff of an address that sends wrong tokens (server/admission.ts AuthThrottle). */
  limits?: AuthThrottleLimits;
  /** Wrong tokens after the first of a window are logged as one summary line per window (AdmissionLog). */
  summaryWindowMs?: number;
  /** TRUSTED_PROXIES: behind them, a request counts under the client address of `X-Forwarded-For` (admission.ts clientAddress). */
  trustedProxies?: TrustedProxies;
  /**
   * The hospital a token (or, for the console's WebSocket, an upgrade key) belongs to: such a token is
   * refused with 403 and a message saying it is a hospital's, not the operator's (it still counts as a
   * failed operator sign-in).
   */
  hospitalOf?: (token: string) => string | undefined;
  hospitalOfUpgradeKey?: (key: string) => string | undefined;
}

/** Default backoff of wrong operator tokens: 3 free tries, then 1 s, 2 s, 4 s, … up to 5 min. */
export const OPERATOR_THROTTLE: AuthThrottleLimits = { authFailuresBeforeBackoff: 3, authBackoffSeconds: 1, authBackoffMaxSeconds: 300 };

/**
 * The operator's bearer token for the console and the full /api/status: OPERATOR_TOKEN and/or the
 * `operator` entries of the tokens file, else the one created on the first start (server/console/setup.ts).
 * The presented token's SHA-256 is compared with each configured one in constant time (timingSafeEqual).
 * A hospital's token gets 403 (saying so), any other wrong token 401; each
 * counts against its source address like a hospital's unknown token (server/admission.ts AuthThrottle):
 * after OPERATOR_THROTTLE's free tries the address waits a backoff that doubles with each further wrong
 * token, answered 429 with Retry-After meanwhile (even with the right token). Refusals are counted in
 * `fedgan_refusals_total{reason="operator-unauthorized"|"operator-throttled"}` and logged in summary
 * (server/admission.ts AdmissionLog): the first of a quiet window at once, the rest as one line a window.
 */
export class OperatorAuth {
  private readonly digests: Buffer[];
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly throttle: AuthThrottle;
  private readonly summary: AdmissionLog;
  private flushTimer?: NodeJS.Timeout;

  constructor(private readonly opts: OperatorAuthOptions) {
    this.digests = [...(opts.token !== undefined ? [sha256(opts.token)] : []), ...(opts.sha256 ?? []).map((h) => Buffer.from(h, 'hex'))];
    if (!this.digests.length || this.digests.some((d) => d.length !== 32)) throw new Error('OperatorAuth needs an operator token or its SHA-256 (64 hex digits)');
    this.log = opts.log ?? silentLogger;
    this.now = opts.now ?? Date.now;
    const limits = opts.limits ?? OPERATOR_THROTTLE;
    this.throttle = new AuthThrottle(limits);
    // Only these two kinds are ever noted here.
    const phrases = {
      unauthorized: (n: number) =>
        `operator sign-in (${PATHS.status}, the console): refused ${n} wrong operator ${n === 1 ? 'token' : 'tokens'} (after ${limits.authFailuresBeforeBackoff} an address waits ` +
        `${limits.authBackoffSeconds} s, doubling up to ${limits.authBackoffMaxSeconds} s)`,
      throttled: (n: number) => `operator sign-in (${PATHS.status}, the console): refused ${n} ${n === 1 ? 'request' : 'requests'} with an operator token during a backoff (too many wrong tokens from the address)`,
    } as Record<AdmissionEvent, (n: number) => string>;
    this.summary = new AdmissionLog(phrases, opts.summaryWindowMs ?? 60_000);
  }

  /** Check an `Authorization` header from `peer` (the socket's address; with TRUSTED_PROXIES, the client named in `forwardedFor`). */
  check(authorization: string, peer: string | undefined, forwardedFor?: string | string[]): OperatorVerdict {
    const now = this.now();
    this.flush(now);
    const address = addressKey(clientAddress(peer, forwardedFor, this.opts.trustedProxies));
    const wait = this.throttle.blockedFor(address, now);
    if (wait > 0) {
      this.opts.metrics?.refuse('operator-throttled');
      this.note('throttled', address, now);
      return { ok: false, code: 429, message: 'too many wrong operator tokens from this address: try again later', retryAfterSeconds: Math.ceil(wait / 1000) };
    }
    const m = /^Bearer +(\S+) *$/i.exec(authorization);
    if (m) {
      const presented = sha256(m[1]);
      // Every digest is compared (constant time each), so the timing says nothing about which matched.
      let match = false;
      for (const d of this.digests) match = timingSafeEqual(presented, d) || match;
      if (match) return { ok: true };
    }
    const hospital = m ? this.opts.hospitalOf?.(m[1]) : undefined;
    return this.refused(address, now, m ? 'wrong operator token' : 'the Authorization header must be "Bearer <operator token>"', hospital);
  }

  /**
   * Check the credential of a console WebSocket upgrade: the `fedgan.auth.<key>` subprotocol made from the
   * operator token (shared/protocol/upgradeAuth.ts upgradeKey), compared in constant time with the key of
   * each operator token. Throttled and refused like check().
   */
  checkUpgradeKey(key: string | undefined, peer: string | undefined, forwardedFor?: string | string[]): OperatorVerdict {
    const now = this.now();
    this.flush(now);
    const address = addressKey(clientAddress(peer, forwardedFor, this.opts.trustedProxies));
    const wait = this.throttle.blockedFor(address, now);
    if (wait > 0) {
      this.opts.metrics?.refuse('operator-throttled');
      this.note('throttled', address, now);
      return { ok: false, code: 429, message: 'too many wrong operator tokens from this address: try again later', retryAfterSeconds: Math.ceil(wait / 1000) };
    }
    if (key !== undefined) {
      const presented = Buffer.from(key, 'utf8');
      let match = false;
      for (const k of this.upgradeKeys) match = (k.length === presented.length && timingSafeEqual(presented, k)) || match;
      if (match) return { ok: true };
    }
    const hospital = key !== undefined ? this.opts.hospitalOfUpgradeKey?.(key) : undefined;
    return this.refused(address, now, key === undefined ? `no operator credential: offer the subprotocol ${AUTH_SUBPROTOCOL_PREFIX}<key of the operator token>` : 'wrong operator token', hospital);
  }

  private refused(address: string, now: number, message: string, hospital: string | undefined): OperatorVerdict {
    this.throttle.failure(address, now);
    this.opts.metrics?.refuse('operator-unauthorized');
    this.note('unauthorized', address, now);
    if (hospital !== undefined) {
      return { ok: false, code: 403, message: `this is the token of the hospital ${JSON.stringify(hospital)}, not the operator's: the console and the full status need the operator token` };
    }
    return { ok: false, code: 401, message };
  }

  /** The upgrade keys of the operator tokens (shared/protocol/upgradeAuth.ts), as bytes. */
  private get upgradeKeys(): Buffer[] {
    return (this.keys ??= this.digests.map((d) => Buffer.from(upgradeKeyFromTokenHash(d.toString('hex')), 'utf8')));
  }
  private keys?: Buffer[];

  private note(kind: 'unauthorized' | 'throttled', address: string, now: number): void {
    const line = this.summary.note(kind, address, now);
    if (line) this.log.warn(line);
    else this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flush(this.now(), true);
    }, this.summary.windowMs).unref();
  }

  private flush(now: number, force = false): void {
    for (const line of this.summary.flush(now, force)) this.log.warn(line);
  }

  /** Stop the summary timer (server shutdown), logging what it still holds. */
  close(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flush(this.now(), true);
  }
}
