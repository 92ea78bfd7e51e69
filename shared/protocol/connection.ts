/**
 * The connection half of the federation client (docs/protocol.md §1, §2.1–2.2, §5.1, §6): one WebSocket at a
 * time, opened with the subprotocols `fedgan` and `fedgan.auth.<key>` (the hospital's upgrade credential,
 * upgradeAuth.ts: the server lets it in before sockets without a token), hello with this client's protocol
 * versions, token and stable client id, the welcome (version
 * negotiation), reconnection with exponential backoff, and the close codes after which it must not
 * reconnect. Every message received is validated (validation.ts) before it is handed on; the connection
 * knows nothing of rounds: participation.ts does, and federationClient.ts composes the two.
 *
 * Isomorphic: it runs over any WebSocket-like object (the browser's WebSocket, `ws` in Node). Timers and
 * randomness are inputs, so tests can drive reconnection without waiting. No DOM and no Node imports.
 */
import { CLIENT_PROTOCOL_VERSIONS, CLOSE, FATAL_CLOSE_CODES, helloSchema, type ClientTextMessage, type Hello, type ServerTextMessage, type Welcome } from './messages.ts';
import { upgradeProtocols } from './upgradeAuth.ts';
import { describeIssues, parseServerData, type InvalidServerMessage, type ServerFrame } from './validation.ts';

/** The part of the WebSocket API the client uses (satisfied by the browser's WebSocket and by `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  send(data: string | ArrayBuffer | ArrayBufferView<ArrayBuffer>): void;
  close(code?: number, reason?: string): void;
  // Event parameters are `any` so that both the DOM and the `ws` event types fit.
  /* eslint-disable @typescript-eslint/no-explicit-any */
  onopen: ((ev: any) => any) | null;
  onmessage: ((ev: any) => any) | null;
  onclose: ((ev: any) => any) | null;
  onerror: ((ev: any) => any) | null;
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

/**
 * Opens a socket to `url` offering the subprotocols `protocols` (pass them on: they carry the hospital's
 * upgrade credential; a factory that drops them still works, but its socket then competes with sockets
 * that have no token, docs/protocol.md §5.1).
 */
export type WebSocketFactory = (url: string, protocols: string[]) => WebSocketLike;

export interface BackoffOptions {
  /** First reconnect delay (ms). */
  initialMs: number;
  /** Cap of the delay (ms). */
  maxMs: number;
  /** Growth per failed attempt. */
  factor: number;
  /** Random spread, ± this fraction of the delay. */
  jitter: number;
  /** Give up (the connection fails) after this many consecutive failed connection attempts. */
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2, maxAttempts: Infinity };

/** Backoff delay before reconnect attempt `n` (0-based). */
export function backoffDelay(n: number, o: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(o.maxMs, o.initialMs * Math.pow(o.factor, n));
  return Math.max(0, Math.round(base * (1 + o.jitter * (2 * random() - 1))));
}

/** The timers the client uses (default: the global ones); tests pass their own clock. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Milliseconds, for durations only. */
  now(): number;
}

export const SYSTEM_TIMERS: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};

/** A fatal refusal (bad token, no common protocol version…) or giving up on reconnecting. */
export class FederationClientError extends Error {
  constructor(
    /** The close code that ended it (0: the socket could not even be created). */
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'FederationClientError';
  }
}

/** A random client id (persist it: it is this installation's identity across reconnects and restarts). */
export function newClientId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return 'c-' + Array.from({ length: 4 }, () => Math.floor(Math.random() * 2 ** 32).toString(36)).join('');
}

/** ws(s)://host/ws for a page served by the federation server (http → ws, https → wss). */
export function wsUrlFromPage(pageUrl: string, path = '/ws'): string {
  const u = new URL(pageUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = path;
  u.search = '';
  u.hash = '';
  return u.toString();
}

export interface ConnectionOptions {
  /** WebSocket URL of the server, e.g. `ws://host:8080/ws` (see wsUrlFromPage for a page URL). */
  url: string;
  /** The hospital's secret token. */
  token: string;
  /** Stable identity of this installation; persist it and pass it on every start. Default: a random id (per instance). */
  clientId?: string;
  /**
   * Default: `new globalThis.WebSocket(url, protocols)` (browsers). In Node pass
   * `(url, protocols) => new WebSocket(url, protocols)` from `ws`.
   */
  createSocket?: WebSocketFactory;
  /** Free text for server logs, e.g. `fedgan-web/0.1 (webgpu)`. */
  agent?: string;
  reconnect?: Partial<BackoffOptions>;
  /** Default SYSTEM_TIMERS. */
  timers?: Timers;
  /** Jitter source in [0, 1). Default Math.random. */
  random?: () => number;
}

/**
 * `connecting`: opening a socket, waiting for the welcome, or waiting to reconnect. `connected`: welcomed.
 * `stopped` (stop()) and `failed` (fatal refusal, or gave up) are final.
 */
export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'stopped' | 'failed';

/** Control messages a client sends after its hello. */
export type OutgoingText = Exclude<ClientTextMessage, { type: 'hello' }>;

export type ConnectionEvent =
  | { type: 'state'; state: ConnectionState }
  /** A valid welcome arrived: the connection is usable. */
  | { type: 'connected'; welcome: Welcome }
  /** The socket closed. `retryInMs`: when the next attempt starts, or null when there is none. */
  | { type: 'disconnected'; code: number; reason: string; retryInMs: number | null }
  /** A valid server text message other than the welcome. */
  | { type: 'message'; message: Exclude<ServerTextMessage, { type: 'welcome' }> }
  /** A binary frame with a valid header (the payload is not decoded). */
  | { type: 'frame'; frame: ServerFrame }
  /** A server message that failed validation; nothing was done with it. */
  | { type: 'invalid-message'; invalid: InvalidServerMessage }
  /** Final: the server refused this client, or reconnecting was given up. */
  | { type: 'failed'; error: FederationClientError };

const OPEN = 1;
/** Close code reported when the client drops a connection whose welcome was invalid (1002: protocol error). */
export const CLOSE_INVALID_WELCOME = 1002;

export class FederationConnection {
  readonly clientId: string;
  private readonly opts: ConnectionOptions;
  private readonly backoff: BackoffOptions;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly listener: (e: ConnectionEvent) => void;
  private ws?: WebSocketLike;
  private _state: ConnectionState = 'idle';
  private _welcome?: Welcome;
  /** Consecutive connection attempts that did not get a welcome. */
  private failures = 0;
  private reconnectTimer?: unknown;
  /** `fedgan` and this token's `fedgan.auth.<key>`, offered on every socket. */
  private readonly protocols: string[];

  constructor(opts: ConnectionOptions, listener: (e: ConnectionEvent) => void) {
    this.opts = opts;
    this.protocols = upgradeProtocols(opts.token);
    this.clientId = opts.clientId ?? newClientId();
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.reconnect };
    this.timers = opts.timers ?? SYSTEM_TIMERS;
    this.random = opts.random ?? Math.random;
    this.listener = listener;
  }

  get state(): ConnectionState {
    return this._state;
  }
  /** The welcome of the current connection (undefined while not connected). */
  get welcome(): Welcome | undefined {
    return this._welcome;
  }
  /** Welcomed and the socket open: messages can be sent. */
  get connected(): boolean {
    return !!this._welcome && this.ws?.readyState === OPEN;
  }
  private get final(): boolean {
    return this._state === 'stopped' || this._state === 'failed';
  }

  /**
   * Open the first connection (once; later calls do nothing). A hello the server would refuse (e.g. a
   * client id with spaces) fails at once, naming the field, instead of being sent.
   */
  start(): void {
    if (this._state !== 'idle') return;
    const hello = helloSchema.safeParse(this.hello());
    if (!hello.success) {
      this.fail(new FederationClientError(CLOSE.badHello, `this client's hello is invalid: ${describeIssues(hello.error.issues)}`));
      return;
    }
    this.connect();
  }

  /** Close for good: no reconnect, no more events but this state change. */
  stop(code: number = CLOSE.normal, reason = 'client stopped'): void {
    if (this.final) return;
    this.setState('stopped');
    this.shutdown(code, reason);
  }

  /** Send a control message; false (nothing sent) unless welcomed and open. */
  send(msg: OutgoingText): boolean {
    if (!this.connected) return false;
    this.ws!.send(JSON.stringify(msg));
    return true;
  }

  /** Send a binary frame; false (nothing sent) unless welcomed and open. */
  sendBinary(frame: Uint8Array<ArrayBuffer>): boolean {
    if (!this.connected) return false;
    this.ws!.send(frame);
    return true;
  }

  // ---------------------------------------------------------------------------------------------------

  private emit(e: ConnectionEvent): void {
    this.listener(e);
  }

  private setState(s: ConnectionState): void {
    if (this._state === s) return;
    this._state = s;
    this.emit({ type: 'state', state: s });
  }

  private hello(): Hello {
    return { type: 'hello', protocols: [...CLIENT_PROTOCOL_VERSIONS], token: this.opts.token, clientId: this.clientId, ...(this.opts.agent ? { agent: this.opts.agent } : {}) };
  }

  private connect(): void {
    if (this.final) return;
    this.setState('connecting');
    const factory =
      this.opts.createSocket ??
      ((url: string, protocols: string[]) => {
        const W = (globalThis as { WebSocket?: new (u: string, p: string[]) => WebSocketLike }).WebSocket;
        if (!W) throw new Error('no global WebSocket: pass createSocket (in Node: (url, protocols) => new WebSocket(url, protocols) from "ws")');
        return new W(url, protocols);
      });
    let ws: WebSocketLike;
    try {
      ws = factory(this.opts.url, [...this.protocols]);
    } catch (e) {
      this.fail(new FederationClientError(0, `cannot open a WebSocket: ${(e as Error).message}`));
      return;
    }
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      if (this.ws !== ws) return;
      ws.send(JSON.stringify(this.hello()));
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (this.ws !== ws) return;
      try {
        this.onData(ws, ev.data);
      } catch (e) {
        // A bug in handling must not take the socket's event loop down with it: report it and go on.
        const kind = typeof ev.data === 'string' ? 'text' : 'binary';
        try {
          this.emit({ type: 'invalid-message', invalid: { kind, messageType: null, error: `the client failed while handling a ${kind} message from the server: ${e instanceof Error ? e.message : String(e)}` } });
        } catch {
          // nothing more to do
        }
      }
    };
    ws.onerror = () => {
      // 'close' follows with the code.
    };
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (this.ws !== ws) return;
      this.onClosed(ev.code ?? 1006, ev.reason ?? '');
    };
  }

  private onData(ws: WebSocketLike, data: unknown): void {
    const p = parseServerData(data);
    switch (p.kind) {
      case 'unknown':
        return; // forward compatibility: a newer server's message type
      case 'invalid':
        this.emit({ type: 'invalid-message', invalid: p.invalid });
        // Without a valid welcome the connection is unusable: drop it and reconnect (with backoff).
        if (p.invalid.messageType === 'welcome' && !this._welcome) this.drop(ws, CLOSE_INVALID_WELCOME, 'invalid welcome from the server');
        return;
      case 'binary':
        this.emit({ type: 'frame', frame: p.frame });
        return;
      case 'text': {
        const m = p.message;
        if (m.type !== 'welcome') {
          this.emit({ type: 'message', message: m });
          return;
        }
        if (!CLIENT_PROTOCOL_VERSIONS.includes(m.protocol)) {
          this.fail(new FederationClientError(CLOSE.unsupportedProtocol, `the server chose protocol ${m.protocol}, which this client did not offer (${CLIENT_PROTOCOL_VERSIONS.join(', ')})`));
          return;
        }
        this._welcome = m;
        this.failures = 0;
        this.setState('connected');
        this.emit({ type: 'connected', welcome: m });
        return;
      }
    }
  }

  /** Give up on this socket as if it had closed with `code` (the socket itself is closed normally). */
  private drop(ws: WebSocketLike, code: number, reason: string): void {
    closeQuietly(ws, CLOSE.normal, reason);
    this.onClosed(code, reason);
  }

  private onClosed(code: number, reason: string): void {
    this.ws = undefined;
    const wasWelcomed = !!this._welcome;
    this._welcome = undefined;
    if (this.final) {
      this.emit({ type: 'disconnected', code, reason, retryInMs: null });
      return;
    }
    if (FATAL_CLOSE_CODES.includes(code)) {
      this.emit({ type: 'disconnected', code, reason, retryInMs: null });
      this.fail(new FederationClientError(code, `the server refused this client (${code}${reason ? `: ${reason}` : ''})`));
      return;
    }
    if (wasWelcomed) this.failures = 0;
    if (this.failures >= this.backoff.maxAttempts) {
      this.emit({ type: 'disconnected', code, reason, retryInMs: null });
      this.fail(new FederationClientError(code, `gave up after ${this.failures} failed connection attempts (last close ${code}${reason ? `: ${reason}` : ''})`));
      return;
    }
    const delay = backoffDelay(this.failures, this.backoff, this.random);
    this.failures++;
    this.emit({ type: 'disconnected', code, reason, retryInMs: delay });
    this.setState('connecting');
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, delay);
  }

  private fail(error: FederationClientError): void {
    if (this.final) return;
    this.setState('failed');
    this.shutdown(CLOSE.normal, 'client giving up');
    this.emit({ type: 'failed', error });
  }

  private shutdown(code: number, reason: string): void {
    if (this.reconnectTimer !== undefined) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const ws = this.ws;
    this.ws = undefined;
    this._welcome = undefined;
    if (ws) closeQuietly(ws, code, reason);
  }
}

function closeQuietly(ws: WebSocketLike, code: number, reason: string): void {
  if (ws.readyState > OPEN) return;
  try {
    ws.close(code, reason);
  } catch {
    // already closing
  }
}
