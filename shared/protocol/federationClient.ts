/**
 * The federation client library, isomorphic: it runs over any WebSocket-like object (the browser's
 * WebSocket in the web-app worker, `ws` in the Node hospitals) and speaks the whole protocol
 * (docs/protocol.md). It is a small facade over two halves:
 *
 * - connection.ts: the socket, hello and version negotiation, reconnection with exponential backoff,
 *   close codes, a stable client identity; every server message is validated (validation.ts) first;
 * - participation.ts: the rounds this hospital is sampled for: the task, training through `train`,
 *   the upload slot, accepted / refused / round-closed; unusable round frames are declined at once.
 *
 *     const client = new FederationClient({
 *       url: 'ws://localhost:8080/ws', token, clientId,           // clientId: persist it (IndexedDB, file)
 *       createSocket: (url, protocols) => new WebSocket(url, protocols), // Node: import { WebSocket } from 'ws'
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
import { decodeWeights } from '../codec/weightsCodec.ts';
import type { WeightSet } from '../weights.ts';
import { FederationConnection, SYSTEM_TIMERS, type BackoffOptions, type ConnectionEvent, type Timers, type WebSocketFactory } from './connection.ts';
import { CLOSE, type ErrorMessage, type RoundClosed, type RoundComplete, type RoundConfig, type RoundFailed, type ServerTextMessage, type StatusMessage, type Welcome } from './messages.ts';
import { RoundParticipation, type ParticipationEvent, type ParticipationPhase, type TrainFn } from './participation.ts';
import type { ServerFrame } from './validation.ts';

export {
  backoffDelay,
  DEFAULT_BACKOFF,
  FederationClientError,
  newClientId,
  wsUrlFromPage,
  type BackoffOptions,
  type Timers,
  type WebSocketFactory,
  type WebSocketLike,
} from './connection.ts';
export type { TrainFn, TrainResult } from './participation.ts';

export interface FederationClientOptions {
  /** WebSocket URL of the server, e.g. `ws://host:8080/ws` (see wsUrlFromPage for a page URL). */
  url: string;
  /** The hospital's secret token. */
  token: string;
  /** Stable identity of this installation; persist it and pass it on every start. Default: a random id (per instance). */
  clientId?: string;
  train: TrainFn;
  /** Default: `new globalThis.WebSocket(url, protocols)` (browsers). In Node pass `(url, protocols) => new WebSocket(url, protocols)` from `ws`. */
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
  /** Timers for reconnection and fetchGlobal's timeout, and the clock of progress and trainSeconds. Default: the global ones. */
  timers?: Timers;
}

export type ClientState = 'idle' | 'connecting' | 'waiting' | 'training' | 'uploading' | 'finished' | 'stopped' | 'failed';

export type ClientEvent =
  | { type: 'state'; state: ClientState }
  | { type: 'connected'; welcome: Welcome }
  | { type: 'disconnected'; code: number; reason: string; retryInMs: number | null }
  | { type: 'status'; status: StatusMessage }
  /** `resumed`: the attempt was sent again after a reconnect; earlier training of it is lost (explain.ts explainResume). */
  | { type: 'round-start'; config: RoundConfig; resumed?: true }
  | { type: 'progress'; round: number; fraction: number; message?: string }
  | { type: 'uploading'; round: number; attempt: number; bytes: number }
  | { type: 'accepted'; round: number; attempt: number }
  | { type: 'round-closed'; message: RoundClosed }
  | { type: 'round-complete'; message: RoundComplete }
  | { type: 'round-failed'; message: RoundFailed }
  /** An `error` message from the server. */
  | { type: 'server-error'; error: ErrorMessage }
  | { type: 'train-error'; round: number; attempt: number; error: string }
  /** A round this client cannot train (unusable weights, invalid config or model): declined at once with `reason`. */
  | { type: 'round-declined'; round: number; attempt: number; reason: string }
  /** A step of secure aggregation (participation.ts ParticipationEvent `secure-aggregation`). */
  | { type: 'secure-aggregation'; round: number; attempt: number; step: 'masked' | 'unmasking' | 'refused'; clipped?: number; error?: string }
  /**
   * A server message that failed validation (`error` names its type and fields). It was not acted on
   * (an invalid round frame that names its round and attempt is declined: a `round-declined` follows).
   */
  | { type: 'invalid-message'; messageType: string | null; error: string }
  | { type: 'finished'; rounds: number };

type GlobalWaiter = { resolve: (v: { round: number; weights: WeightSet }) => void; reject: (e: Error) => void };

export class FederationClient {
  readonly clientId: string;
  private readonly opts: FederationClientOptions;
  private readonly timers: Timers;
  private readonly connection: FederationConnection;
  private readonly participation: RoundParticipation;
  private _state: ClientState = 'idle';
  /** Rounds completed, as last heard (welcome, round-complete, finished). */
  private rounds = 0;
  private listeners: ((e: ClientEvent) => void)[] = [];
  private runPromise?: Promise<{ rounds: number }>;
  private settle?: { resolve: (v: { rounds: number }) => void; reject: (e: Error) => void };
  private globalWaiters: GlobalWaiter[] = [];

  constructor(opts: FederationClientOptions) {
    this.opts = opts;
    this.timers = opts.timers ?? SYSTEM_TIMERS;
    this.connection = new FederationConnection(
      {
        url: opts.url,
        token: opts.token,
        ...(opts.clientId !== undefined ? { clientId: opts.clientId } : {}),
        ...(opts.createSocket ? { createSocket: opts.createSocket } : {}),
        ...(opts.agent !== undefined ? { agent: opts.agent } : {}),
        ...(opts.reconnect ? { reconnect: opts.reconnect } : {}),
        timers: this.timers,
      },
      (e) => this.onConnectionEvent(e),
    );
    this.clientId = this.connection.clientId;
    const conn = this.connection;
    this.participation = new RoundParticipation(
      { train: opts.train, now: () => this.timers.now(), ...(opts.progressIntervalMs !== undefined ? { progressIntervalMs: opts.progressIntervalMs } : {}), ...(opts.crc32 ? { crc32: opts.crc32 } : {}) },
      { send: (m) => conn.send(m), sendBinary: (f) => conn.sendBinary(f), fingerprint: () => conn.welcome?.fingerprint, hospital: () => conn.welcome?.hospital },
      (e) => this.onParticipationEvent(e),
    );
    if (opts.onEvent) this.listeners.push(opts.onEvent);
  }

  get state(): ClientState {
    return this._state;
  }
  /** The server's welcome of the current connection (`round`: rounds completed, kept up to date by round-complete). */
  get welcome(): Welcome | undefined {
    const w = this.connection.welcome;
    return w && { ...w, round: this.rounds };
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
      this.connection.start();
    });
    return this.runPromise;
  }

  /** Leave: abort training, close the connection, no reconnect. run() resolves with the rounds seen so far. */
  stop(): void {
    if (this.terminal) return;
    this.setState('stopped');
    this.end(CLOSE.normal, 'client stopped', 'client stopped');
    this.settle?.resolve({ rounds: this.rounds });
  }

  /** Ask the server for the current global weights (e.g. to generate images with the federated model). */
  fetchGlobal(timeoutMs = 60_000): Promise<{ round: number; weights: WeightSet }> {
    return new Promise((resolve, reject) => {
      if (!this.connection.connected) return reject(new Error('not connected'));
      const waiter: GlobalWaiter = {
        resolve: (v) => {
          this.timers.clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          this.timers.clearTimeout(timer);
          reject(e);
        },
      };
      const timer = this.timers.setTimeout(() => {
        this.globalWaiters = this.globalWaiters.filter((w) => w !== waiter);
        reject(new Error(`no global weights within ${timeoutMs} ms`));
      }, timeoutMs);
      this.globalWaiters.push(waiter);
      this.connection.send({ type: 'get-global' });
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

  /** Abort the task, fail pending fetches, close the connection for good. */
  private end(code: number, reason: string, fetchError: string): void {
    this.participation.abort(reason);
    this.rejectWaiters(fetchError);
    this.connection.stop(code, reason);
  }

  private rejectWaiters(message: string): void {
    for (const w of this.globalWaiters.splice(0)) w.reject(new Error(message));
  }

  private onConnectionEvent(e: ConnectionEvent): void {
    switch (e.type) {
      case 'state':
        if (!this.terminal && e.state === 'connecting') this.setState('connecting');
        return;
      case 'connected':
        this.rounds = e.welcome.round;
        this.emit({ type: 'connected', welcome: e.welcome });
        // A finished federation announces itself next (`finished`).
        if (e.welcome.phase !== 'finished' && !this.terminal) this.setState(this.participation.phase);
        return;
      case 'disconnected':
        this.participation.abort('connection lost');
        this.rejectWaiters('connection closed');
        this.emit(e);
        return;
      case 'failed':
        if (this.terminal) return;
        this.setState('failed');
        this.participation.abort(e.error.message);
        this.rejectWaiters(e.error.message);
        this.settle?.reject(e.error);
        return;
      case 'invalid-message': {
        const { messageType, error, task } = e.invalid;
        this.emit({ type: 'invalid-message', messageType, error });
        if (messageType === 'round' && task) this.participation.onInvalidRound(task.round, task.attempt, error);
        else if (messageType === 'global') this.rejectWaiters(error);
        return;
      }
      case 'frame':
        return this.onFrame(e.frame);
      case 'message':
        return this.onMessage(e.message);
    }
  }

  private onFrame(f: ServerFrame): void {
    if (f.header.type === 'round') return this.participation.onRound(f.header, f.payload);
    if (!this.globalWaiters.length) return;
    let weights: WeightSet;
    try {
      weights = decodeWeights(f.payload, { copy: true, crc32: this.opts.crc32 }).weights;
    } catch (e) {
      const error = `unusable global weights from the server: ${(e as Error).message}`;
      this.emit({ type: 'invalid-message', messageType: 'global', error });
      return this.rejectWaiters(error);
    }
    for (const w of this.globalWaiters.splice(0)) w.resolve({ round: f.header.round, weights });
  }

  private onMessage(m: Exclude<ServerTextMessage, { type: 'welcome' }>): void {
    switch (m.type) {
      case 'status':
        this.emit({ type: 'status', status: m });
        return;
      case 'upload-grant':
        this.participation.onUploadGrant(m);
        return;
      case 'accepted':
        this.participation.onAccepted(m);
        return;
      case 'round-closed':
        this.participation.onRoundClosed(m);
        this.emit({ type: 'round-closed', message: m });
        return;
      case 'secagg-roster':
        this.participation.onSecAggRoster(m);
        return;
      case 'secagg-relay':
        this.participation.onSecAggRelay(m);
        return;
      case 'secagg-unmask':
        this.participation.onSecAggUnmask(m);
        return;
      case 'round-complete':
        this.participation.endSecure(m.round);
        this.rounds = Math.max(this.rounds, m.round);
        this.emit({ type: 'round-complete', message: m });
        return;
      case 'round-failed':
        this.participation.endSecure(m.round, m.attempt);
        this.emit({ type: 'round-failed', message: m });
        return;
      case 'finished':
        this.rounds = m.rounds;
        this.participation.abort('finished');
        this.emit({ type: 'finished', rounds: m.rounds });
        if ((this.opts.stopWhenFinished ?? true) && !this.terminal) {
          this.setState('finished');
          this.end(CLOSE.normal, 'finished', 'the federation is finished');
          this.settle?.resolve({ rounds: m.rounds });
        }
        return;
      case 'error':
        this.emit({ type: 'server-error', error: m });
        this.participation.onServerError(m);
        return;
    }
  }

  private onParticipationEvent(e: ParticipationEvent): void {
    if (e.type === 'phase') return this.onPhase(e.phase);
    this.emit(e);
  }

  private onPhase(phase: ParticipationPhase): void {
    if (!this.terminal && this.connection.connected) this.setState(phase);
  }
}
