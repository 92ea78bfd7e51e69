/**
 * The federation client library, isomorphic: it runs over any WebSocket-like object (the browser's
 * WebSocket in the web-app worker, `ws` in the Node simulation) and contains the whole protocol
 * (docs/protocol.md): hello and version negotiation, the round loop, upload slots, refusals,
 * reconnection with exponential backoff and a stable client identity.
 *
 *     const client = new FederationClient({
 *       url: 'ws://localhost:8080/ws', token, clientId,           // clientId: persist it (IndexedDB, file)
 *       createSocket: (url) => new WebSocket(url),                // Node: import { WebSocket } from 'ws'
 *       train: async (global, config, progress, signal) => {     // your local training
 *         …; progress(0.5); …
 *         return { weights, examples, dLoss, gLoss };
 *       },
 *     });
 *     client.on((e) => console.log(e.type));
 *     await client.run();                                       // resolves when the federation is finished
 *
 * No DOM and no Node imports.
 */
import type { Crc32Fn } from '../codec/crc32.ts';
import { decodeWeights, encodeWeights } from '../codec/weightsCodec.ts';
import type { WeightSet } from '../weights.ts';
import { decodeFrame, decodeText, encodeFrame } from './frames.ts';
import {
  CLOSE,
  FATAL_CLOSE_CODES,
  SUPPORTED_PROTOCOL_VERSIONS,
  type ErrorMessage,
  type GlobalHeader,
  type RoundClosed,
  type RoundComplete,
  type RoundConfig,
  type RoundFailed,
  type RoundHeader,
  type ServerTextMessage,
  type StatusMessage,
  type UpdateHeader,
  type Welcome,
} from './messages.ts';

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

export type WebSocketFactory = (url: string) => WebSocketLike;

/** What local training returns for one round. */
export interface TrainResult {
  weights: WeightSet;
  /** Number of local training examples (the FedAvg weight): an integer within `config.examples`. */
  examples: number;
  /** Mean discriminator / generator losses of the local training (finite numbers). */
  dLoss: number;
  gLoss: number;
}

/**
 * Local training for one round. `global` are the weights to start from (treat them as read-only: they
 * may be views into the received frame). Call `progress(fraction)` now and then. When `signal` aborts
 * (deadline passed, round closed, connection lost, stop()) the result will be discarded: stop early.
 */
export type TrainFn = (global: WeightSet, config: RoundConfig, progress: (fraction: number, message?: string) => void, signal: AbortSignal) => Promise<TrainResult>;

export interface BackoffOptions {
  /** First reconnect delay (ms). */
  initialMs: number;
  /** Cap of the delay (ms). */
  maxMs: number;
  /** Growth per failed attempt. */
  factor: number;
  /** Random spread, ± this fraction of the delay. */
  jitter: number;
  /** Give up (run() rejects) after this many consecutive failed connection attempts. */
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2, maxAttempts: Infinity };

export interface FederationClientOptions {
  /** WebSocket URL of the server, e.g. `ws://host:8080/ws` (see wsUrlFromPage for a page URL). */
  url: string;
  /** The hospital's secret token. */
  token: string;
  /** Stable identity of this installation; persist it and pass it on every start. Default: a random id (per instance). */
  clientId?: string;
  train: TrainFn;
  /** Default: `new globalThis.WebSocket(url)` (browsers). In Node pass `(url) => new WebSocket(url)` from `ws`. */
  createSocket?: WebSocketFactory;
  /** Free text for server logs, e.g. `fedgan-web/0.1 (webgpu)`. */
  agent?: string;
  reconnect?: Partial<BackoffOptions>;
  /** Minimum interval between progress messages to the server (ms). Default 1000. */
  progressIntervalMs?: number;
  /** Close the connection and resolve run() when the server reports all rounds complete. Default true. */
  stopWhenFinished?: boolean;
  onEvent?: (e: ClientEvent) => void;
  /**
   * CRC-32 for the weights codec (checking received weights, sealing the update). Default: the
   * isomorphic JS one. Node hosts can pass a native one, e.g. `(b, c) => zlib.crc32(b, c)` (~5× faster).
   */
  crc32?: Crc32Fn;
}

export type ClientState = 'idle' | 'connecting' | 'waiting' | 'training' | 'uploading' | 'finished' | 'stopped' | 'failed';

export type ClientEvent =
  | { type: 'state'; state: ClientState }
  | { type: 'connected'; welcome: Welcome }
  | { type: 'disconnected'; code: number; reason: string; retryInMs: number | null }
  | { type: 'status'; status: StatusMessage }
  | { type: 'round-start'; config: RoundConfig }
  | { type: 'progress'; round: number; fraction: number; message?: string }
  | { type: 'uploading'; round: number; attempt: number; bytes: number }
  | { type: 'accepted'; round: number; attempt: number }
  | { type: 'round-closed'; message: RoundClosed }
  | { type: 'round-complete'; message: RoundComplete }
  | { type: 'round-failed'; message: RoundFailed }
  | { type: 'server-error'; error: ErrorMessage }
  | { type: 'train-error'; round: number; attempt: number; error: string }
  | { type: 'finished'; rounds: number };

/** A fatal refusal (bad token, no common protocol version…) or giving up on reconnecting. */
export class FederationClientError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'FederationClientError';
  }
}

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

/** Backoff delay before reconnect attempt `n` (0-based). */
export function backoffDelay(n: number, o: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(o.maxMs, o.initialMs * Math.pow(o.factor, n));
  return Math.max(0, Math.round(base * (1 + o.jitter * (2 * random() - 1))));
}

interface Task {
  round: number;
  attempt: number;
  abort: AbortController;
  phase: 'training' | 'requested' | 'uploading' | 'done';
  frame?: Uint8Array<ArrayBuffer>;
}

const OPEN = 1;

export class FederationClient {
  readonly clientId: string;
  private readonly opts: FederationClientOptions;
  private readonly backoff: BackoffOptions;
  private ws?: WebSocketLike;
  private _state: ClientState = 'idle';
  private _welcome?: Welcome;
  private task?: Task;
  private failures = 0;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private listeners: ((e: ClientEvent) => void)[] = [];
  private runPromise?: Promise<{ rounds: number }>;
  private settle?: { resolve: (v: { rounds: number }) => void; reject: (e: Error) => void };
  private globalWaiters: { resolve: (v: { round: number; weights: WeightSet }) => void; reject: (e: Error) => void }[] = [];
  private lastProgressAt = 0;

  constructor(opts: FederationClientOptions) {
    this.opts = opts;
    this.clientId = opts.clientId ?? newClientId();
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.reconnect };
    if (opts.onEvent) this.listeners.push(opts.onEvent);
  }

  get state(): ClientState {
    return this._state;
  }
  /** The server's welcome of the current connection. */
  get welcome(): Welcome | undefined {
    return this._welcome;
  }

  /** Subscribe to events; returns the unsubscribe function. */
  on(listener: (e: ClientEvent) => void): () => void {
    this.listeners.push(listener);
    return () => (this.listeners = this.listeners.filter((l) => l !== listener));
  }

  /**
   * Connect and take part in rounds until the server reports all rounds complete (resolves with the
   * number of rounds), stop() is called (resolves), or a fatal refusal / too many failed reconnects
   * (rejects with FederationClientError). Calling it again returns the same promise.
   */
  run(): Promise<{ rounds: number }> {
    this.runPromise ??= new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
      this.connect();
    });
    return this.runPromise;
  }

  /** Leave: abort training, close the connection, no reconnect. run() resolves with the rounds seen so far. */
  stop(): void {
    if (this._state === 'stopped' || this._state === 'finished' || this._state === 'failed') return;
    const rounds = this._welcome?.round ?? 0;
    this.setState('stopped');
    this.shutdown(CLOSE.normal, 'client stopped');
    this.settle?.resolve({ rounds });
  }

  /** Ask the server for the current global weights (e.g. to generate images with the federated model). */
  fetchGlobal(timeoutMs = 60_000): Promise<{ round: number; weights: WeightSet }> {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== OPEN || !this._welcome) return reject(new Error('not connected'));
      const waiter = {
        resolve: (v: { round: number; weights: WeightSet }) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.globalWaiters = this.globalWaiters.filter((w) => w !== waiter);
        reject(new Error(`no global weights within ${timeoutMs} ms`));
      }, timeoutMs);
      this.globalWaiters.push(waiter);
      this.sendJson({ type: 'get-global' });
    });
  }

  // ---------------------------------------------------------------------------------------------------

  private emit(e: ClientEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // a listener's bug must not break the protocol
      }
    }
  }

  private setState(s: ClientState): void {
    if (this._state === s) return;
    this._state = s;
    this.emit({ type: 'state', state: s });
  }

  private get terminal(): boolean {
    return this._state === 'stopped' || this._state === 'finished' || this._state === 'failed';
  }

  private connect(): void {
    if (this.terminal) return;
    this.setState('connecting');
    const factory =
      this.opts.createSocket ??
      ((url: string) => {
        const W = (globalThis as { WebSocket?: new (u: string) => WebSocketLike }).WebSocket;
        if (!W) throw new Error('no global WebSocket: pass createSocket (in Node: (url) => new WebSocket(url) from "ws")');
        return new W(url);
      });
    let ws: WebSocketLike;
    try {
      ws = factory(this.opts.url);
    } catch (e) {
      this.fatal(new FederationClientError(0, `cannot open a WebSocket: ${(e as Error).message}`));
      return;
    }
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.sendJson({ type: 'hello', protocols: [...SUPPORTED_PROTOCOL_VERSIONS], token: this.opts.token, clientId: this.clientId, ...(this.opts.agent ? { agent: this.opts.agent } : {}) });
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (this.ws !== ws) return;
      try {
        this.onData(ev.data);
      } catch (e) {
        this.emit({ type: 'server-error', error: { type: 'error', code: 'bad-frame', message: `client could not handle a server message: ${(e as Error).message}` } });
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

  private onClosed(code: number, reason: string): void {
    this.ws = undefined;
    const wasWelcomed = !!this._welcome;
    this._welcome = undefined;
    this.abortTask('connection lost');
    for (const w of this.globalWaiters.splice(0)) w.reject(new Error('connection closed'));
    if (this.terminal) {
      this.emit({ type: 'disconnected', code, reason, retryInMs: null });
      return;
    }
    if (FATAL_CLOSE_CODES.includes(code)) {
      this.emit({ type: 'disconnected', code, reason, retryInMs: null });
      this.fatal(new FederationClientError(code, `the server refused this client (${code}${reason ? `: ${reason}` : ''})`));
      return;
    }
    if (wasWelcomed) this.failures = 0;
    if (this.failures >= this.backoff.maxAttempts) {
      this.emit({ type: 'disconnected', code, reason, retryInMs: null });
      this.fatal(new FederationClientError(code, `gave up after ${this.failures} failed connection attempts (last close ${code}${reason ? `: ${reason}` : ''})`));
      return;
    }
    const delay = backoffDelay(this.failures, this.backoff);
    this.failures++;
    this.emit({ type: 'disconnected', code, reason, retryInMs: delay });
    this.setState('connecting');
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private fatal(err: FederationClientError): void {
    this.setState('failed');
    this.shutdown(CLOSE.normal, 'client giving up');
    this.settle?.reject(err);
  }

  private shutdown(code: number, reason: string): void {
    clearTimeout(this.reconnectTimer);
    this.abortTask(reason);
    const ws = this.ws;
    this.ws = undefined;
    this._welcome = undefined;
    for (const w of this.globalWaiters.splice(0)) w.reject(new Error('client stopped'));
    if (ws && ws.readyState <= OPEN) {
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
    }
  }

  private sendJson(msg: Record<string, unknown>): void {
    if (this.ws && this.ws.readyState === OPEN) this.ws.send(JSON.stringify(msg));
  }

  private onData(data: unknown): void {
    if (typeof data === 'string') return this.onText(decodeText(data) as unknown as ServerTextMessage);
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else throw new Error('unsupported binary message type (set binaryType to "arraybuffer")');
    const { header, payload } = decodeFrame(bytes);
    if (header.type === 'round') this.onRound(header as unknown as RoundHeader, payload);
    else if (header.type === 'global') {
      const h = header as unknown as GlobalHeader;
      const weights = decodeWeights(payload, { copy: true, crc32: this.opts.crc32 }).weights;
      for (const w of this.globalWaiters.splice(0)) w.resolve({ round: h.round, weights });
    }
    // Unknown binary types are ignored (forward compatibility).
  }

  private onText(m: ServerTextMessage): void {
    switch (m.type) {
      case 'welcome':
        this._welcome = m;
        this.failures = 0;
        this.emit({ type: 'connected', welcome: m });
        if (m.phase === 'finished') return;
        this.setState('waiting');
        return;
      case 'status':
        this.emit({ type: 'status', status: m });
        return;
      case 'upload-grant': {
        const t = this.task;
        if (!t || t.round !== m.round || t.attempt !== m.attempt || t.phase !== 'requested' || !t.frame) return;
        t.phase = 'uploading';
        const frame = t.frame;
        t.frame = undefined;
        this.emit({ type: 'uploading', round: t.round, attempt: t.attempt, bytes: frame.byteLength });
        this.ws?.send(frame);
        return;
      }
      case 'accepted': {
        const t = this.task;
        if (t && t.round === m.round && t.attempt === m.attempt) {
          t.phase = 'done';
          this.task = undefined;
          this.setState('waiting');
        }
        this.emit({ type: 'accepted', round: m.round, attempt: m.attempt });
        return;
      }
      case 'round-closed':
        if (this.task && this.task.round === m.round && this.task.attempt === m.attempt) this.abortTask(`round closed (${m.reason})`);
        this.emit({ type: 'round-closed', message: m });
        return;
      case 'round-complete':
        if (this._welcome) this._welcome = { ...this._welcome, round: m.round };
        this.emit({ type: 'round-complete', message: m });
        return;
      case 'round-failed':
        this.emit({ type: 'round-failed', message: m });
        return;
      case 'finished':
        this.abortTask('finished');
        this.emit({ type: 'finished', rounds: m.rounds });
        if (this.opts.stopWhenFinished ?? true) {
          this.setState('finished');
          this.shutdown(CLOSE.normal, 'finished');
          this.settle?.resolve({ rounds: m.rounds });
        }
        return;
      case 'error': {
        this.emit({ type: 'server-error', error: m });
        const t = this.task;
        // A refusal of our task's request or update ends our part in that round.
        if (t && m.round === t.round && m.attempt === t.attempt && t.phase !== 'training') this.abortTask(`refused: ${m.code}`);
        return;
      }
      default:
        // Unknown message types are ignored (forward compatibility).
        return;
    }
  }

  private abortTask(reason: string): void {
    const t = this.task;
    if (!t) return;
    this.task = undefined;
    t.frame = undefined;
    t.abort.abort(new Error(reason));
    if (!this.terminal && this._state !== 'connecting') this.setState('waiting');
  }

  private onRound(h: RoundHeader, payload: Uint8Array): void {
    this.abortTask('a new round started');
    const config = h.config;
    const global = decodeWeights(payload, { crc32: this.opts.crc32 }).weights;
    const task: Task = { round: h.round, attempt: h.attempt, abort: new AbortController(), phase: 'training' };
    this.task = task;
    this.setState('training');
    this.emit({ type: 'round-start', config });
    const interval = this.opts.progressIntervalMs ?? 1000;
    const progress = (fraction: number, message?: string) => {
      if (this.task !== task) return;
      const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
      this.emit({ type: 'progress', round: task.round, fraction: f, ...(message !== undefined ? { message } : {}) });
      const now = Date.now();
      if (now - this.lastProgressAt >= interval || f === 1) {
        this.lastProgressAt = now;
        this.sendJson({ type: 'progress', round: task.round, attempt: task.attempt, fraction: f, ...(message !== undefined ? { message: message.slice(0, 200) } : {}) });
      }
    };
    const started = Date.now();
    let promise: Promise<TrainResult>;
    try {
      promise = Promise.resolve(this.opts.train(global, config, progress, task.abort.signal));
    } catch (e) {
      promise = Promise.reject(e);
    }
    promise
      .then((res) => {
        if (this.task !== task || task.abort.signal.aborted) return;
        if (!Number.isFinite(res.dLoss) || !Number.isFinite(res.gLoss)) {
          throw new Error(`training returned non-finite losses (dLoss ${res.dLoss}, gLoss ${res.gLoss})`);
        }
        const header: UpdateHeader = {
          type: 'update',
          round: task.round,
          attempt: task.attempt,
          examples: res.examples,
          dLoss: res.dLoss,
          gLoss: res.gLoss,
          trainSeconds: (Date.now() - started) / 1000,
        };
        task.frame = encodeFrame(header, encodeWeights(res.weights, {}, { crc32: this.opts.crc32 }));
        task.phase = 'requested';
        this.setState('uploading');
        this.sendJson({ type: 'upload-request', round: task.round, attempt: task.attempt });
      })
      .catch((e: unknown) => {
        if (this.task !== task || task.abort.signal.aborted) return;
        const error = e instanceof Error ? e.message : String(e);
        this.emit({ type: 'train-error', round: task.round, attempt: task.attempt, error });
        this.sendJson({ type: 'decline', round: task.round, attempt: task.attempt, reason: error.slice(0, 500) });
        this.task = undefined;
        this.setState('waiting');
      });
  }
}
