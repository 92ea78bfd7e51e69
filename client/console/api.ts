/**
 * The operator console's client of the server's console API (docs/console-api.md): every request carries
 * `Authorization: Bearer <operator token>`; refusals become a ConsoleError whose message an operator can act
 * on. `fetch` is injected, so the unit tests run it against a fake server. No DOM here: the page (main.ts and
 * the views) renders what it returns.
 */
import type { RoundRecord } from '../api.ts';
import { AUTH_SUBPROTOCOL_PREFIX, upgradeKey } from '../../shared/protocol/upgradeAuth.ts';

/** The console's WebSocket subprotocol (the server selects it); the credential entry goes with it. */
export const CONSOLE_SUBPROTOCOL = 'fedgan-console';
export const API = '/api/console';

export interface FederationView {
  /** The round machine's phase: loading, waiting, training, aggregating, finished. */
  phase: string;
  paused: boolean;
  stopped: boolean;
  /** Rounds completed. */
  round: number;
  totalRounds: number;
  /** The attempt of the round in flight (1 for its first), or null between rounds. */
  attempt: number | null;
  /** When the round in flight closes (ISO time), or null. */
  deadline: string | null;
  /** The round in flight (round + 1 while training or aggregating), else null. */
  roundInFlight?: number | null;
  /** When a failed round is tried again (ISO time), or null. */
  nextAttemptAt?: string | null;
  /** Too many failed attempts in a row: the server waits for a hospital to join. */
  retryStopped?: boolean;
  /** Hospitals connected now, and needed before a round starts (FED_CONFIG minAvailable). */
  connected?: number;
  minAvailable?: number;
  /** A completed round whose checkpoint could not be written yet. */
  checkpointPending?: { round: number; failures: number; lastError: string; nextRetryAt: string | null } | null;
}

export interface HospitalFailure {
  round: number;
  attempt: number;
  /** When (ISO time). */
  at?: string;
  /** A short code (deadline, disconnected, declined, rejected, grant-expired, aborted, revoked) or a sentence. */
  reason: string;
}

export interface HospitalView {
  name: string;
  online: boolean;
  /** What its software said of itself when it connected, in its own words (e.g. `fedgan-web/0.1 (wasm)`), while it is connected; else null. */
  agent?: string | null;
  /** Sampled for the round in flight. */
  sampled: boolean;
  /** 0–1 of its local training in the round in flight, or null. */
  progress: number | null;
  /** When its last update was accepted (ISO time), or null. */
  lastUpdateAt: string | null;
  /** Tiles it declared with its last update (the FedAvg weight), or null. */
  examplesDeclared: number | null;
  failures: HospitalFailure[];
  /** Privacy budget spent (ε) when differential privacy is on, else null. */
  epsilon: number | null;
  revoked: boolean;
  revokedAt?: string | null;
  /** Where its token comes from: the tokens file, the console, or the demo federation. */
  source?: string;
}

/** A completed round as the history shows it (the hospital app's RoundRecord: the round-complete message, when it completed), and its attempts. */
export type HistoryView = RoundRecord & { attempts?: number };

/** The round settings that may change between rounds (a subset of FED_CONFIG, docs/configuration.md). */
export interface RoundSettings {
  fraction: number;
  minFit: number;
  minCompletion: number;
  roundDeadlineSeconds: number;
  localSteps: number;
  aggregator: { type: string; beta?: number };
}

/** The settings in force, and those saved to apply from the next round (null: none waiting). */
export interface SettingsView {
  effective: RoundSettings;
  pending: RoundSettings | null;
}

export interface Overview {
  /** The server's clock when it sent this (ISO): the page counts time left on it. */
  serverTime?: string;
  federation: FederationView;
  hospitals: HospitalView[];
  history: HistoryView[];
  quality?: unknown;
  settings?: SettingsView;
  /** The kept sample grids, newest first. */
  samples?: SampleGrid[];
  checkpoint?: { round: number; url: string } | null;
  audit?: { entries: number; head: string };
  classes?: string[];
}

export interface JoinLink {
  name: string;
  token: string;
  joinLink: string;
}

export interface SampleGrid {
  round: number;
  url: string;
}

export interface AuditEntry {
  seq?: number;
  /** ISO time. */
  at: string;
  type: string;
  /** Who did it: `operator`, a hospital's name, or `server`. */
  actor?: string;
  hospital?: string;
  details?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface AuditFilter {
  type?: string;
  hospital?: string;
  /** ISO time. */
  since?: string;
}

/** A download: the bytes and the file name the server gave (Content-Disposition) or a default. */
export interface Download {
  blob: Blob;
  fileName: string;
}

/** Why a request was refused, in words for the operator; `field` names the settings field at fault. */
export class ConsoleError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly field?: string,
    readonly retryAfterSeconds?: number,
    /** What the server said about `field` alone (its first problem's message), when it said it apart. */
    readonly fieldMessage?: string,
  ) {
    super(message);
    this.name = 'ConsoleError';
  }

  /** The operator token is missing, wrong or a hospital's: the page asks to sign in again. */
  get signInAgain(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

/** Where the operator's token comes from: what the page says on a 401. */
export const WRONG_TOKEN =
  'This operator token is not accepted. Check that you copied all of it: the server prints the operator token once in its log when it first starts (or it is set in OPERATOR_TOKEN or the tokens file).';
export const HOSPITAL_TOKEN = 'This is a hospital’s access token: it opens the hospital app, not the operator console. Sign in with the operator token.';

interface ErrorBody {
  error?: unknown;
  message?: unknown;
  field?: unknown;
  issues?: { path?: unknown; message?: unknown }[];
  problems?: { path?: unknown; message?: unknown }[];
}

function fieldOf(body: ErrorBody): string | undefined {
  if (typeof body.field === 'string') return body.field;
  const path = (body.problems ?? body.issues)?.[0]?.path;
  if (Array.isArray(path) && path.length) return path.map(String).join('.');
  if (typeof path === 'string') return path;
  return undefined;
}

/** The ConsoleError of a refused response (status ≥ 400) and its JSON or text body. */
export function refusal(status: number, bodyText: string, retryAfter: string | null): ConsoleError {
  let body: ErrorBody = {};
  try {
    const parsed: unknown = JSON.parse(bodyText);
    if (parsed && typeof parsed === 'object') body = parsed as ErrorBody;
  } catch {
    if (bodyText.trim()) body = { error: bodyText.trim() };
  }
  const said = typeof body.error === 'string' ? body.error : typeof body.message === 'string' ? body.message : typeof (body.problems ?? body.issues)?.[0]?.message === 'string' ? String((body.problems ?? body.issues)![0].message) : '';
  const retry = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : undefined;
  if (status === 401) return new ConsoleError(said && !/wrong operator token|Authorization header/i.test(said) ? `${WRONG_TOKEN} (The server says: ${said}.)` : WRONG_TOKEN, 401);
  if (status === 403) return new ConsoleError(/hospital/i.test(said) || !said ? HOSPITAL_TOKEN : `The server refused this operator: ${said}`, 403);
  if (status === 429) return new ConsoleError(`Too many wrong tokens were tried from this computer. Wait ${retry !== undefined ? `${retry} s` : 'a little'} and try again.`, 429, undefined, retry);
  if (status >= 500) return new ConsoleError(`The federation server failed to do this (${status})${said ? `: ${said}` : ''}. Try again; if it keeps failing, read the server's log.`, status);
  if (status === 404 && !said) return new ConsoleError('The federation server does not know this request (404): is it an older version without the operator console?', 404);
  const first = (body.problems ?? body.issues)?.[0]?.message;
  return new ConsoleError(said || `The federation server refused this (${status}).`, status, fieldOf(body), undefined, typeof first === 'string' ? first : undefined);
}

function fileNameOf(disposition: string | null, fallback: string): string {
  const m = disposition ? /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition) : null;
  return m ? decodeURIComponent(m[1]).replace(/[/\\]/g, '_') : fallback;
}

export interface ConsoleApiOptions {
  /** The server's origin, e.g. `location.origin` (the page is served by the federation server). */
  origin: string;
  token: string;
  fetch?: typeof fetch;
}

export class ConsoleApi {
  private readonly fetchFn: typeof fetch;

  constructor(private readonly opts: ConsoleApiOptions) {
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init));
  }

  get token(): string {
    return this.opts.token;
  }

  /** An absolute URL on the server for `path` (origin-relative, e.g. `/api/console/overview`). */
  url(path: string): string {
    return new URL(path, this.opts.origin).toString();
  }

  private async request(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.opts.token}`, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await this.fetchFn(this.url(path), { method, headers, cache: 'no-store', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    } catch (e) {
      throw new ConsoleError(`The federation server cannot be reached (${e instanceof Error ? e.message : String(e)}). Check that it is running and that this computer can reach it.`, 0);
    }
    if (!res.ok) throw refusal(res.status, await res.text().catch(() => ''), res.headers.get('Retry-After'));
    return res;
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body);
    const text = await res.text();
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ConsoleError(`The federation server sent an answer that is not JSON for ${path}.`, res.status);
    }
  }

  private async download(path: string, fallbackName: string): Promise<Download> {
    const res = await this.request('GET', path);
    return { blob: await res.blob(), fileName: fileNameOf(res.headers.get('Content-Disposition'), fallbackName) };
  }

  overview(): Promise<Overview> {
    return this.json('GET', `${API}/overview`);
  }

  /** /api/status (its `config.model` names the classes). */
  status(): Promise<{ config?: { model?: { classes?: string[] } } }> {
    return this.json('GET', '/api/status');
  }

  pause(): Promise<unknown> {
    return this.json('POST', `${API}/pause`);
  }

  resume(): Promise<unknown> {
    return this.json('POST', `${API}/resume`);
  }

  stop(): Promise<unknown> {
    return this.json('POST', `${API}/stop`);
  }

  setRounds(totalRounds: number): Promise<unknown> {
    return this.json('POST', `${API}/rounds`, { totalRounds });
  }

  patchSettings(settings: Partial<RoundSettings>): Promise<unknown> {
    return this.json('PATCH', `${API}/settings`, settings);
  }

  addHospital(name: string): Promise<JoinLink> {
    return this.json('POST', `${API}/hospitals`, { name });
  }

  revoke(name: string): Promise<unknown> {
    return this.json('POST', `${API}/hospitals/${encodeURIComponent(name)}/revoke`);
  }

  rotate(name: string): Promise<JoinLink> {
    return this.json<Partial<JoinLink>>('POST', `${API}/hospitals/${encodeURIComponent(name)}/rotate`).then((r) => ({ name, token: String(r.token ?? ''), joinLink: String(r.joinLink ?? '') }));
  }

  samples(): Promise<SampleGrid[]> {
    return this.json<SampleGrid[] | { samples: SampleGrid[] }>('GET', `${API}/samples`).then((r) => (Array.isArray(r) ? r : r.samples));
  }

  /** A sample grid's PNG (the URL the samples list gave). */
  sampleImage(url: string): Promise<Blob> {
    return this.request('GET', url).then((r) => r.blob());
  }

  checkpoint(): Promise<Download> {
    return this.download(`${API}/checkpoint`, 'fedgan-checkpoint.fgw');
  }

  audit(filter: AuditFilter = {}): Promise<AuditEntry[]> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v) q.set(k, v);
    const qs = q.toString();
    return this.json<AuditEntry[] | { events: AuditEntry[] }>('GET', `${API}/audit${qs ? `?${qs}` : ''}`).then((r) => (Array.isArray(r) ? r : r.events));
  }

  auditExport(): Promise<Download> {
    return this.download(`${API}/audit.jsonl`, 'fedgan-audit.jsonl');
  }

  /** The live socket's URL (ws: or wss: like the page) and the subprotocols that carry the credential. */
  live(): { url: string; protocols: string[] } {
    const u = new URL(`${API}/live`, this.opts.origin);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return { url: u.toString(), protocols: [CONSOLE_SUBPROTOCOL, AUTH_SUBPROTOCOL_PREFIX + upgradeKey(this.opts.token)] };
  }
}

// ---- the live feed --------------------------------------------------------------------------------------

/** What the feed needs of a WebSocket (the browser's, or a fake in tests). */
export interface LiveSocket {
  onopen: ((e: unknown) => void) | null;
  onmessage: ((e: { data: unknown }) => void) | null;
  onclose: ((e: { code: number; reason: string }) => void) | null;
  onerror: ((e: unknown) => void) | null;
  close(code?: number, reason?: string): void;
}

export type LiveState = { kind: 'connecting' } | { kind: 'live' } | { kind: 'retrying'; retryAt: number; closedCode: number };

export interface LiveFeedOptions {
  url: string;
  protocols: string[];
  createSocket(url: string, protocols: string[]): LiveSocket;
  onOverview(o: Overview): void;
  onState(s: LiveState): void;
  /** Called when the socket closed before it ever opened (a refusal looks like that to a browser): the page checks the token. */
  onNeverOpened?(): void;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
  /** Reconnect delays: first, doubled each time, capped (ms). */
  firstDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * The console's live WebSocket: every `{type: 'overview', …}` the server pushes goes to onOverview. When the
 * socket closes (a server restart, an ingress timeout) it reconnects after 1 s, 2 s, 4 s … up to 30 s,
 * back to 1 s once a socket opens.
 */
export class LiveFeed {
  private socket: LiveSocket | null = null;
  private timer: unknown = null;
  private delay: number;
  private stopped = false;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (t: unknown) => void;

  constructor(private readonly opts: LiveFeedOptions) {
    this.delay = opts.firstDelayMs ?? 1000;
    this.now = opts.now ?? Date.now;
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = opts.clearTimer ?? ((t) => clearTimeout(t as ReturnType<typeof setTimeout>));
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = null;
      s.close(1000, 'signed out');
    }
  }

  private connect(): void {
    this.timer = null;
    this.opts.onState({ kind: 'connecting' });
    let opened = false;
    const s = this.opts.createSocket(this.opts.url, this.opts.protocols);
    this.socket = s;
    s.onopen = () => {
      opened = true;
      this.delay = this.opts.firstDelayMs ?? 1000;
      this.opts.onState({ kind: 'live' });
    };
    s.onmessage = (e) => {
      if (typeof e.data !== 'string') return;
      let msg: unknown;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (msg && typeof msg === 'object' && (msg as { type?: unknown }).type === 'overview') {
        const { type: _type, ...rest } = msg as { type: string } & Overview;
        this.opts.onOverview(rest as Overview);
      }
    };
    s.onerror = () => {};
    s.onclose = (e) => {
      if (this.socket !== s || this.stopped) return;
      this.socket = null;
      if (!opened) this.opts.onNeverOpened?.();
      if (this.stopped) return;
      const wait = this.delay;
      this.delay = Math.min(this.opts.maxDelayMs ?? 30_000, this.delay * 2);
      this.opts.onState({ kind: 'retrying', retryAt: this.now() + wait, closedCode: e.code });
      this.timer = this.setTimer(() => this.connect(), wait);
    };
  }
}
