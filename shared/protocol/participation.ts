/**
 * The participation half of the federation client (docs/protocol.md §2.4–2.8): one hospital's part in
 * the rounds it is sampled for. It receives the round task (a validated `round` frame), checks what it
 * cannot train on and declines it at once, trains through the injected TrainFn, then goes through the
 * upload slot (upload-request → upload-grant → binary update) and ends the task on accepted, a refusal,
 * round-closed, a newer round or a lost connection.
 *
 * It does not own a socket: it sends through a ParticipationLink (the connection, see federationClient.ts)
 * and is told what arrives. No DOM and no Node imports.
 */
import type { Crc32Fn } from '../codec/crc32.ts';
import { decodeWeights, encodeWeights } from '../codec/weightsCodec.ts';
import { parseGanConfig } from '../config/ganConfig.ts';
import { SecAggClient } from '../secagg/client.ts';
import { encodeUpdate } from '../secagg/quantize.ts';
import type { WeightSet } from '../weights.ts';
import { encodeFrame } from './frames.ts';
import type {
  Accepted,
  Decline,
  ErrorMessage,
  ProbeReport,
  Progress,
  RoundClosed,
  RoundConfig,
  RoundHeader,
  SecAggKeys,
  SecAggRelay,
  SecAggReveal,
  SecAggRoster,
  SecAggShares,
  SecAggUnmask,
  UpdateHeader,
  UploadGrant,
  UploadRequest,
} from './messages.ts';

/** What local training returns for one round. */
export interface TrainResult {
  weights: WeightSet;
  /** Number of local training examples (the FedAvg weight): an integer within `config.examples`. */
  examples: number;
  /** Mean discriminator / generator losses of the local training (finite numbers). */
  dLoss: number;
  gLoss: number;
  /** The quality probe the round asked for (`config.quality`), sent in the update header when present. */
  quality?: ProbeReport;
  /** Differential privacy: the ε this hospital has spent after this round, at δ (the update header's `privacy`). */
  privacy?: { epsilon: number; delta: number };
}

/**
 * Local training for one round. `global` are the weights to start from (treat them as read-only: they
 * may be views into the received frame). Call `progress(fraction)` now and then. When `signal` aborts
 * (deadline passed, round closed, connection lost, stop()) the result will be discarded: stop early.
 */
export type TrainFn = (global: WeightSet, config: RoundConfig, progress: (fraction: number, message?: string) => void, signal: AbortSignal) => Promise<TrainResult>;

/** How participation talks to the server. */
export interface ParticipationLink {
  /** Send a control message; returns false when it could not be sent (not connected). */
  send(msg: Progress | UploadRequest | Decline | SecAggKeys | SecAggShares | SecAggReveal): boolean;
  sendBinary(frame: Uint8Array<ArrayBuffer>): boolean;
  /** The model fingerprint of the current connection's welcome (undefined before one). */
  fingerprint(): string | undefined;
  /** The hospital name of the current connection's welcome (secure aggregation finds itself in the roster by it). */
  hospital?(): string | undefined;
}

export interface ParticipationOptions {
  train: TrainFn;
  /** Minimum interval between progress messages to the server (ms). Default 1000. */
  progressIntervalMs?: number;
  /** CRC-32 for the weights codec (checking received weights, sealing the update). Default: the isomorphic JS one. */
  crc32?: Crc32Fn;
  /** Clock for the progress interval and the update's `trainSeconds` (ms). Default Date.now. */
  now?: () => number;
}

/** `waiting`: no task; `training`: the TrainFn runs; `uploading`: the update is requested or being sent. */
export type ParticipationPhase = 'waiting' | 'training' | 'uploading';

export type ParticipationEvent =
  | { type: 'phase'; phase: ParticipationPhase }
  /**
   * Training of a round starts. `resumed`: the server sent this attempt again after this hospital reconnected
   * (a reload, a network break): what it trained before is lost, it trains the attempt again from the start
   * (shared/protocol/explain.ts explainResume says so in plain words).
   */
  | { type: 'round-start'; config: RoundConfig; resumed?: true }
  | { type: 'progress'; round: number; fraction: number; message?: string }
  | { type: 'uploading'; round: number; attempt: number; bytes: number }
  | { type: 'accepted'; round: number; attempt: number }
  | { type: 'train-error'; round: number; attempt: number; error: string }
  /** A round frame this client cannot use; it was declined at once (when it named its round and attempt). */
  | { type: 'round-declined'; round: number; attempt: number; reason: string }
  /**
   * Secure aggregation of this attempt (docs/protocol.md §2.11): `masked` when the update left masked
   * (`clipped`: coordinates beyond ±clip), `unmasking` when this hospital answered the unmasking request,
   * `refused` when it refused a step an honest server never asks (`error` says which; the update is not sent).
   */
  | { type: 'secure-aggregation'; round: number; attempt: number; step: 'masked' | 'unmasking' | 'refused'; clipped?: number; error?: string };

interface Task {
  round: number;
  attempt: number;
  abort: AbortController;
  phase: 'training' | 'requested' | 'uploading';
  frame?: Uint8Array<ArrayBuffer>;
}

/**
 * The secure-aggregation state of the current attempt. It outlives the task: after `accepted` the server
 * still asks this hospital to help unmask the sum.
 */
interface SecureRound {
  round: number;
  attempt: number;
  client: Promise<SecAggClient>;
  /** Resolves once the server relayed the shares (masking may start); rejects on a refused step. */
  relayed: Promise<void>;
  onRelayed: { resolve: () => void; reject: (e: Error) => void };
  /** Steps run one after the other (the server's messages arrive in order; WebCrypto is async). */
  chain: Promise<unknown>;
}

/** Longest decline reason the protocol allows (messages.ts declineSchema). */
const MAX_REASON = 500;

export class RoundParticipation {
  private task?: Task;
  private secure?: SecureRound;
  private lastProgressAt = -Infinity;
  private readonly now: () => number;

  constructor(
    private readonly opts: ParticipationOptions,
    private readonly link: ParticipationLink,
    private readonly listener: (e: ParticipationEvent) => void,
  ) {
    this.now = opts.now ?? (() => Date.now());
  }

  get phase(): ParticipationPhase {
    const t = this.task;
    return !t ? 'waiting' : t.phase === 'training' ? 'training' : 'uploading';
  }

  /** The task in flight, if any. */
  get current(): { round: number; attempt: number } | undefined {
    return this.task && { round: this.task.round, attempt: this.task.attempt };
  }

  /**
   * A `round` frame with a valid header: decode and check the weights (codec, CRC, finiteness, the
   * welcome's fingerprint) and the model config, then train. Anything unusable is declined at once.
   * A newer round replaces the task in progress.
   */
  onRound(header: RoundHeader, payload: Uint8Array): void {
    this.abort('a new round started');
    const config = header.config;
    let global: WeightSet;
    try {
      const fingerprint = this.link.fingerprint();
      global = decodeWeights(payload, { crc32: this.opts.crc32, requireFinite: true, ...(fingerprint !== undefined ? { expectedFingerprint: fingerprint } : {}) }).weights;
    } catch (e) {
      return this.decline(header.round, header.attempt, `the round's weights are unusable: ${(e as Error).message}`);
    }
    try {
      parseGanConfig(config.model, `round ${header.round} model config`);
    } catch (e) {
      return this.decline(header.round, header.attempt, (e as Error).message);
    }
    this.secure = undefined;
    if (config.secureAggregation) this.startSecure(header.round, header.attempt);
    this.train(header, global);
  }

  // ---------------------------------------------------------------------------------------------------
  // Secure aggregation (shared/secagg/client.ts runs the cryptography)
  // ---------------------------------------------------------------------------------------------------

  /** Phase 0: fresh keys for this attempt, advertised at once (training goes on meanwhile). */
  private startSecure(round: number, attempt: number): void {
    let onRelayed!: SecureRound['onRelayed'];
    const relayed = new Promise<void>((resolve, reject) => (onRelayed = { resolve, reject }));
    relayed.catch(() => undefined); // observed by the upload step; never an unhandled rejection
    const client = SecAggClient.create(this.hospitalName(), round, attempt);
    const s: SecureRound = { round, attempt, client, relayed, onRelayed, chain: Promise.resolve() };
    this.secure = s;
    this.secureStep(s, async () => {
      const c = await client;
      this.link.send({ type: 'secagg-keys', round, attempt, ...c.advertise() });
    });
  }

  /** The hospital name the server knows this client by (the welcome's), which the roster lists. */
  private hospitalName(): string {
    return this.link.hospital?.() ?? '';
  }

  /** Run `fn` after the attempt's earlier steps; a failure refuses the attempt (declined while the task is on). */
  private secureStep(s: SecureRound, fn: () => Promise<void>): void {
    s.chain = s.chain.then(async () => {
      if (this.secure !== s) return;
      try {
        await fn();
      } catch (e) {
        if (this.secure !== s) return;
        const error = (e as Error).message;
        this.secure = undefined;
        s.onRelayed.reject(new Error(error));
        this.emit({ type: 'secure-aggregation', round: s.round, attempt: s.attempt, step: 'refused', error });
        const t = this.task;
        if (t && t.round === s.round && t.attempt === s.attempt) {
          this.abort(`secure aggregation: ${error}`);
          this.decline(s.round, s.attempt, `secure aggregation: ${error}`);
        }
      }
    });
  }

  private secureFor(m: { round: number; attempt: number }): SecureRound | undefined {
    const s = this.secure;
    return s && s.round === m.round && s.attempt === m.attempt ? s : undefined;
  }

  /** Phase 1: the roster; seal our shares for the others. */
  onSecAggRoster(m: SecAggRoster): void {
    const s = this.secureFor(m);
    if (!s) return;
    this.secureStep(s, async () => {
      const shares = await (await s.client).shareKeys({ threshold: m.threshold, members: m.members });
      this.link.send({ type: 'secagg-shares', round: m.round, attempt: m.attempt, shares });
    });
  }

  /** Phase 1 → 2: the shares sent to us; masking may start. */
  onSecAggRelay(m: SecAggRelay): void {
    const s = this.secureFor(m);
    if (!s) return;
    this.secureStep(s, async () => {
      await (await s.client).receiveShares(m.members, m.shares);
      s.onRelayed.resolve();
    });
  }

  /** Phase 3: answer the unmasking request (once). */
  onSecAggUnmask(m: SecAggUnmask): void {
    const s = this.secureFor(m);
    if (!s) return;
    this.secureStep(s, async () => {
      const shares = (await s.client).reveal(m.survivors);
      this.link.send({ type: 'secagg-reveal', round: m.round, attempt: m.attempt, shares });
      this.emit({ type: 'secure-aggregation', round: m.round, attempt: m.attempt, step: 'unmasking' });
    });
  }

  /** The round ended (complete, failed, finished): forget its secure-aggregation state. */
  endSecure(round?: number, attempt?: number): void {
    if (round === undefined || (this.secure && this.secure.round === round && (attempt === undefined || this.secure.attempt === attempt))) this.secure = undefined;
  }

  /** A `round` frame whose header is invalid but names its round and attempt: decline that task at once. */
  onInvalidRound(round: number, attempt: number, error: string): void {
    this.abort('a new round started');
    this.decline(round, attempt, error);
  }

  onUploadGrant(m: UploadGrant): void {
    const t = this.task;
    if (!t || t.round !== m.round || t.attempt !== m.attempt || t.phase !== 'requested' || !t.frame) return;
    t.phase = 'uploading';
    const frame = t.frame;
    t.frame = undefined;
    this.emit({ type: 'uploading', round: t.round, attempt: t.attempt, bytes: frame.byteLength });
    this.link.sendBinary(frame);
  }

  onAccepted(m: Accepted): void {
    const t = this.task;
    if (t && t.round === m.round && t.attempt === m.attempt) {
      this.task = undefined;
      this.emitPhase();
    }
    this.emit({ type: 'accepted', round: m.round, attempt: m.attempt });
  }

  onRoundClosed(m: RoundClosed): void {
    const t = this.task;
    if (t && t.round === m.round && t.attempt === m.attempt) this.abort(`round closed (${m.reason})`);
  }

  /** A refusal of this task's request or update ends our part in that round. */
  onServerError(m: ErrorMessage): void {
    const t = this.task;
    if (t && m.round === t.round && m.attempt === t.attempt && t.phase !== 'training') this.abort(`refused: ${m.code}`);
  }

  /** End the task in progress (connection lost, finished, stopped…): training is aborted, nothing is sent. */
  abort(reason: string): void {
    const t = this.task;
    if (!t) return;
    this.task = undefined;
    t.frame = undefined;
    t.abort.abort(new Error(reason));
    this.emitPhase();
  }

  // ---------------------------------------------------------------------------------------------------

  private emit(e: ParticipationEvent): void {
    this.listener(e);
  }

  private emitPhase(): void {
    this.emit({ type: 'phase', phase: this.phase });
  }

  private decline(round: number, attempt: number, reason: string): void {
    const r = reason.slice(0, MAX_REASON);
    this.link.send({ type: 'decline', round, attempt, reason: r });
    this.emit({ type: 'round-declined', round, attempt, reason: r });
  }

  private train(header: RoundHeader, global: WeightSet): void {
    const config = header.config;
    const task: Task = { round: header.round, attempt: header.attempt, abort: new AbortController(), phase: 'training' };
    this.task = task;
    this.emitPhase();
    this.emit({ type: 'round-start', config, ...(header.resumed ? { resumed: true as const } : {}) });
    const interval = this.opts.progressIntervalMs ?? 1000;
    const progress = (fraction: number, message?: string) => {
      if (this.task !== task) return;
      const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
      this.emit({ type: 'progress', round: task.round, fraction: f, ...(message !== undefined ? { message } : {}) });
      const now = this.now();
      if (now - this.lastProgressAt >= interval || f === 1) {
        this.lastProgressAt = now;
        this.link.send({ type: 'progress', round: task.round, attempt: task.attempt, fraction: f, ...(message !== undefined ? { message: message.slice(0, 200) } : {}) });
      }
    };
    const started = this.now();
    let promise: Promise<TrainResult>;
    try {
      promise = Promise.resolve(this.opts.train(global, config, progress, task.abort.signal));
    } catch (e) {
      promise = Promise.reject(e);
    }
    const secure = config.secureAggregation ? this.secure : undefined;
    promise
      .then(async (res) => {
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
          trainSeconds: Math.max(0, (this.now() - started) / 1000),
          ...(res.quality ? { quality: res.quality } : {}),
          ...(res.privacy ? { privacy: res.privacy } : {}),
        };
        if (secure && config.secureAggregation) {
          // Masked: the weights never leave in the clear. Wait for the shares (phase 1), then encode and mask.
          if (this.secure !== secure) throw new Error('secure aggregation of this round was refused');
          await secure.relayed;
          if (this.task !== task || task.abort.signal.aborted) return;
          const enc = encodeUpdate(res.weights, global, config.batchNorm, res.examples, config.secureAggregation);
          const words = await (await secure.client).mask(enc.words);
          if (this.task !== task || task.abort.signal.aborted) return;
          this.emit({ type: 'secure-aggregation', round: task.round, attempt: task.attempt, step: 'masked', clipped: enc.clipped });
          task.frame = encodeFrame({ ...header, examples: enc.examples, masked: true }, new Uint8Array(words.buffer, words.byteOffset, words.byteLength));
        } else task.frame = encodeFrame(header, encodeWeights(res.weights, {}, { crc32: this.opts.crc32 }));
        task.phase = 'requested';
        this.emitPhase();
        this.link.send({ type: 'upload-request', round: task.round, attempt: task.attempt });
      })
      .catch((e: unknown) => {
        if (this.task !== task || task.abort.signal.aborted) return;
        const error = e instanceof Error ? e.message : String(e);
        this.emit({ type: 'train-error', round: task.round, attempt: task.attempt, error });
        this.link.send({ type: 'decline', round: task.round, attempt: task.attempt, reason: error.slice(0, MAX_REASON) });
        this.task = undefined;
        this.emitPhase();
      });
  }
}
