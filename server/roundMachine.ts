import { AggregationError } from '../shared/aggregate/types.ts';
import { checkpointForHospitals } from '../shared/checkpoint.ts';
import { decodeWeights } from '../shared/codec/weightsCodec.ts';
import type { FedConfig } from '../shared/config/fedConfig.ts';
import { bestQuality, latestQuality, type BestQuality } from '../shared/fed/qualitySchedule.ts';
import { configureRound, examplesMedianBase, RoundAggregation } from '../shared/fed/strategy.ts';
import { encodeFrameHead } from '../shared/protocol/frames.ts';
import type { ClientTextMessage, ErrorCode, Phase, RoundConfig, RoundFailedReason, ServerTextMessage, UpdateHeader, Welcome } from '../shared/protocol/messages.ts';
import type { WeightSet } from '../shared/weights.ts';
import { clientText, type Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import { serverCrc32 } from './nativeCrc32.ts';
import type { FederationState, HistoryEntry } from './state.ts';
import { decodeUpdateWeights, UpdatePayloadError } from './updateDecode.ts';
import { isSecAggText, SecAggFailure, SecureAggregation, type SecureAggregationHost } from './secureAggregation.ts';

/**
 * The server's round state machine, without sockets or real timers: time comes from an injected Clock,
 * hospitals are RoundPeers (the transport's Peer, or a fake in tests), the checkpoint store is a small
 * interface. server/federation.ts wires it to the transport and the real clock. Round policy (sampling,
 * the round config, validation, FedBN, aggregation, loss means) is shared/fed/strategy.ts.
 *
 *   loading ──▶ waiting ──(≥ minAvailable connected, no retry pending, retrying not stopped)──▶ training
 *      │          ▲   ▲                                                                         │
 *      │          │   │  < minCompletion updates: round-failed (deadline | unreachable); the    │ all sampled
 *      │          │   │  next attempt after the backoff, or (after maxFailedAttempts in a row)  │ delivered or
 *      │          │   └─ once a hospital joins ─────────────────────────────────────────────────┤ failed, or the
 *      │          │                                                                             │ deadline, or
 *      │          │                                                                             │ minCompletion
 *      │          │                                                                             ▼ out of reach
 *      │          └──────────── checkpoint written: round-complete ─────────────────────── aggregating (≥ minCompletion)
 *      │                                                                                   │  ▲    │
 *      │                                                                                   │  └────┘ write failed: round-failed
 *      └──────────────────────▶ finished ◀──── checkpoint of the last round written ───────┘  save-failed, keep the aggregate,
 *                                                                                             storageOk() false, retry after backoff
 *
 * (An aggregation that throws, a server bug, counts as a failed attempt: back to waiting, round-failed internal.)
 *
 * An attempt ends as soon as minCompletion accepted updates can no longer be reached (accepted + still owed
 * < minCompletion): those still training get round-closed (aborted), everyone round-failed (unreachable).
 * A sampled hospital whose connection drops still owes its update for `limits.reconnectGraceSeconds` (never
 * past the deadline): reconnecting in time it gets the round frame again (`resumed: true`, the time left).
 *
 * Uploads go through upload slots (`upload-request` → `upload-grant` → binary `update`): at most
 * `limits.maxConcurrentUploads` grants at once, granted in request order; a grant lasts at most
 * `limits.uploadGrantSeconds`, never past the deadline, and while others wait at most its fair share of the
 * time left; one not used in time expires (the hospital is out of the round, the slot freed at once).
 * Updates stream into one RoundAggregation (FedAvg keeps a running weighted sum: memory O(model)).
 */

/** Opaque handle of a timer set through a Clock. */
export type TimerHandle = unknown;

/** Time as the state machine sees it. */
export interface Clock {
  /** Milliseconds since the epoch (fractional: durations of a few microseconds are measured with it). */
  now(): number;
  /** Call `fn` once after `ms` milliseconds. */
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(timer: TimerHandle): void;
}

/** What the machine needs of a connected hospital (server/transport.ts Peer has it). */
export interface RoundPeer {
  readonly hospital: string;
  /** What the hospital's software said of itself in its hello (its own words, e.g. `fedgan-web/0.1 (wasm)`). */
  readonly agent?: string;
  send(msg: ServerTextMessage): void;
  /** One binary message made of `parts` (a frame head and the shared weights payload). */
  sendBinary(...parts: Uint8Array[]): void;
  /** An `error` message; the connection stays. */
  error(code: ErrorCode, message: string, extra?: { round?: number; attempt?: number }): void;
}

/** The checkpoint store as the machine uses it (server/state.ts CheckpointStore; a failing fake in tests). */
export interface CheckpointSink {
  /** Where checkpoints go, for the logs. */
  readonly dir: string;
  /** Encode a checkpoint: the weights file with the state in its meta. */
  encode(state: FederationState, weights: WeightSet): Uint8Array;
  /**
   * Persist the encoded checkpoint of `round`; rejects when it could not. Old checkpoints may be rotated
   * out, never those of the rounds in `opts.keep` (the best-quality model).
   */
  write(round: number, bytes: Uint8Array, opts?: { keep?: readonly number[] }): Promise<unknown>;
  /** The newest valid checkpoint of this architecture, or null. */
  loadLatest(fingerprint: string): Promise<{ state: FederationState; bytes: Uint8Array; file: string } | null>;
}

/** Memory management around large updates (server/memory.ts, server/receivePool.ts); all optional. */
export interface MemoryHooks {
  /** Nothing refers to the bytes of this update any more: its receive buffer may be reused. */
  recycle?(payload: Uint8Array): void;
  /** The round closed: no upload until the next one, drop spare receive buffers. */
  roundClosed?(): void;
  /** Called before a round's result is allocated: collect the garbage of the last update first. */
  beforeAggregate?(): Promise<void>;
  /** Large objects were just dropped (running sums, previous global model). */
  release?(): void;
}

export interface RoundMachineOptions {
  fed: FedConfig;
  store: CheckpointSink;
  metrics: Metrics;
  log: Logger;
  clock: Clock;
  memory?: MemoryHooks;
  /** Overrides `fed.retry.initialDelaySeconds` (tests), in milliseconds. */
  retryDelayMs?: number;
  /** A hospital's own cap on the examples its update counts with (tokens-file `maxExamples`; shared/fed/strategy.ts). */
  exampleCap?: (hospital: string) => number | undefined;
}

export interface StatusJson {
  round: number;
  rounds: number;
  phase: Phase;
  attempt: number | null;
  connected: string[];
  sampled: string[];
  received: string[];
  /** Sampled hospitals whose connection dropped and whose place is kept for their reconnect grace. */
  reconnecting: string[];
  deadline: string | null;
  progress: Record<string, number>;
  /**
   * ε spent by each hospital that trains with differential privacy, as its last accepted update reported it
   * (update header `privacy.epsilon`, at its δ); hospitals without a figure are left out. Operator view only.
   */
  epsilon: Record<string, number>;
  fingerprint: string;
  parameters: number;
  config: FedConfig;
  history: HistoryEntry[];
  /** Repeats of the round to come: consecutive failed attempts, when the next starts, whether retrying stopped. */
  retry: { failedAttempts: number; nextAttemptAt: string | null; stopped: boolean };
  /** Checkpoint writes that failed since start, and the completed round waiting for its write, if any. */
  checkpoint: { writeFailures: number; pending: { round: number; failures: number; lastError: string; nextRetryAt: string | null } | null };
  /**
   * Quality tracked during training (shared/fed/qualitySchedule.ts): the model round with the lowest
   * recorded KID (its checkpoint is never rotated out) and the latest recorded figure (history `quality`).
   */
  quality: { everyRounds: number; features: string; best: BestQuality | null; latest: NonNullable<HistoryEntry['quality']> | null };
}

/** What the operator console (server/console/) hears from the machine; see RoundMachine.onEvent. */
export type MachineEvent =
  | { type: 'joined'; hospital: string }
  | { type: 'left'; hospital: string; revoked: boolean }
  | { type: 'round-started'; round: number; attempt: number; sampled: string[] }
  | { type: 'round-aggregated'; entry: HistoryEntry }
  | { type: 'round-failed'; round: number; attempt: number; received: number; needed: number; reason: string; failures: Record<string, string> }
  /** Something the overview shows changed (progress, an update accepted, a phase): coalesce before pushing. */
  | { type: 'changed' };

/** What the console shows of one hospital besides online/sampled (kept in memory since the server started). */
export interface HospitalActivity {
  /** When its last update was accepted (ms, clock time). */
  lastUpdateAt: number | null;
  /** The examples its last accepted update declared. */
  examplesDeclared: number | null;
  /** ε spent as its last accepted update reported it (privacy on), or null. */
  epsilon: number | null;
  /** Its failures in round attempts, newest first (at most HOSPITAL_FAILURES_KEPT). */
  failures: { round: number; attempt: number; reason: string; at: number }[];
}

/** Failures kept per hospital for the console. */
export const HOSPITAL_FAILURES_KEPT = 20;

/** The upload-slot and reconnect limits a hospital is told in its `welcome` (messages.ts welcomeSchema limits). */
export type WelcomeRoundLimits = Pick<Welcome['limits'], 'maxConcurrentUploads' | 'uploadGrantSeconds' | 'reconnectGraceSeconds'>;

type Failure = 'deadline' | 'disconnected' | 'declined' | 'rejected' | 'grant-expired' | 'aborted' | 'revoked' | 'stopped';

interface RoundInFlight {
  round: number;
  attempt: number;
  sampled: Set<string>;
  /** Sampled hospitals that have neither delivered nor failed. */
  pending: Set<string>;
  accepted: Set<string>;
  failed: Map<string, Failure>;
  progress: Map<string, number>;
  /** Dropped (null) once the result is taken, to free its memory early. */
  aggregation: RoundAggregation | null;
  startedAt: number;
  deadlineAt: number;
  deadlineTimer: TimerHandle;
  /** hospital → grant-expiry timer of its upload slot. */
  granted: Map<string, TimerHandle>;
  /** Hospitals waiting for a slot, in request order. */
  queue: string[];
  /** hospital → when its grant expires (ms, clock time); never after deadlineAt. */
  grantExpiry: Map<string, number>;
  /** Sampled hospitals whose connection dropped, still pending: hospital → the end of its reconnect grace (timer). */
  away: Map<string, TimerHandle>;
  /** What the round frame carries, to send it again to a hospital that reconnects (`resumed`). */
  config: RoundConfig;
  aggregationSeconds: number;
}

/** A completed round whose checkpoint is not written yet: the aggregate is kept until it is. */
interface PendingSave {
  round: number;
  attempt: number;
  /** Updates combined into it (for the `round-failed` of a failed write). */
  received: number;
  state: FederationState;
  entry: HistoryEntry;
  bytes: Uint8Array;
  aggregationSeconds: number;
  failures: number;
  lastError: string;
  retryAt: number | null;
  timer?: TimerHandle;
}

const PHASES: readonly Phase[] = ['loading', 'waiting', 'training', 'aggregating', 'finished'];

/** Backoff after the k-th consecutive failure (k ≥ 1): min(initial · 2^(k−1), max), in milliseconds. */
export function backoffMs(retry: FedConfig['retry'], failures: number, initialMs = retry.initialDelaySeconds * 1000): number {
  const maxMs = Math.max(initialMs, retry.maxDelaySeconds * 1000);
  return Math.min(initialMs * 2 ** Math.max(0, failures - 1), maxMs);
}

export class RoundMachine {
  phase: Phase = 'loading';
  state: FederationState = { round: 0, history: [] };
  private global!: WeightSet;
  /**
   * Codec bytes of the global weights: the checkpoint file itself (its meta holds the round state).
   * `global` and `hospitalPayload` are zero-copy views of it: the model is in memory once.
   */
  private globalPayload!: Uint8Array;
  /**
   * What hospitals receive as the global weights (`round`, `global` frames): the same file without the
   * federation history in its meta (no other hospital's name), as parts that share the weights with it.
   */
  private hospitalPayload!: Uint8Array[];
  private readonly peers = new Map<string, RoundPeer>();
  private current?: RoundInFlight;
  /** Secure aggregation of the attempt in flight or being unmasked (server/secureAggregation.ts), when the config asks for it. */
  private secure?: SecureAggregation;
  /** Attempt number of the next round (1 + its attempts that failed). */
  private nextAttempt = 1;
  /** Consecutive failed attempts of the round to come (reset when a round completes or retrying resumes). */
  private failedAttempts = 0;
  /** The last (round, attempt) closed: updates for it or anything earlier are late. */
  private closedUpTo = { round: 0, attempt: Infinity };
  private retry?: { timer: TimerHandle; at: number };
  /** Retrying stopped after maxFailedAttempts; a join resumes it. */
  private stopped = false;
  private saving?: PendingSave;
  private writeFailures = 0;
  private closed = false;
  /** The config in force; round settings the operator changed wait in `nextFed` until no round is in flight. */
  private fed: FedConfig;
  private nextFed?: FedConfig;
  /** Operator: no new round attempt starts (the one in flight runs to its end). */
  private paused = false;
  /** Operator: the round in flight was ended and no new one starts until resume(). */
  private operatorStopped = false;
  private readonly activity = new Map<string, HospitalActivity>();
  private eventListeners: ((e: MachineEvent) => void)[] = [];
  private readonly store: CheckpointSink;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly memory: MemoryHooks;
  private readonly retryInitialMs: number;
  private readonly exampleCap?: (hospital: string) => number | undefined;
  private roundListeners: ((e: HistoryEntry) => void)[] = [];

  constructor(opts: RoundMachineOptions) {
    this.fed = opts.fed;
    this.store = opts.store;
    this.metrics = opts.metrics;
    this.log = opts.log;
    this.clock = opts.clock;
    this.memory = opts.memory ?? {};
    this.retryInitialMs = opts.retryDelayMs ?? opts.fed.retry.initialDelaySeconds * 1000;
    this.exampleCap = opts.exampleCap;
  }

  get fingerprint(): string {
    return this.global.fingerprint;
  }
  get globalWeights(): WeightSet {
    return this.global;
  }
  /** Encoded size of the global weights, the basis of the frame limit. */
  get modelBytes(): number {
    return this.globalPayload.length;
  }

  /** Load the newest valid checkpoint, or start from `initial` (and checkpoint it as round 0). */
  async load(initial: WeightSet): Promise<void> {
    const ck = await this.store.loadLatest(initial.fingerprint);
    if (ck) {
      this.state = ck.state;
      this.setGlobal(ck.bytes);
      this.log.info(`resumed from ${ck.file}: ${this.state.round} round(s) completed`);
    } else {
      this.state = { round: 0, history: [] };
      const bytes = this.store.encode(this.state, initial);
      await this.store.write(0, bytes);
      this.setGlobal(bytes);
      this.log.info(`no checkpoint in ${this.store.dir}: starting from the initial weights (round 0 saved)`);
    }
    this.closedUpTo = { round: this.state.round, attempt: Infinity };
    this.metrics.currentRound.set(this.state.round);
    this.setQualityMetrics();
    this.setPhase(this.state.round >= this.fed.rounds ? 'finished' : 'waiting');
  }

  /** Adopt checkpoint bytes as the global model (decoded as views, no copy). */
  private setGlobal(bytes: Uint8Array): void {
    this.globalPayload = bytes;
    this.global = decodeWeights(bytes, { crc32: serverCrc32 }).weights;
    this.hospitalPayload = checkpointForHospitals(bytes, { crc32: serverCrc32 });
  }

  private setPhase(p: Phase): void {
    this.phase = p;
    for (const q of PHASES) this.metrics.phase.set(q === p ? 1 : 0, { phase: q });
  }

  /** Console events (joins, leaves, rounds started/aggregated/failed, changes). Returns a function that removes the listener. */
  onEvent(fn: (e: MachineEvent) => void): () => void {
    this.eventListeners.push(fn);
    return () => (this.eventListeners = this.eventListeners.filter((f) => f !== fn));
  }

  private emit(e: MachineEvent): void {
    for (const fn of this.eventListeners) {
      try {
        fn(e);
      } catch (err) {
        this.log.error(`console listener failed on ${e.type}: ${(err as Error).stack ?? err}`);
      }
    }
  }

  /** The current global checkpoint file (the bytes written to STATE_DIR; `npm run evaluate` reads it). */
  get checkpointBytes(): Uint8Array {
    return this.globalPayload;
  }

  /** The config in force, and the one waiting for the next round (operator changes), if any. */
  get config(): { effective: FedConfig; pending: FedConfig | null } {
    return { effective: this.fed, pending: this.nextFed ?? null };
  }

  /** What the console shows of each hospital seen since start (see HospitalActivity). */
  hospitalActivity(hospital: string): HospitalActivity | undefined {
    return this.activity.get(hospital);
  }

  /** What a connected hospital's software said of itself when it joined (RoundPeer.agent); null when it is not connected or said nothing. */
  hospitalAgent(hospital: string): string | null {
    return this.peers.get(hospital)?.agent ?? null;
  }

  /** Whether the operator paused or stopped the federation. */
  get control(): { paused: boolean; stopped: boolean } {
    return { paused: this.paused, stopped: this.operatorStopped };
  }

  // ---------------------------------------------------------------------------------------------------
  // Operator control (server/console/)
  // ---------------------------------------------------------------------------------------------------

  /** No new round attempt starts; the round in flight (if any) runs to its end. */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.log.info(`operator paused the federation: no new round starts${this.current ? ` (round ${this.current.round} in flight runs to its end)` : ''}`);
    this.changed();
  }

  /** Clear pause and stop: a round starts as soon as enough hospitals are connected. */
  resume(): void {
    if (!this.paused && !this.operatorStopped) return;
    this.paused = false;
    this.operatorStopped = false;
    this.log.info('operator resumed the federation');
    this.broadcastStatus();
    this.maybeStartRound();
  }

  /**
   * End the round attempt in flight now (those training get `round-closed` aborted; its updates are dropped;
   * it does not count as a failed attempt) and start no round until resume(). A completed round whose
   * checkpoint is being written is still written.
   */
  stop(): void {
    this.operatorStopped = true;
    this.paused = false;
    const r = this.current;
    if (r) {
      this.log.warn(`operator stopped the federation: round ${r.round} attempt ${r.attempt} ended (${r.accepted.size} update(s) dropped)`);
      for (const h of r.pending) {
        r.failed.set(h, 'stopped');
        this.peers.get(h)?.send({ type: 'round-closed', round: r.round, attempt: r.attempt, reason: 'aborted' });
      }
      r.pending.clear();
      this.closeAttempt(r);
      // Its secure aggregation (if any) ends with it: no phase timer outlives the attempt.
      this.secure?.close();
      r.aggregation = null;
      this.nextAttempt = r.attempt + 1;
      this.setPhase('waiting');
      this.emit({ type: 'round-failed', round: r.round, attempt: r.attempt, received: r.accepted.size, needed: this.fed.minCompletion, reason: 'stopped by the operator', failures: Object.fromEntries(r.failed) });
    } else this.log.warn('operator stopped the federation: no round starts until it is resumed');
    this.broadcastStatus();
  }

  /**
   * Set the number of rounds in total (at least the rounds completed, and the round in flight). Takes effect
   * at once; a finished federation given more rounds goes back to waiting (hospitals that stayed connected
   * take part; those that left after `finished` must join again).
   */
  setTotalRounds(total: number): void {
    const floor = this.current || this.saving ? this.state.round + 1 : this.state.round;
    if (!Number.isInteger(total) || total < Math.max(1, floor)) throw new RangeError(`must be a whole number of at least ${Math.max(1, floor)} (rounds completed${floor > this.state.round ? ' and the round in flight' : ''})`);
    this.fed = { ...this.fed, rounds: total };
    if (this.nextFed) this.nextFed = { ...this.nextFed, rounds: total };
    this.log.info(`operator set the number of rounds to ${total} (${this.state.round} completed)`);
    if (this.phase === 'finished' && this.state.round < total) {
      this.setPhase('waiting');
      this.broadcastStatus();
      this.maybeStartRound();
    } else if (this.phase === 'waiting' && !this.current && this.state.round >= total) {
      this.setPhase('finished');
      this.broadcast({ type: 'finished', rounds: this.state.round });
    } else this.broadcastStatus();
  }

  /**
   * Round settings for the next round attempt on (a config parsed by the FED_CONFIG schema; the console
   * checks that only round settings differ). Applied at once when no round is in flight, else when it ends.
   */
  setNextConfig(next: FedConfig): void {
    this.nextFed = { ...next, rounds: this.fed.rounds };
    if (this.current || this.saving) return this.changed();
    this.applyNextConfig();
    // A lower minAvailable may let a round start now.
    this.broadcastStatus();
    this.maybeStartRound();
  }

  private applyNextConfig(): void {
    if (!this.nextFed) return;
    this.fed = this.nextFed;
    this.nextFed = undefined;
    this.log.info(
      `round settings in force from round ${this.state.round + 1}: fraction ${this.fed.fraction}, minAvailable ${this.fed.minAvailable}, minFit ${this.fed.minFit}, ` +
        `minCompletion ${this.fed.minCompletion}, deadline ${this.fed.roundDeadlineSeconds}s, ${this.fed.localSteps} local steps, aggregator ${this.fed.aggregator.type}`,
    );
  }

  /**
   * A hospital's token was revoked (or rotated): its connection is being closed. It is out of the round in
   * flight at once (no reconnect grace: it cannot come back), which may end the attempt as for any
   * hospital that disappears (minCompletion still reachable or not).
   */
  revoke(hospital: string): void {
    const peer = this.peers.get(hospital);
    if (peer) this.peers.delete(hospital);
    const r = this.current;
    if (r && r.sampled.has(hospital)) {
      const t = r.away.get(hospital);
      if (t !== undefined) this.clock.clearTimer(t);
      r.away.delete(hospital);
      r.progress.delete(hospital);
      if (r.pending.has(hospital)) {
        this.log.warn(`${hospital} was revoked during round ${r.round}: counted as a failure`);
        this.fail(r, hospital, 'revoked');
      }
    }
    if (peer) this.emit({ type: 'left', hospital, revoked: true });
    this.broadcastStatus();
  }

  private changed(): void {
    this.emit({ type: 'changed' });
  }

  /** Called after every completed (saved) round. Returns a function that removes the listener. */
  onRoundComplete(fn: (e: HistoryEntry) => void): () => void {
    this.roundListeners.push(fn);
    return () => (this.roundListeners = this.roundListeners.filter((f) => f !== fn));
  }

  // ---------------------------------------------------------------------------------------------------
  // Events from hospitals
  // ---------------------------------------------------------------------------------------------------

  /** The round machine's part of the `welcome` (the transport adds protocol, identity and frame limits). */
  welcome(): { fingerprint: string; rounds: number; round: number; phase: Phase; limits: WelcomeRoundLimits } {
    const { maxConcurrentUploads, uploadGrantSeconds, reconnectGraceSeconds } = this.fed.limits;
    return {
      fingerprint: this.global.fingerprint,
      rounds: this.fed.rounds,
      round: this.state.round,
      phase: this.phase,
      limits: { maxConcurrentUploads, uploadGrantSeconds, reconnectGraceSeconds },
    };
  }

  onJoin(peer: RoundPeer): void {
    this.peers.set(peer.hospital, peer);
    this.emit({ type: 'joined', hospital: peer.hospital });
    if (this.phase === 'finished') {
      peer.send({ type: 'finished', rounds: this.state.round });
      return;
    }
    if (this.stopped) {
      this.stopped = false;
      this.failedAttempts = 0;
      this.metrics.retryStopped.set(0);
      this.log.info(`${peer.hospital} joined: retrying round ${this.state.round + 1}`);
    }
    const r = this.current;
    if (r && r.away.has(peer.hospital)) this.resumeAttempt(r, peer);
    // A hospital that joins while the last round's result cannot be saved hears why nothing moves.
    const s = this.saving;
    if (s && s.failures > 0) peer.send(this.saveFailedMessage(s));
    this.broadcastStatus();
    this.maybeStartRound();
  }

  onLeave(peer: RoundPeer): void {
    if (this.peers.get(peer.hospital) !== peer) return;
    this.peers.delete(peer.hospital);
    this.emit({ type: 'left', hospital: peer.hospital, revoked: false });
    const r = this.current;
    if (r && r.pending.has(peer.hospital)) this.leftDuringRound(r, peer.hospital);
    this.broadcastStatus();
  }

  /**
   * A sampled hospital that still owes an update lost its connection. Its upload slot (or place in the
   * queue) goes to the others at once; its place in the attempt is kept for `limits.reconnectGraceSeconds`
   * (the deadline ends it anyway): reconnecting in time it gets the round again (`resumed`, see onJoin).
   * Without a grace, or when it does not come back, it is out of the attempt (which may end the attempt
   * at once when minCompletion can no longer be reached).
   */
  private leftDuringRound(r: RoundInFlight, h: string): void {
    this.releaseSlot(r, h);
    this.grantSlots(r);
    r.progress.delete(h);
    const graceMs = this.fed.limits.reconnectGraceSeconds * 1000;
    const leftMs = r.deadlineAt - this.clock.now();
    if (graceMs <= 0) {
      this.log.warn(`${h} disconnected during round ${r.round}: counted as a failure`);
      this.fail(r, h, 'disconnected');
      return;
    }
    if (graceMs >= leftMs) {
      // The deadline comes first: it ends the hospital's part if it has not come back by then.
      this.log.warn(`${h} disconnected during round ${r.round}: its place is kept until the deadline (${Math.round(leftMs / 1000)}s) in case it reconnects`);
      r.away.set(h, undefined);
      return;
    }
    this.log.warn(`${h} disconnected during round ${r.round}: its place is kept for ${this.fed.limits.reconnectGraceSeconds}s in case it reconnects`);
    r.away.set(
      h,
      this.clock.setTimer(() => {
        if (this.current !== r || !r.away.has(h)) return;
        r.away.delete(h);
        this.log.warn(`${h} did not reconnect within ${this.fed.limits.reconnectGraceSeconds}s: out of round ${r.round}`);
        this.fail(r, h, 'disconnected');
      }, graceMs),
    );
  }

  /** A sampled hospital reconnected within its grace: send it the attempt again, with the time left. */
  private resumeAttempt(r: RoundInFlight, peer: RoundPeer): void {
    const h = peer.hospital;
    const t = r.away.get(h);
    if (t !== undefined) this.clock.clearTimer(t);
    r.away.delete(h);
    const leftSeconds = Math.max(0.001, (r.deadlineAt - this.clock.now()) / 1000);
    const config: RoundConfig = { ...r.config, deadlineSeconds: leftSeconds };
    this.log.info(`${h} reconnected during round ${r.round} (attempt ${r.attempt}): sending the round again (${Math.round(leftSeconds)}s to the deadline)`);
    peer.sendBinary(encodeFrameHead({ type: 'round', round: r.round, attempt: r.attempt, config, resumed: true } as unknown as { type: string }), ...this.hospitalPayload);
  }

  onText(peer: RoundPeer, msg: Exclude<ClientTextMessage, { type: 'hello' }>): void {
    if (isSecAggText(msg)) {
      // Secure aggregation's keys, shares and unmasking answers (the last arrive after `accepted`).
      if (this.secure) this.secure.onText(peer, msg);
      else peer.error('wrong-round', `round ${msg.round} (attempt ${msg.attempt}) does not use secure aggregation`, { round: msg.round, attempt: msg.attempt });
      return;
    }
    switch (msg.type) {
      case 'get-global':
        peer.sendBinary(encodeFrameHead({ type: 'global', round: this.state.round }), ...this.hospitalPayload);
        return;
      case 'progress': {
        const r = this.current;
        if (r && r.round === msg.round && r.attempt === msg.attempt && r.pending.has(peer.hospital)) {
          r.progress.set(peer.hospital, msg.fraction);
          this.changed();
        }
        return;
      }
      case 'decline': {
        const r = this.checkTask(peer, msg.round, msg.attempt, false);
        if (!r) return;
        this.log.warn(`${peer.hospital} declined round ${r.round}: ${clientText(msg.reason)}`);
        this.fail(r, peer.hospital, 'declined');
        return;
      }
      case 'upload-request': {
        const r = this.checkTask(peer, msg.round, msg.attempt, true);
        if (!r) return;
        if (r.granted.has(peer.hospital)) {
          peer.send({ type: 'upload-grant', round: r.round, attempt: r.attempt });
          return;
        }
        if (!r.queue.includes(peer.hospital)) r.queue.push(peer.hospital);
        this.grantSlots(r);
        return;
      }
    }
  }

  onUpdate(peer: RoundPeer, header: UpdateHeader, payload: Uint8Array, frameBytes: number): void {
    const r = this.checkTask(peer, header.round, header.attempt, true);
    if (!r) {
      // Reuse its buffer only while a round is in flight (between rounds the pool holds nothing).
      if (this.current) this.memory.recycle?.(payload);
      return;
    }
    const hospital = peer.hospital;
    if (!r.granted.has(hospital)) {
      this.memory.recycle?.(payload);
      this.reject(peer, 'no-upload-slot', 'send upload-request and wait for upload-grant before the update', r, false);
      return;
    }
    if (header.masked || this.secure?.handles(r.round, r.attempt)) return this.onMaskedUpdate(r, peer, header, payload, frameBytes);
    const t0 = this.clock.now();
    const aggregation = r.aggregation!;
    let kept = false;
    let normText = '';
    try {
      const weights = decodeUpdateWeights(payload, this.global);
      // decodeUpdateWeights checked the values (fused with the checksum pass): the strategy need not again.
      const added = aggregation.add(
        hospital,
        { weights, examples: header.examples, dLoss: header.dLoss, gLoss: header.gLoss, ...(header.quality ? { quality: header.quality } : {}) },
        { finiteChecked: true },
      );
      kept = aggregation.retainsUpdates;
      if (added.norm !== undefined) normText = `, update norm ${added.norm.toPrecision(3)} of ${aggregation.maxUpdateNorm!.toPrecision(3)} allowed`;
      if (added.probeIgnored) this.log.warn(`round ${r.round}: the quality probe of ${hospital} is not counted: ${added.probeIgnored}`);
      if (added.examplesClipped) {
        this.metrics.examplesClipped.inc();
        const { claimed, counted, by } = added.examplesClipped;
        const base = examplesMedianBase(this.state.history);
        const why = by === 'hospital' ? `its cap, ${counted}` : `${counted}, ${this.fed.examples.medianFactor} × the median example count of round ${base?.round} (${base?.median})`;
        this.log.warn(`round ${r.round}: ${hospital} claimed ${claimed} examples; its update counts with ${why}`);
      }
      if (added.lossClamped) {
        this.metrics.lossesClamped.inc();
        this.log.warn(`round ${r.round}: the losses of ${hospital} are out of range: ${added.lossClamped} in the round's statistics`);
      }
    } catch (e) {
      this.countAggregation(r, t0);
      if (e instanceof AggregationError && e.reason !== 'empty') return this.reject(peer, e.reason, e.message, r, true);
      if (e instanceof UpdatePayloadError) return this.reject(peer, 'bad-frame', `update payload: ${e.message}`, r, true);
      this.log.error(`internal error on the update of ${hospital}: ${(e as Error).stack ?? e}`);
      return this.reject(peer, 'internal', 'the server failed to process this update', r, true);
    } finally {
      // Nothing refers to the update's bytes any more (unless the aggregator keeps them): reuse its buffer.
      if (!kept) this.memory.recycle?.(payload);
    }
    this.acceptUpdate(r, peer, header, frameBytes, this.countAggregation(r, t0), normText);
  }

  /**
   * A masked update (secure aggregation): it joins the attempt's masked sum; nothing else of it is seen.
   * Refused like any update (`bad-message` when the round does not use secure aggregation or it is not masked).
   */
  private onMaskedUpdate(r: RoundInFlight, peer: RoundPeer, header: UpdateHeader, payload: Uint8Array, frameBytes: number): void {
    const t0 = this.clock.now();
    const secure = this.secure?.handles(r.round, r.attempt) ? this.secure : undefined;
    const refused = secure ? secure.addMasked(peer.hospital, header, payload) : { code: 'bad-message' as const, message: 'this round does not use secure aggregation: send the weights unmasked' };
    this.memory.recycle?.(payload);
    if (refused) {
      this.countAggregation(r, t0);
      return this.reject(peer, refused.code, refused.message, r, true);
    }
    this.acceptUpdate(r, peer, header, frameBytes, this.countAggregation(r, t0), ', masked');
  }

  /** The update of `peer` counts in the attempt: tell it, free its slot, and see whether the attempt is over. */
  private acceptUpdate(r: RoundInFlight, peer: RoundPeer, header: UpdateHeader, frameBytes: number, dt: number, normText: string): void {
    const hospital = peer.hospital;
    this.metrics.aggregationBytes.inc({}, frameBytes);
    this.metrics.updatesAccepted.inc();
    r.accepted.add(hospital);
    r.pending.delete(hospital);
    this.releaseSlot(r, hospital);
    const act = this.activityOf(hospital);
    act.lastUpdateAt = this.clock.now();
    act.examplesDeclared = header.examples;
    act.epsilon = epsilonOf(header) ?? act.epsilon;
    peer.send({ type: 'accepted', round: r.round, attempt: r.attempt });
    this.changed();
    this.log.info(
      `round ${r.round}: update from ${hospital} accepted (${header.examples} examples, dLoss ${header.dLoss.toFixed(4)}, gLoss ${header.gLoss.toFixed(4)}${normText}, ${(dt * 1000).toFixed(0)} ms)`,
    );
    this.grantSlots(r);
    this.maybeFinish(r);
  }

  /** Seconds since t0, added to the round's and the metrics' aggregation time. */
  private countAggregation(r: RoundInFlight, t0: number): number {
    const dt = (this.clock.now() - t0) / 1000;
    r.aggregationSeconds += dt;
    this.metrics.aggregationSeconds.inc({}, dt);
    return dt;
  }

  /**
   * The round in flight if (round, attempt) names it and this hospital still owes it an update;
   * otherwise refuse with the precise reason and return undefined.
   */
  private checkTask(peer: RoundPeer, round: number, attempt: number, isUpload: boolean): RoundInFlight | undefined {
    const r = this.current;
    const extra = { round, attempt };
    if (this.phase === 'finished') {
      this.refuse(peer, 'finished', `all ${this.fed.rounds} rounds are complete`, extra, isUpload);
      return undefined;
    }
    const inFlight = r ? { round: r.round, attempt: r.attempt } : { round: this.state.round + 1, attempt: this.nextAttempt };
    if (!r || round !== r.round || attempt !== r.attempt) {
      const c = this.closedUpTo;
      const stale = round < c.round || (round === c.round && attempt <= c.attempt);
      if (stale) this.refuse(peer, 'late', `round ${round} (attempt ${attempt}) is closed; the server is at round ${inFlight.round} attempt ${inFlight.attempt}`, extra, isUpload);
      else this.refuse(peer, 'wrong-round', `round ${round} (attempt ${attempt}) is not in flight; the server is at round ${inFlight.round} attempt ${inFlight.attempt}`, extra, isUpload);
      return undefined;
    }
    const h = peer.hospital;
    if (!r.sampled.has(h)) {
      this.refuse(peer, 'not-sampled', `${h} is not sampled in round ${r.round}`, extra, isUpload);
      return undefined;
    }
    if (r.accepted.has(h)) {
      this.refuse(peer, 'duplicate', `the update of ${h} for round ${r.round} was already accepted`, extra, isUpload);
      return undefined;
    }
    if (r.failed.has(h)) {
      this.refuse(peer, 'late', `${h} is out of round ${r.round} (${r.failed.get(h)})`, extra, isUpload);
      return undefined;
    }
    return r;
  }

  private refuse(peer: RoundPeer, code: ErrorCode, message: string, extra: { round: number; attempt: number }, isUpload: boolean): void {
    if (isUpload) this.metrics.updatesRejected.inc({ reason: code });
    peer.error(code, message, extra);
  }

  /** Refuse an update; when `final`, the hospital is out of this round (its slot is freed). */
  private reject(peer: RoundPeer, reason: ErrorCode, message: string, r: RoundInFlight, final: boolean): void {
    this.log.warn(`round ${r.round}: update from ${peer.hospital} refused (${reason}): ${clientText(message, 500)}`);
    this.metrics.updatesRejected.inc({ reason });
    peer.error(reason, message, { round: r.round, attempt: r.attempt });
    if (final) this.fail(r, peer.hospital, 'rejected');
  }

  private fail(r: RoundInFlight, hospital: string, why: Failure): void {
    if (!r.pending.has(hospital)) return;
    r.pending.delete(hospital);
    r.failed.set(hospital, why);
    this.releaseSlot(r, hospital);
    this.grantSlots(r);
    this.secure?.recheck();
    this.maybeFinish(r);
  }

  /** What one attempt's secure aggregation may do to the attempt (server/secureAggregation.ts). */
  private secureHost(round: number, attempt: number): SecureAggregationHost {
    const current = () => (this.current && this.current.round === round && this.current.attempt === attempt ? this.current : undefined);
    return {
      clock: this.clock,
      log: this.log,
      send: (h, msg) => this.peers.get(h)?.send(msg),
      pending: () => current()?.pending ?? [],
      exclude: (h, why) => {
        const r = current();
        if (!r || !r.pending.has(h)) return;
        this.log.warn(`round ${round}: ${h} ${why}: out of attempt ${attempt}`);
        this.peers.get(h)?.send({ type: 'round-closed', round, attempt, reason: 'aborted' });
        this.fail(r, h, 'aborted');
      },
      abort: (failure) => {
        const r = current();
        if (r) this.secureFailed(r, failure);
      },
    };
  }

  /** Secure aggregation cannot finish the attempt (too few hospitals for a phase): end it, `round-failed` secure-aggregation. */
  private secureFailed(r: RoundInFlight, failure: SecAggFailure): void {
    if (this.current === r) {
      for (const h of r.pending) {
        r.failed.set(h, 'aborted');
        this.peers.get(h)?.send({ type: 'round-closed', round: r.round, attempt: r.attempt, reason: 'aborted' });
      }
      r.pending.clear();
      this.closeAttempt(r);
    }
    r.aggregation = null;
    const detail = failure.message.slice(0, 500);
    const next = this.attemptFailed(r, failure.message);
    const received = r.accepted.size;
    this.broadcast({ type: 'round-failed', round: r.round, attempt: r.attempt, received, needed: this.fed.minCompletion, reason: 'secure-aggregation', nextAttemptInSeconds: next, detail });
    this.emit({ type: 'round-failed', round: r.round, attempt: r.attempt, received, needed: this.fed.minCompletion, reason: 'secure-aggregation', failures: Object.fromEntries(r.failed) });
    this.applyNextConfig();
  }

  // ---------------------------------------------------------------------------------------------------
  // Upload slots
  // ---------------------------------------------------------------------------------------------------

  private releaseSlot(r: RoundInFlight, hospital: string): void {
    const t = r.granted.get(hospital);
    if (t !== undefined) this.clock.clearTimer(t);
    r.granted.delete(hospital);
    r.grantExpiry.delete(hospital);
    r.queue = r.queue.filter((h) => h !== hospital);
  }

  /**
   * Give free slots to the queue, in request order. A grant lasts `limits.uploadGrantSeconds` at most, never
   * past the round's deadline, and, while others wait for a slot, at most its fair share of the time left:
   * (deadline − now) / (1 + hospitals waiting). So one hospital cannot hold the only slot while the deadline
   * runs out for those that finished after it. A grant that expires frees its slot at once.
   */
  private grantSlots(r: RoundInFlight): void {
    if (this.current !== r) return;
    const { maxConcurrentUploads, uploadGrantSeconds } = this.fed.limits;
    while (r.granted.size < maxConcurrentUploads && r.queue.length) {
      const h = r.queue.shift()!;
      const peer = this.peers.get(h);
      if (!peer || !r.pending.has(h)) continue;
      const now = this.clock.now();
      this.setGrantExpiry(r, h, Math.min(now + uploadGrantSeconds * 1000, this.fairShareEnd(r, now)));
      peer.send({ type: 'upload-grant', round: r.round, attempt: r.attempt });
    }
    // Hospitals wait for a slot: no holder keeps its slot longer than its share of the time left.
    if (r.queue.length) {
      const now = this.clock.now();
      const end = this.fairShareEnd(r, now);
      for (const [h, at] of r.grantExpiry) if (at > end) this.setGrantExpiry(r, h, end);
    }
  }

  /** The latest a grant made or held now may last: the deadline, shared with the hospitals waiting for a slot. */
  private fairShareEnd(r: RoundInFlight, now: number): number {
    return now + Math.floor(Math.max(0, r.deadlineAt - now) / (1 + r.queue.length));
  }

  private setGrantExpiry(r: RoundInFlight, h: string, at: number): void {
    const old = r.granted.get(h);
    if (old !== undefined) this.clock.clearTimer(old);
    const ms = Math.max(0, at - this.clock.now());
    const seconds = Number.isInteger(ms / 1000) ? String(ms / 1000) : (ms / 1000).toFixed(1);
    r.grantExpiry.set(h, at);
    r.granted.set(
      h,
      this.clock.setTimer(() => {
        if (this.current !== r || !r.granted.has(h)) return;
        this.log.warn(`round ${r.round}: ${h} did not upload within ${seconds}s of its grant; its upload slot is freed`);
        this.peers.get(h)?.error('late', `no update within ${seconds}s of the upload grant: the grant expired and the slot is freed`, { round: r.round, attempt: r.attempt });
        this.metrics.updatesRejected.inc({ reason: 'late' });
        this.fail(r, h, 'grant-expired');
      }, ms),
    );
  }

  // ---------------------------------------------------------------------------------------------------
  // Rounds
  // ---------------------------------------------------------------------------------------------------

  private maybeStartRound(): void {
    if (this.closed || this.phase !== 'waiting' || this.current || this.retry || this.stopped || this.paused || this.operatorStopped) return;
    this.applyNextConfig();
    if (this.state.round >= this.fed.rounds) return;
    if (this.peers.size < this.fed.minAvailable) return;
    this.startRound();
  }

  private startRound(): void {
    const round = this.state.round + 1;
    const attempt = this.nextAttempt;
    const ids = [...this.peers.keys()].sort();
    const { sampled: chosen, config: planned } = configureRound(this.fed, { round, attempt, available: ids, global: this.global });
    // Secure aggregation: the hospitals mask their updates; the round config says how (no norm bound then).
    this.secure?.close();
    this.secure = SecureAggregation.forRound(this.fed, this.secureHost(round, attempt), { round, attempt, sampled: chosen, global: this.global, quality: planned.quality });
    const config = this.secure ? this.secure.roundConfig(planned) : planned;
    const now = this.clock.now();
    const deadlineMs = this.fed.roundDeadlineSeconds * 1000;
    const r: RoundInFlight = {
      round,
      attempt,
      sampled: new Set(chosen),
      pending: new Set(chosen),
      accepted: new Set(),
      failed: new Map(),
      progress: new Map(),
      // Counts are capped by the tokens file and by the last completed round's median (shared/fed/strategy.ts).
      aggregation: new RoundAggregation(this.fed, this.global, config, { exampleCap: this.exampleCap, previousExamplesMedian: examplesMedianBase(this.state.history)?.median }),
      startedAt: now,
      deadlineAt: now + deadlineMs,
      deadlineTimer: undefined,
      granted: new Map(),
      queue: [],
      grantExpiry: new Map(),
      away: new Map(),
      config,
      aggregationSeconds: 0,
    };
    this.current = r;
    this.setPhase('training');
    this.metrics.sampled.set(chosen.length);
    r.deadlineTimer = this.clock.setTimer(() => this.onDeadline(r), deadlineMs);
    const head = encodeFrameHead({ type: 'round', round, attempt, config } as unknown as { type: string });
    this.log.info(
      `round ${round}${attempt > 1 ? ` (attempt ${attempt})` : ''}: sampled ${chosen.length} of ${ids.length} hospitals: ${chosen.join(', ')}; deadline ${this.fed.roundDeadlineSeconds}s`,
    );
    // One payload for all: each peer gets the head and the shared payload as fragments of one message.
    for (const h of chosen) this.peers.get(h)!.sendBinary(head, ...this.hospitalPayload);
    this.emit({ type: 'round-started', round, attempt, sampled: chosen });
    this.broadcastStatus();
  }

  private onDeadline(r: RoundInFlight): void {
    if (this.current !== r) return;
    const late = [...r.pending];
    if (late.length) this.log.warn(`round ${r.round}: deadline passed; stragglers: ${late.join(', ')}`);
    for (const h of late) {
      r.pending.delete(h);
      r.failed.set(h, 'deadline');
      this.releaseSlot(r, h);
      this.peers.get(h)?.send({ type: 'round-closed', round: r.round, attempt: r.attempt, reason: 'deadline' });
    }
    this.maybeFinish(r, 'deadline');
  }

  /**
   * End the attempt once no sampled hospital owes an update, or at once when minCompletion can no longer
   * be reached (accepted + still pending < minCompletion): the hospitals still training are told to stop
   * (`round-closed` aborted) and everyone gets `round-failed` (reason `unreachable`, or `deadline` when
   * the deadline ended it) with the time to the next attempt.
   */
  private maybeFinish(r: RoundInFlight, cause: 'deadline' | 'event' = 'event'): void {
    if (this.current !== r) return;
    const needed = this.fed.minCompletion;
    if (r.pending.size > 0) {
      if (r.accepted.size + r.pending.size >= needed) return;
      const stopped = [...r.pending];
      this.log.warn(
        `round ${r.round} attempt ${r.attempt}: ${needed} update(s) needed, ${r.accepted.size} accepted and only ${stopped.length} still possible (${[...r.failed].map(([h, why]) => `${h} ${why}`).join(', ')}): ending the attempt now; stopping ${stopped.join(', ')}`,
      );
      for (const h of stopped) {
        r.pending.delete(h);
        r.failed.set(h, 'aborted');
        this.peers.get(h)?.send({ type: 'round-closed', round: r.round, attempt: r.attempt, reason: 'aborted' });
      }
    }
    this.closeAttempt(r);
    const received = r.accepted.size;
    if (received < this.fed.minCompletion) {
      r.aggregation = null;
      const reason: RoundFailedReason = cause === 'deadline' ? 'deadline' : 'unreachable';
      const next = this.attemptFailed(r, `${received} update(s), ${this.fed.minCompletion} needed`);
      this.broadcast({ type: 'round-failed', round: r.round, attempt: r.attempt, received, needed: this.fed.minCompletion, reason, nextAttemptInSeconds: next });
      this.emit({ type: 'round-failed', round: r.round, attempt: r.attempt, received, needed: this.fed.minCompletion, reason, failures: Object.fromEntries(r.failed) });
      this.applyNextConfig();
      return;
    }
    this.recordFailures(r);
    void this.completeRound(r);
  }

  /** Stop the attempt's timers and close it: updates for it are late from now on. */
  private closeAttempt(r: RoundInFlight): void {
    this.clock.clearTimer(r.deadlineTimer);
    for (const t of r.granted.values()) this.clock.clearTimer(t);
    for (const t of r.away.values()) if (t !== undefined) this.clock.clearTimer(t);
    r.granted.clear();
    r.grantExpiry.clear();
    r.away.clear();
    r.queue = [];
    this.current = undefined;
    this.memory.roundClosed?.();
    this.closedUpTo = { round: r.round, attempt: r.attempt };
    this.metrics.sampled.set(0);
    if (r.accepted.size < this.fed.minCompletion || this.operatorStopped) this.recordFailures(r);
  }

  /** Each hospital that failed in the attempt, with why (for the console). */
  private recordFailures(r: RoundInFlight): void {
    const at = this.clock.now();
    for (const [h, why] of r.failed) {
      const a = this.activityOf(h);
      if (a.failures[0]?.round === r.round && a.failures[0]?.attempt === r.attempt) continue;
      a.failures.unshift({ round: r.round, attempt: r.attempt, reason: why, at });
      a.failures.length = Math.min(a.failures.length, HOSPITAL_FAILURES_KEPT);
    }
  }

  private activityOf(hospital: string): HospitalActivity {
    let a = this.activity.get(hospital);
    if (!a) this.activity.set(hospital, (a = { lastUpdateAt: null, examplesDeclared: null, epsilon: null, failures: [] }));
    return a;
  }

  /**
   * Attempt `r.attempt` of its round failed: repeat the round after a backoff, or stop retrying once
   * `retry.maxFailedAttempts` attempts in a row have failed (a join resumes).
   */
  private attemptFailed(r: RoundInFlight, why: string): number | null {
    this.metrics.roundsFailed.inc();
    this.failedAttempts++;
    this.nextAttempt = r.attempt + 1;
    this.setPhase('waiting');
    const limit = this.fed.retry.maxFailedAttempts;
    if (this.failedAttempts >= limit) {
      this.stopped = true;
      this.metrics.retryStopped.set(1);
      this.log.warn(
        `round ${r.round} attempt ${r.attempt}: ${why}; ${this.failedAttempts} attempts failed in a row (retry.maxFailedAttempts): not retrying until a hospital joins`,
      );
      return null;
    }
    const delay = backoffMs(this.fed.retry, this.failedAttempts, this.retryInitialMs);
    this.log.warn(`round ${r.round} attempt ${r.attempt}: ${why}; repeating the round in ${(delay / 1000).toFixed(delay < 1000 ? 2 : 0)}s`);
    const timer = this.clock.setTimer(() => {
      this.retry = undefined;
      this.broadcastStatus();
      this.maybeStartRound();
    }, delay);
    this.retry = { timer, at: this.clock.now() + delay };
    return delay / 1000;
  }

  /** Aggregate the round, then write its checkpoint (retried until it succeeds) and announce it. */
  private async completeRound(r: RoundInFlight): Promise<void> {
    this.setPhase('aggregating');
    const t0 = this.clock.now();
    let save: PendingSave;
    try {
      // Collect the last update's buffers before the result is allocated (memory stays O(model)).
      await this.memory.beforeAggregate?.();
      if (this.closed) return;
      const secure = this.secure?.handles(r.round, r.attempt) ? this.secure : undefined;
      const { weights, stats } = secure ? await secure.result() : r.aggregation!.result();
      if (this.closed) return;
      r.aggregation = null;
      this.memory.release?.(); // the running sums
      const entry: HistoryEntry = {
        round: r.round,
        ...stats,
        seconds: (t0 - r.startedAt) / 1000,
        attempts: r.attempt,
        completedAt: new Date(t0).toISOString(),
      };
      const state: FederationState = { round: r.round, history: [...this.state.history, entry] };
      const bytes = this.store.encode(state, weights);
      const dt = (this.clock.now() - t0) / 1000;
      this.metrics.aggregationSeconds.inc({}, dt);
      save = { round: r.round, attempt: r.attempt, received: r.accepted.size, state, entry, bytes, aggregationSeconds: r.aggregationSeconds + dt, failures: 0, lastError: '', retryAt: null };
    } catch (e) {
      if (e instanceof SecAggFailure) {
        this.log.warn(e.message);
        return this.secureFailed(r, e);
      }
      // A bug, not the hospitals' fault: repeat the round rather than stop the federation.
      this.log.error(`round ${r.round}: aggregation failed: ${(e as Error).stack ?? e}`);
      const next = this.attemptFailed(r, 'aggregation failed');
      this.broadcast({ type: 'round-failed', round: r.round, attempt: r.attempt, received: r.accepted.size, needed: this.fed.minCompletion, reason: 'internal', nextAttemptInSeconds: next });
      this.emit({ type: 'round-failed', round: r.round, attempt: r.attempt, received: r.accepted.size, needed: this.fed.minCompletion, reason: 'internal', failures: {} });
      this.applyNextConfig();
      return;
    }
    this.saving = save;
    await this.trySave(save);
  }

  /**
   * Write the pending checkpoint. On failure the aggregate stays in memory, the failure is counted (metrics,
   * status, storageOk() false until a write succeeds), every hospital gets `round-failed` (reason
   * `save-failed`, with the time to the next write), and the write is retried after a backoff
   * (retry.initialDelaySeconds doubling up to retry.maxDelaySeconds; without a limit: a completed round
   * is never dropped). The phase stays `aggregating`; no hospital trains meanwhile.
   */
  private async trySave(s: PendingSave): Promise<void> {
    if (this.closed || this.saving !== s) return;
    try {
      // The best-quality model's checkpoint is kept whatever its age.
      const best = bestQuality(s.state.history);
      await this.store.write(s.round, s.bytes, best ? { keep: [best.round] } : {});
    } catch (e) {
      if (this.closed || this.saving !== s) return;
      s.failures++;
      this.writeFailures++;
      this.metrics.checkpointWriteFailures.inc();
      this.metrics.checkpointPending.set(1);
      const delay = backoffMs(this.fed.retry, s.failures, this.retryInitialMs);
      s.lastError = e instanceof Error ? e.message : String(e);
      s.retryAt = this.clock.now() + delay;
      this.log.error(
        `round ${s.round}: checkpoint write failed (${s.failures} time(s)): ${s.lastError}; the aggregate is kept in memory, retrying in ${(delay / 1000).toFixed(delay < 1000 ? 2 : 0)}s`,
      );
      if (s.failures === 1) this.broadcastStatus();
      this.broadcast(this.saveFailedMessage(s, delay));
      s.timer = this.clock.setTimer(() => {
        s.timer = undefined;
        s.retryAt = null;
        void this.trySave(s);
      }, delay);
      return;
    }
    this.commit(s);
  }

  /** The `round-failed` (save-failed) of a pending save whose last write failed: the time to its next try. */
  private saveFailedMessage(s: PendingSave, nextMs = s.retryAt === null ? 0 : Math.max(0, Math.round(s.retryAt - this.clock.now()))): ServerTextMessage {
    // retryAt is null while a write is under way: the next try is now.
    const next = nextMs / 1000;
    return { type: 'round-failed', round: s.round, attempt: s.attempt, received: s.received, needed: this.fed.minCompletion, reason: 'save-failed', nextAttemptInSeconds: next };
  }

  /** The checkpoint of `s` is written: adopt it as the global model, announce the round, go on. */
  private commit(s: PendingSave): void {
    this.saving = undefined;
    this.metrics.checkpointsWritten.inc();
    this.metrics.checkpointPending.set(0);
    this.state = s.state;
    this.setGlobal(s.bytes);
    this.memory.release?.(); // the previous global model and the decoded result
    this.nextAttempt = 1;
    this.failedAttempts = 0;
    const e = s.entry;
    this.metrics.roundsCompleted.inc();
    this.metrics.currentRound.set(s.round);
    this.metrics.lastAggregationSeconds.set(s.aggregationSeconds);
    this.metrics.lastRoundSeconds.set(e.seconds);
    this.log.info(
      `round ${e.round} complete: ${e.participants} update(s) from ${e.hospitals.join(', ')}, ${e.examples} examples, dLoss ${e.dLoss.toFixed(4)}, gLoss ${e.gLoss.toFixed(4)}, ` +
        `${e.seconds.toFixed(1)}s (aggregation ${s.aggregationSeconds.toFixed(3)}s)${s.failures ? `; checkpoint written after ${s.failures} failed write(s)` : ''}`,
    );
    if (e.quality) {
      this.setQualityMetrics();
      this.log.info(
        `round ${e.round}: quality of the round-${e.quality.round} model: KID ${e.quality.kid.toPrecision(4)} on ${e.quality.features} (${e.quality.hospitals} hospital(s)); best so far: round ${bestQuality(this.state.history)?.round}`,
      );
    }
    this.broadcast({
      type: 'round-complete',
      round: e.round,
      participants: e.participants,
      examples: e.examples,
      dLoss: e.dLoss,
      gLoss: e.gLoss,
      seconds: e.seconds,
      ...(e.quality ? { quality: e.quality } : {}),
    });
    for (const fn of this.roundListeners) fn(e);
    this.emit({ type: 'round-aggregated', entry: e });
    if (this.closed) return;
    this.applyNextConfig();
    if (s.round >= this.fed.rounds) {
      this.setPhase('finished');
      this.log.info(`all ${this.fed.rounds} rounds complete`);
      this.broadcast({ type: 'finished', rounds: s.round });
      return;
    }
    this.setPhase('waiting');
    this.broadcastStatus();
    this.maybeStartRound();
  }

  /** The quality gauges from the history: the latest recorded figure and the best model. */
  private setQualityMetrics(): void {
    const latest = latestQuality(this.state.history);
    if (!latest) return;
    this.metrics.qualityKid.set(latest.kid);
    this.metrics.qualityRound.set(latest.round);
    const best = bestQuality(this.state.history);
    if (best) {
      this.metrics.qualityBestKid.set(best.kid);
      this.metrics.qualityBestRound.set(best.round);
    }
  }

  private broadcast(msg: ServerTextMessage): void {
    for (const p of this.peers.values()) p.send(msg);
  }

  private broadcastStatus(): void {
    const base = { type: 'status' as const, phase: this.phase, round: this.state.round, rounds: this.fed.rounds, connected: this.peers.size, minAvailable: this.fed.minAvailable };
    for (const p of this.peers.values()) p.send({ ...base, sampled: !!this.current?.pending.has(p.hospital) });
    this.changed();
  }

  status(): StatusJson {
    const r = this.current;
    const s = this.saving;
    const iso = (t: number | null | undefined) => (t == null ? null : new Date(t).toISOString());
    return {
      round: this.state.round,
      rounds: this.fed.rounds,
      phase: this.phase,
      attempt: r ? r.attempt : null,
      connected: [...this.peers.keys()].sort(),
      sampled: r ? [...r.sampled].sort() : [],
      received: r ? [...r.accepted].sort() : [],
      reconnecting: r ? [...r.away.keys()].sort() : [],
      deadline: r ? iso(r.deadlineAt) : null,
      progress: r ? Object.fromEntries(r.progress) : {},
      epsilon: Object.fromEntries([...this.activity].filter(([, a]) => a.epsilon !== null).map(([h, a]) => [h, a.epsilon!])),
      fingerprint: this.global?.fingerprint ?? '',
      parameters: this.global ? this.global.tensors.reduce((n, t) => n + t.data.length, 0) : 0,
      config: this.fed,
      history: this.state.history,
      retry: { failedAttempts: this.failedAttempts, nextAttemptAt: iso(this.retry?.at), stopped: this.stopped },
      checkpoint: {
        writeFailures: this.writeFailures,
        pending: s && s.failures > 0 ? { round: s.round, failures: s.failures, lastError: s.lastError, nextRetryAt: iso(s.retryAt) } : null,
      },
      quality: {
        everyRounds: this.fed.quality.everyRounds,
        features: this.fed.quality.features,
        best: bestQuality(this.state.history),
        latest: latestQuality(this.state.history),
      },
    };
  }

  /**
   * false while a completed round's checkpoint cannot be written (the last write failed and is being
   * retried): the state on disk is behind what hospitals trained. /readyz answers 503 meanwhile.
   */
  storageOk(): boolean {
    return !(this.saving && this.saving.failures > 0);
  }

  /** Stop every timer (server shutdown). A round in flight or unsaved is not completed; it restarts after a restart. */
  close(): void {
    this.closed = true;
    this.secure?.close();
    if (this.retry) this.clock.clearTimer(this.retry.timer);
    this.retry = undefined;
    const r = this.current;
    if (r) {
      this.clock.clearTimer(r.deadlineTimer);
      for (const t of r.granted.values()) this.clock.clearTimer(t);
      for (const t of r.away.values()) if (t !== undefined) this.clock.clearTimer(t);
    }
    if (this.saving?.timer !== undefined) this.clock.clearTimer(this.saving.timer);
  }
}

/**
 * ε spent as an update's header reports it (privacy on: shared/fed/hospitalTraining.ts adds it to the update
 * metadata), or undefined. Read defensively: headers without privacy fields are the common case.
 */
function epsilonOf(header: UpdateHeader): number | undefined {
  return header.privacy?.epsilon;
}
