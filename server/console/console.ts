import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { readFileSync, existsSync } from 'node:fs';
import { WebSocketServer, type WebSocket } from 'ws';
import { CLOSE } from '../../shared/protocol/messages.ts';
import { upgradeCredential } from '../../shared/protocol/upgradeAuth.ts';
import { latestQuality } from '../../shared/fed/qualitySchedule.ts';
import { generateToken, sha256Hex, type TokenStore } from '../auth.ts';
import { TOKENS_FILE_FORMAT } from '../config.ts';
import { COMMON_HEADERS, rawHttpResponse, type OperatorAuth, type OperatorVerdict } from '../http.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { MachineEvent, RoundMachine } from '../roundMachine.ts';
import type { Transport } from '../transport.ts';
import type { AuditEvent, AuditLog } from './auditLog.ts';
import type { ConsoleHospital, ConsoleState } from './consoleState.ts';
import type { SampleGrids } from './samples.ts';
import { roundSettingsOf, validateSettingsPatch, type RoundSettings } from './settings.ts';

/**
 * The operator console's server side (docs/console-api.md): the /api/console/* routes, the live overview
 * WebSocket (/api/console/live) and the wiring of the round machine's events into the audit log, the
 * sample grids and the live pushes. Every request needs the operator token (OperatorAuth: 401 missing or
 * wrong, 403 a hospital's token, 429 during a backoff).
 */

export const CONSOLE_PATHS = {
  api: '/api/console/',
  live: '/api/console/live',
  page: '/console',
} as const;

/** The subprotocol the console page offers first (the server selects it); the credential comes second. */
export const CONSOLE_SUBPROTOCOL = 'fedgan-console';
/** The live socket is pinged this often; one that has not answered the previous ping is closed. */
export const LIVE_PING_SECONDS = 20;
/** Live pushes are coalesced to at most one per this many ms. */
export const LIVE_PUSH_INTERVAL_MS = 250;
const MAX_BODY_BYTES = 64 * 1024;

export interface OperatorConsoleOptions {
  federation: RoundMachine;
  tokens: TokenStore;
  transport: Transport;
  operator: OperatorAuth;
  audit: AuditLog;
  state: ConsoleState;
  samples: SampleGrids;
  log: Logger;
  /** Where hospitals of the tokens store come from, unless the console added them. */
  tokensSource: 'tokens-file' | 'demo';
  /** PUBLIC_URL: the base of join links (else the request's own origin). */
  publicUrl?: string;
  trustedProxies?: import('../admission.ts').TrustedProxies;
  metrics?: Metrics;
}

type Json = Record<string, unknown>;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Json = {},
  ) {
    super(message);
  }
}

export class OperatorConsole {
  private readonly wss: WebSocketServer;
  private readonly live = new Set<WebSocket>();
  private pushTimer?: NodeJS.Timeout;
  private readonly pingTimer: NodeJS.Timeout;
  private lastPush = 0;
  private closed = false;
  private readonly alive: WeakSet<WebSocket>;
  private readonly off: (() => void)[] = [];

  constructor(private readonly o: OperatorConsoleOptions) {
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: 4096,
      clientTracking: false,
      handleProtocols: (offered: Set<string>) => (offered.has(CONSOLE_SUBPROTOCOL) ? CONSOLE_SUBPROTOCOL : false),
    });
    this.off.push(o.federation.onEvent((e) => this.onMachineEvent(e)));
    o.audit.onAppend(() => this.schedulePush());
    // A new grid: consoles showing the model hear of it at once.
    o.samples.onRendered((round, ms) => {
      o.metrics?.sampleGridSeconds.set(ms / 1000);
      o.metrics?.sampleGridRound.set(round);
      this.schedulePush();
    });
    // Pings keep an idle live socket open through proxies (an Ingress closes a quiet one after 60 s) and drop dead ones.
    const alive = new WeakSet<WebSocket>();
    this.pingTimer = setInterval(() => {
      for (const ws of this.live) {
        if (!alive.has(ws)) {
          ws.terminate();
          continue;
        }
        alive.delete(ws);
        ws.ping();
      }
    }, LIVE_PING_SECONDS * 1000);
    this.pingTimer.unref();
    this.alive = alive;
    // Kept from before a restart (console.json): still paused or stopped until the operator resumes.
    const f = o.state.data.federation;
    if (f.stopped || f.paused) o.log.warn(`the federation was ${f.stopped ? 'stopped' : 'paused'} in the console before this start: no round starts until it is resumed (console, or POST /api/console/resume)`);
    if (f.stopped) o.federation.stop();
    else if (f.paused) o.federation.pause();
  }

  // -------------------------------------------------------------------------------------------------
  // Events
  // -------------------------------------------------------------------------------------------------

  private onMachineEvent(e: MachineEvent): void {
    switch (e.type) {
      case 'joined':
        this.o.audit.append({ type: 'hospital-joined', actor: e.hospital, hospital: e.hospital });
        break;
      case 'left':
        this.o.audit.append({ type: 'hospital-left', actor: e.revoked ? 'operator' : e.hospital, hospital: e.hospital, ...(e.revoked ? { details: { revoked: true } } : {}) });
        break;
      case 'round-aggregated':
        this.o.audit.append({
          type: 'round-aggregated',
          actor: 'server',
          details: { round: e.entry.round, attempts: e.entry.attempts, hospitals: e.entry.hospitals, examples: e.entry.examples, dLoss: e.entry.dLoss, gLoss: e.entry.gLoss },
        });
        this.o.samples.schedule(e.entry.round, this.o.federation.globalWeights);
        break;
      case 'round-failed':
        this.o.audit.append({ type: 'round-failed', actor: 'server', details: { round: e.round, attempt: e.attempt, received: e.received, needed: e.needed, reason: e.reason, failures: e.failures } });
        break;
    }
    this.schedulePush();
  }

  /** Push the overview to live consoles soon (at most one push per LIVE_PUSH_INTERVAL_MS). */
  schedulePush(): void {
    if (this.closed || !this.live.size || this.pushTimer) return;
    const wait = Math.max(0, this.lastPush + LIVE_PUSH_INTERVAL_MS - Date.now());
    this.pushTimer = setTimeout(() => {
      this.pushTimer = undefined;
      this.lastPush = Date.now();
      this.pushNow();
    }, wait);
    this.pushTimer.unref();
  }

  private pushNow(): void {
    if (!this.live.size) return;
    const text = JSON.stringify({ type: 'overview', ...this.overview() });
    for (const ws of this.live) if (ws.readyState === ws.OPEN) ws.send(text);
  }

  // -------------------------------------------------------------------------------------------------
  // Overview
  // -------------------------------------------------------------------------------------------------

  overview(): Json {
    const m = this.o.federation;
    const s = m.status();
    const { effective, pending } = m.config;
    const control = m.control;
    const history = s.history;
    const inFlight = s.phase === 'training' || s.phase === 'aggregating' ? s.round + 1 : null;
    const samples = this.o.samples.list().map((round) => ({ round, url: `${CONSOLE_PATHS.api}samples/${round}.png` }));
    return {
      serverTime: new Date().toISOString(),
      federation: {
        phase: s.phase,
        paused: control.paused,
        stopped: control.stopped,
        round: s.round,
        totalRounds: s.rounds,
        attempt: s.attempt,
        roundInFlight: inFlight,
        deadline: s.deadline,
        nextAttemptAt: s.retry.nextAttemptAt,
        retryStopped: s.retry.stopped,
        connected: s.connected.length,
        minAvailable: effective.minAvailable,
        fingerprint: s.fingerprint,
        parameters: s.parameters,
        checkpointPending: s.checkpoint.pending,
      },
      settings: { effective: roundSettingsOf(effective), pending: pending ? roundSettingsOf(pending) : null },
      /** The model's classes, in the order of the sample grids' rows. */
      classes: [...effective.model.classes],
      hospitals: this.hospitalRows(s),
      history,
      quality: {
        everyRounds: s.quality.everyRounds,
        features: s.quality.features,
        best: s.quality.best,
        latest: latestQuality(history),
        curve: history.filter((h) => h.quality && Number.isFinite(h.quality.kid)).map((h) => ({ round: h.quality!.round, kid: h.quality!.kid, hospitals: h.quality!.hospitals })),
      },
      samples,
      checkpoint: { round: s.round, url: `${CONSOLE_PATHS.api}checkpoint` },
      audit: { entries: this.o.audit.size, head: this.o.audit.head },
    };
  }

  private hospitalNames(): string[] {
    const names = new Set<string>([...this.o.tokens.hospitals, ...Object.keys(this.o.state.data.hospitals), ...this.o.federation.status().connected]);
    return [...names].sort();
  }

  private entryOf(name: string): ConsoleHospital | undefined {
    return this.o.state.data.hospitals[name];
  }

  private hospitalRows(s: ReturnType<RoundMachine['status']>): Json[] {
    const online = new Set(s.connected);
    const sampled = new Set(s.sampled);
    const iso = (t: number | null | undefined) => (t == null ? null : new Date(t).toISOString());
    return this.hospitalNames().map((name) => {
      const a = this.o.federation.hospitalActivity(name);
      const e = this.entryOf(name);
      return {
        name,
        source: e?.source ?? this.o.tokensSource,
        online: online.has(name),
        agent: this.o.federation.hospitalAgent(name),
        sampled: sampled.has(name),
        progress: s.progress[name] ?? (sampled.has(name) && s.phase === 'training' ? 0 : null),
        lastUpdateAt: iso(a?.lastUpdateAt),
        examplesDeclared: a?.examplesDeclared ?? null,
        failures: (a?.failures ?? []).map((f) => ({ round: f.round, attempt: f.attempt, reason: f.reason, at: iso(f.at) })),
        epsilon: a?.epsilon ?? null,
        revoked: !!e?.revokedAt,
        revokedAt: e?.revokedAt ?? null,
        addedAt: e?.addedAt ?? null,
        rotatedAt: e?.rotatedAt ?? null,
      };
    });
  }

  // -------------------------------------------------------------------------------------------------
  // HTTP
  // -------------------------------------------------------------------------------------------------

  /** Handle a request under /api/console/ (the caller checked the prefix). */
  handle(req: IncomingMessage, res: ServerResponse, pathname: string): void {
    const verdict = this.o.operator.check(req.headers.authorization ?? '', req.socket.remoteAddress, req.headers['x-forwarded-for']);
    if (!verdict.ok) {
      const missing = req.headers.authorization === undefined;
      const message = missing ? 'the console needs the operator token: send "Authorization: Bearer <operator token>"' : verdict.message;
      const extra: Record<string, string> = verdict.code === 403 ? {} : { 'WWW-Authenticate': 'Bearer realm="fedgan operator"' };
      if (verdict.code === 429) extra['Retry-After'] = String((verdict as Extract<OperatorVerdict, { code: 429 }>).retryAfterSeconds);
      return sendJson(res, verdict.code, { error: message }, extra);
    }
    const address = req.socket.remoteAddress ?? '?';
    this.route(req, res, pathname.slice(CONSOLE_PATHS.api.length), address).catch((e: unknown) => {
      if (e instanceof HttpError) return sendJson(res, e.status, { error: e.message, ...e.extra });
      this.o.log.error(`console ${req.method} ${pathname}: ${(e as Error).stack ?? e}`);
      sendJson(res, 500, { error: `the server failed: ${(e as Error).message}` });
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse, path: string, address: string): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://x');
    const get = method === 'GET' || method === 'HEAD';
    const need = (m: string) => {
      if (method !== m && !(m === 'GET' && get)) throw new HttpError(405, `${method} is not allowed here (use ${m})`);
    };
    const actor = { actor: 'operator', details: { address } };
    let m: RegExpExecArray | null;
    switch (path) {
      case 'overview':
        need('GET');
        return sendJson(res, 200, this.overview());
      case 'pause':
        need('POST');
        this.o.federation.pause();
        this.o.state.data.federation.paused = true;
        await this.o.state.save();
        this.act('operator-pause', actor.details);
        return this.ok(res);
      case 'resume':
        need('POST');
        this.o.federation.resume();
        this.o.state.data.federation.paused = false;
        this.o.state.data.federation.stopped = false;
        await this.o.state.save();
        this.act('operator-resume', actor.details);
        return this.ok(res);
      case 'stop':
        need('POST');
        this.o.federation.stop();
        this.o.state.data.federation.stopped = true;
        this.o.state.data.federation.paused = false;
        await this.o.state.save();
        this.act('operator-stop', actor.details);
        return this.ok(res);
      case 'rounds': {
        need('POST');
        const body = await readJson(req);
        const total = (body as Json)?.totalRounds;
        const before = this.o.federation.config.effective.rounds;
        if (typeof total !== 'number' || !Number.isInteger(total) || total > 100_000) {
          throw new HttpError(400, 'totalRounds must be a whole number of at most 100000, e.g. {"totalRounds": 20}');
        }
        try {
          this.o.federation.setTotalRounds(total);
        } catch (e) {
          if (e instanceof RangeError) throw new HttpError(400, `totalRounds ${e.message}`);
          throw e;
        }
        this.o.state.data.federation.rounds = total;
        await this.o.state.save();
        this.act('operator-rounds', { address, from: before, to: total });
        return this.ok(res);
      }
      case 'settings': {
        need('PATCH');
        const patch = await readJson(req);
        const cfg = this.o.federation.config;
        const v = validateSettingsPatch(cfg.pending ?? cfg.effective, patch, this.o.tokens.hospitals.length);
        if (!v.ok) throw new HttpError(400, `settings refused: ${v.problems.map((p) => `${p.path || '(body)'}: ${p.message}`).join('; ')}`, { field: v.problems[0]?.path || undefined, problems: v.problems });
        const applyNow = !['training', 'aggregating'].includes(this.o.federation.phase);
        this.o.federation.setNextConfig(v.fed);
        const saved = { ...(this.o.state.data.federation.settings ?? {}), ...(v.changed as Json) };
        this.o.state.data.federation.settings = saved;
        await this.o.state.save();
        this.act('operator-settings', { address, changed: v.changed });
        const s = this.o.federation.status();
        return sendJson(res, 200, { ok: true, appliesFrom: applyNow ? s.round + 1 : s.round + 2, changed: v.changed, overview: this.overview() });
      }
      case 'hospitals':
        if (method === 'POST') return this.addHospital(req, res, address);
        need('GET');
        return sendJson(res, 200, { hospitals: this.hospitalRows(this.o.federation.status()).map((h) => pick(h, ['name', 'source', 'online', 'revoked', 'revokedAt', 'addedAt', 'rotatedAt'])) });
      case 'samples':
        need('GET');
        return sendJson(res, 200, { samples: this.o.samples.list().map((round) => ({ round, url: `${CONSOLE_PATHS.api}samples/${round}.png` })) });
      case 'checkpoint': {
        need('GET');
        const bytes = this.o.federation.checkpointBytes;
        const round = this.o.federation.state.round;
        res.writeHead(200, {
          'Content-Type': 'application/octet-stream',
          'Content-Length': bytes.byteLength,
          'Content-Disposition': `attachment; filename="round-${String(round).padStart(6, '0')}.fgw"`,
          'Cache-Control': 'no-store',
          ...COMMON_HEADERS,
        });
        return void res.end(method === 'HEAD' ? undefined : bytes);
      }
      case 'audit': {
        need('GET');
        const q = url.searchParams;
        const since = q.get('since') ?? undefined;
        if (since !== undefined && Number.isNaN(Date.parse(since))) throw new HttpError(400, `since must be an ISO time, e.g. 2026-12-02T10:00:00Z (got ${JSON.stringify(since).slice(0, 60)})`);
        const limitText = q.get('limit');
        const limit = limitText === null ? 1000 : Number(limitText);
        if (!Number.isInteger(limit) || limit < 1) throw new HttpError(400, 'limit must be a whole number of at least 1');
        const events: AuditEvent[] = this.o.audit.query({ type: q.get('type') || undefined, hospital: q.get('hospital') || undefined, since, limit });
        return sendJson(res, 200, { events });
      }
      case 'audit.jsonl': {
        need('GET');
        const text = this.o.audit.text();
        res.writeHead(200, {
          'Content-Type': 'application/x-ndjson; charset=utf-8',
          'Content-Length': Buffer.byteLength(text),
          'Content-Disposition': 'attachment; filename="audit.jsonl"',
          'Cache-Control': 'no-store',
          ...COMMON_HEADERS,
        });
        return void res.end(method === 'HEAD' ? undefined : text);
      }
    }
    if ((m = /^samples\/(\d+)\.png$/.exec(path))) {
      need('GET');
      const file = this.o.samples.file(Number(m[1]));
      if (!existsSync(file)) throw new HttpError(404, `no sample grid of round ${m[1]} (the last ${this.o.samples.list().length} are kept)`);
      const png = readFileSync(file);
      res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': png.byteLength, 'Cache-Control': 'private, max-age=3600', ...COMMON_HEADERS });
      return void res.end(method === 'HEAD' ? undefined : png);
    }
    if ((m = /^hospitals\/([^/]+)\/(revoke|rotate)$/.exec(path))) {
      need('POST');
      const name = decodeURIComponent(m[1]);
      return m[2] === 'revoke' ? this.revoke(res, name, address) : this.rotate(req, res, name, address);
    }
    throw new HttpError(404, `no console endpoint ${JSON.stringify('/api/console/' + path).slice(0, 100)} (docs/console-api.md)`);
  }

  /** Record an operator action: the audit log and the metric. */
  private act(type: string, details: Json, hospital?: string): void {
    this.o.audit.append({ type, actor: 'operator', ...(hospital !== undefined ? { hospital } : {}), details });
    this.o.metrics?.operatorActions.inc({ action: type.replace(/^operator-/, '') });
  }

  private ok(res: ServerResponse): void {
    sendJson(res, 200, { ok: true, overview: this.overview() });
  }

  private joinLink(req: IncomingMessage, token: string): string {
    const base = (this.o.publicUrl ?? `http://${req.headers.host ?? 'localhost'}`).replace(/\/+$/, '');
    return `${base}/#token=${encodeURIComponent(token)}`;
  }

  private known(name: string): boolean {
    return this.o.tokens.hospitals.includes(name) || name in this.o.state.data.hospitals;
  }

  private async addHospital(req: IncomingMessage, res: ServerResponse, address: string): Promise<void> {
    const body = (await readJson(req)) as Json;
    const name = body?.name;
    if (typeof name !== 'string' || !TOKENS_FILE_FORMAT.hospitalPattern.test(name)) {
      throw new HttpError(400, 'name must be 1–64 of A–Z a–z 0–9 . _ -, e.g. {"name": "hospital-c"}');
    }
    if (this.known(name)) {
      const revoked = this.entryOf(name)?.revokedAt;
      throw new HttpError(409, revoked ? `${name} was revoked on ${revoked}: a revoked name is not reused; choose another name` : `${name} already exists: rotate its token instead`);
    }
    const token = generateToken();
    const sha256 = sha256Hex(token);
    this.o.state.data.hospitals[name] = { source: 'console', sha256, addedAt: new Date().toISOString() };
    await this.o.state.save();
    this.o.tokens.set(name, sha256);
    this.act('hospital-added', { address }, name);
    this.o.log.info(`operator added the hospital ${name} (its token is shown once, in the console; only its SHA-256 is stored)`);
    this.schedulePush();
    sendJson(res, 201, { name, token, joinLink: this.joinLink(req, token) });
  }

  private guardExisting(name: string): ConsoleHospital | undefined {
    if (!this.known(name)) throw new HttpError(404, `no hospital ${JSON.stringify(name).slice(0, 80)}`);
    const e = this.entryOf(name);
    if (e?.revokedAt) throw new HttpError(409, `${name} is already revoked (on ${e.revokedAt})`);
    return e;
  }

  private async revoke(res: ServerResponse, name: string, address: string): Promise<void> {
    const e = this.guardExisting(name);
    this.o.state.data.hospitals[name] = { ...(e ?? { source: this.o.tokensSource }), sha256: undefined, revokedAt: new Date().toISOString() };
    await this.o.state.save();
    this.o.tokens.remove(name);
    this.act('hospital-revoked', { address }, name);
    // Out of the round at once (no reconnect grace), then its connection closes.
    this.o.federation.revoke(name);
    this.disconnect(name, 'your token was revoked by the operator');
    this.o.log.warn(`operator revoked the hospital ${name}: its token is refused from now on`);
    this.ok(res);
  }

  private async rotate(req: IncomingMessage, res: ServerResponse, name: string, address: string): Promise<void> {
    const e = this.guardExisting(name);
    const token = generateToken();
    const sha256 = sha256Hex(token);
    this.o.state.data.hospitals[name] = { ...(e ?? { source: this.o.tokensSource }), sha256, rotatedAt: new Date().toISOString() };
    await this.o.state.save();
    this.o.tokens.set(name, sha256);
    this.act('hospital-rotated', { address }, name);
    // The old token no longer works: its connection closes (it may join again with the new link within its reconnect grace).
    this.disconnect(name, 'your token was replaced by the operator: join again with the new link');
    this.o.log.warn(`operator rotated the token of ${name}: the old token is refused from now on`);
    this.schedulePush();
    sendJson(res, 200, { name, token, joinLink: this.joinLink(req, token) });
  }

  private disconnect(name: string, message: string): void {
    for (const p of this.o.transport.peers()) {
      if (p.hospital !== name) continue;
      p.error('unauthorized', message);
      p.close(CLOSE.unauthorized, message);
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Live WebSocket
  // -------------------------------------------------------------------------------------------------

  /** A WebSocket upgrade on CONSOLE_PATHS.live: checked like a console request, then the overview is pushed. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closed) return void socket.end(rawHttpResponse('503 Service Unavailable'));
    const cred = upgradeCredential(req.headers['sec-websocket-protocol']);
    const verdict = this.o.operator.checkUpgradeKey(cred.kind === 'key' ? cred.key : undefined, req.socket.remoteAddress, req.headers['x-forwarded-for']);
    if (!verdict.ok) {
      const status = verdict.code === 401 ? '401 Unauthorized' : verdict.code === 403 ? '403 Forbidden' : '429 Too Many Requests';
      const extra: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8' };
      if (verdict.code === 429) extra['Retry-After'] = String((verdict as Extract<OperatorVerdict, { code: 429 }>).retryAfterSeconds);
      return void socket.end(rawHttpResponse(status, extra, `${verdict.message}\n`));
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.live.add(ws);
      this.alive.add(ws);
      ws.on('pong', () => this.alive.add(ws));
      ws.on('close', () => this.live.delete(ws));
      ws.on('error', () => ws.terminate());
      // The console only listens: anything it sends is ignored.
      ws.on('message', () => {});
      ws.send(JSON.stringify({ type: 'overview', ...this.overview() }));
    });
  }

  /** Live console sockets open (tests). */
  get liveCount(): number {
    return this.live.size;
  }

  close(): void {
    this.closed = true;
    if (this.pushTimer) clearTimeout(this.pushTimer);
    clearInterval(this.pingTimer);
    for (const f of this.off) f();
    this.o.samples.close();
    for (const ws of this.live) ws.close(CLOSE.goingAway, 'server shutting down');
    for (const ws of this.live) setTimeout(() => ws.terminate(), 1000).unref();
    this.wss.close();
  }
}

function pick(o: Json, keys: string[]): Json {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', ...COMMON_HEADERS, ...extra });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_BODY_BYTES) throw new HttpError(413, `the request body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `the request body is not valid JSON: ${(e as Error).message}`);
  }
}

export type { RoundSettings };
