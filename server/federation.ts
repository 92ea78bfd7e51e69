import { createAggregator, l2Distance, AggregationError, type Aggregator } from '../shared/aggregate/index.ts';
import { decodeWeights } from '../shared/codec/weightsCodec.ts';
import type { FedConfig } from '../shared/config/fedConfig.ts';
import { applyGlobalWeights } from '../shared/fed/batchNormPolicy.ts';
import { sampleClients } from '../shared/fed/sampling.ts';
import { encodeFrameHead } from '../shared/protocol/frames.ts';
import type { ClientTextMessage, ErrorCode, Phase, RoundConfig, UpdateHeader } from '../shared/protocol/messages.ts';
import type { WeightSet } from '../shared/weights.ts';
import type { Logger } from './log.ts';
import { releaseLargeMessageGarbage } from './memory.ts';
import { serverCrc32 } from './nativeCrc32.ts';
import type { Metrics } from './metrics.ts';
import { CheckpointStore, type FederationState, type HistoryEntry } from './state.ts';
import type { ReceiveBufferPool } from './receivePool.ts';
import type { Peer } from './transport.ts';
import { decodeUpdateWeights, UpdatePayloadError } from './updateDecode.ts';

/**
 * The round state machine (Flower-like), transport-agnostic:
 *
 *   waiting ──(≥ minAvailable hospitals)──▶ training ──(all sampled replied, or deadline)──▶ aggregating
 *      ▲                                        │ fewer than minCompletion updates: repeat the round  │
 *      └────────────────────────────────────────┴──────────── checkpoint saved ◀───────────────────────┘
 *                                                              └─▶ finished after `rounds` rounds
 *
 * Updates stream into one aggregator (FedAvg keeps a running weighted sum: memory O(model)). Uploads go
 * through upload slots (`upload-request` → `upload-grant` → binary `update`), so at most
 * `limits.maxConcurrentUploads` updates are in server memory at once, whatever the number of hospitals.
 */

type Failure = 'deadline' | 'disconnected' | 'declined' | 'rejected' | 'grant-expired';

interface RoundInFlight {
  round: number;
  attempt: number;
  sampled: Set<string>;
  /** Sampled hospitals that have not yet delivered nor failed. */
  pending: Set<string>;
  accepted: Map<string, { examples: number; dLoss: number; gLoss: number }>;
  failed: Map<string, Failure>;
  progress: Map<string, number>;
  /** Dropped (null) once the result is taken, to free its memory early. */
  aggregator: Aggregator | null;
  startedAt: number;
  deadlineAt: number;
  deadlineTimer?: NodeJS.Timeout;
  /** hospital → grant-expiry timer of its upload slot. */
  granted: Map<string, NodeJS.Timeout>;
  queue: string[];
  aggregationSeconds: number;
}

export interface FederationOptions {
  fed: FedConfig;
  store: CheckpointStore;
  metrics: Metrics;
  log: Logger;
  /** Delay before a repeated round attempt (avoids a busy loop when hospitals keep failing). */
  retryDelayMs?: number;
  /** Where the transport receives updates: their buffers are given back once the aggregator is done with them. */
  receivePool?: ReceiveBufferPool;
}

export interface StatusJson {
  round: number;
  rounds: number;
  phase: Phase;
  attempt: number | null;
  connected: string[];
  sampled: string[];
  received: string[];
  deadline: string | null;
  progress: Record<string, number>;
  fingerprint: string;
  parameters: number;
  config: FedConfig;
  history: HistoryEntry[];
}

export class Federation {
  phase: Phase = 'loading';
  state: FederationState = { round: 0, history: [] };
  private global!: WeightSet;
  /**
   * Codec bytes of the global weights: the checkpoint file itself (its meta holds the round state), also
   * the payload of `round` and `global` frames. `global` is a zero-copy view of it: the model is in memory once.
   */
  private globalPayload!: Uint8Array;
  private readonly peers = new Map<string, Peer>();
  private current?: RoundInFlight;
  /** Attempt counter of the next round (1 + attempts that failed). */
  private nextAttempt = 1;
  /** The last (round, attempt) closed: updates for it or anything earlier are late. */
  private closedUpTo = { round: 0, attempt: Infinity };
  private retryTimer?: NodeJS.Timeout;
  private closed = false;
  private readonly fed: FedConfig;
  private readonly store: CheckpointStore;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly retryDelayMs: number;
  private readonly receivePool?: ReceiveBufferPool;
  /** Resolved after every completed round (tests, bench). */
  private roundListeners: ((e: HistoryEntry) => void)[] = [];

  constructor(opts: FederationOptions) {
    this.fed = opts.fed;
    this.store = opts.store;
    this.metrics = opts.metrics;
    this.log = opts.log;
    this.retryDelayMs = opts.retryDelayMs ?? 2000;
    this.receivePool = opts.receivePool;
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

  /**
   * Load the newest valid checkpoint, or start from `initial` (and checkpoint it as round 0).
   */
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
    this.setPhase(this.state.round >= this.fed.rounds ? 'finished' : 'waiting');
  }

  /** Adopt checkpoint bytes as the global model (decoded as views, no copy). */
  private setGlobal(bytes: Uint8Array): void {
    this.globalPayload = bytes;
    this.global = decodeWeights(bytes, { crc32: serverCrc32 }).weights;
  }

  private setPhase(p: Phase): void {
    this.phase = p;
    for (const q of ['loading', 'waiting', 'training', 'aggregating', 'finished'] as const) this.metrics.phase.set(q === p ? 1 : 0, { phase: q });
  }

  onRoundComplete(fn: (e: HistoryEntry) => void): () => void {
    this.roundListeners.push(fn);
    return () => (this.roundListeners = this.roundListeners.filter((f) => f !== fn));
  }

  // ---------------------------------------------------------------------------------------------------
  // Transport events
  // ---------------------------------------------------------------------------------------------------

  welcome(): { fingerprint: string; rounds: number; round: number; phase: Phase } {
    return { fingerprint: this.global.fingerprint, rounds: this.fed.rounds, round: this.state.round, phase: this.phase };
  }

  onJoin(peer: Peer): void {
    this.peers.set(peer.hospital, peer);
    if (this.phase === 'finished') {
      peer.send({ type: 'finished', rounds: this.state.round });
      return;
    }
    this.broadcastStatus();
    this.maybeStartRound();
  }

  onLeave(peer: Peer): void {
    if (this.peers.get(peer.hospital) !== peer) return;
    this.peers.delete(peer.hospital);
    const r = this.current;
    if (r && r.pending.has(peer.hospital)) {
      this.log.warn(`${peer.hospital} disconnected during round ${r.round}: counted as a failure`);
      this.fail(r, peer.hospital, 'disconnected');
    }
    this.broadcastStatus();
  }

  onText(peer: Peer, msg: Exclude<ClientTextMessage, { type: 'hello' }>): void {
    switch (msg.type) {
      case 'get-global':
        this.sendGlobal(peer);
        return;
      case 'progress': {
        const r = this.current;
        if (r && r.round === msg.round && r.attempt === msg.attempt && r.pending.has(peer.hospital)) r.progress.set(peer.hospital, msg.fraction);
        return;
      }
      case 'decline': {
        const r = this.checkTask(peer, msg.round, msg.attempt, false);
        if (!r) return;
        this.log.warn(`${peer.hospital} declined round ${r.round}: ${msg.reason}`);
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

  onUpdate(peer: Peer, header: UpdateHeader, payload: Uint8Array, frameBytes: number): void {
    const r = this.checkTask(peer, header.round, header.attempt, true);
    if (!r) {
      // Reuse its buffer only while a round is in flight (between rounds the pool holds nothing).
      if (this.current) this.receivePool?.recycle(payload);
      return;
    }
    const hospital = peer.hospital;
    if (!r.granted.has(hospital)) {
      this.receivePool?.recycle(payload);
      this.reject(peer, 'no-upload-slot', 'send upload-request and wait for upload-grant before the update', r, false);
      return;
    }
    const t0 = performance.now();
    const aggregator = r.aggregator!;
    let kept = false;
    try {
      const { examples } = header;
      const ex = this.fed.examples;
      if (!Number.isSafeInteger(examples) || examples < ex.min || examples > ex.max) {
        throw new AggregationError('examples', `examples must be an integer in ${ex.min}…${ex.max}, got ${examples}`);
      }
      const weights = decodeUpdateWeights(payload, this.global);
      if (this.fed.maxUpdateNorm !== undefined) {
        const norm = l2Distance(weights, this.global);
        // The values are finite here (decodeUpdateWeights refused NaN/±Infinity), so the norm is a number.
        if (norm > this.fed.maxUpdateNorm) {
          throw new AggregationError('norm', `update norm ‖w − global‖₂ = ${norm.toPrecision(4)} exceeds maxUpdateNorm ${this.fed.maxUpdateNorm}`);
        }
      }
      // decodeUpdateWeights checked the values (fused with the checksum pass): the aggregator need not again.
      aggregator.add({ weights, examples, finiteChecked: true });
      kept = aggregator.retainsUpdates;
    } catch (e) {
      const dt = (performance.now() - t0) / 1000;
      r.aggregationSeconds += dt;
      this.metrics.aggregationSeconds.inc({}, dt);
      if (e instanceof AggregationError && e.reason !== 'empty') return this.reject(peer, e.reason, e.message, r, true);
      if (e instanceof UpdatePayloadError) return this.reject(peer, 'bad-frame', `update payload: ${e.message}`, r, true);
      this.log.error(`internal error on the update of ${hospital}: ${(e as Error).stack ?? e}`);
      return this.reject(peer, 'internal', 'the server failed to process this update', r, true);
    } finally {
      // Nothing refers to the update's bytes any more (unless the aggregator keeps them): reuse its buffer.
      if (!kept) this.receivePool?.recycle(payload);
    }
    const dt = (performance.now() - t0) / 1000;
    r.aggregationSeconds += dt;
    this.metrics.aggregationSeconds.inc({}, dt);
    this.metrics.aggregationBytes.inc({}, frameBytes);
    this.metrics.updatesAccepted.inc();
    r.accepted.set(hospital, { examples: header.examples, dLoss: header.dLoss, gLoss: header.gLoss });
    r.pending.delete(hospital);
    this.releaseSlot(r, hospital);
    peer.send({ type: 'accepted', round: r.round, attempt: r.attempt });
    this.log.info(`round ${r.round}: update from ${hospital} accepted (${header.examples} examples, dLoss ${header.dLoss.toFixed(4)}, gLoss ${header.gLoss.toFixed(4)}, ${(dt * 1000).toFixed(0)} ms)`);
    this.grantSlots(r);
    this.maybeFinish(r);
  }

  /**
   * The round in flight if (round, attempt) names it and this hospital still owes it an update;
   * otherwise refuse with the precise reason and return undefined.
   */
  private checkTask(peer: Peer, round: number, attempt: number, isUpload: boolean): RoundInFlight | undefined {
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

  private refuse(peer: Peer, code: ErrorCode, message: string, extra: { round: number; attempt: number }, isUpload: boolean): void {
    if (isUpload) this.metrics.updatesRejected.inc({ reason: code });
    peer.error(code, message, extra);
  }

  /** Refuse an update; when `final`, the hospital is out of this round (its slot is freed). */
  private reject(peer: Peer, reason: ErrorCode, message: string, r: RoundInFlight, final: boolean): void {
    this.log.warn(`round ${r.round}: update from ${peer.hospital} refused (${reason}): ${message}`);
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
    this.maybeFinish(r);
  }

  // ---------------------------------------------------------------------------------------------------
  // Upload slots
  // ---------------------------------------------------------------------------------------------------

  private releaseSlot(r: RoundInFlight, hospital: string): void {
    const t = r.granted.get(hospital);
    if (t) clearTimeout(t);
    r.granted.delete(hospital);
    r.queue = r.queue.filter((h) => h !== hospital);
  }

  private grantSlots(r: RoundInFlight): void {
    if (this.current !== r) return;
    while (r.granted.size < this.fed.limits.maxConcurrentUploads && r.queue.length) {
      const h = r.queue.shift()!;
      const peer = this.peers.get(h);
      if (!peer || !r.pending.has(h)) continue;
      const timer = setTimeout(() => {
        if (this.current !== r || !r.granted.has(h)) return;
        this.log.warn(`round ${r.round}: ${h} did not upload within ${this.fed.limits.uploadGrantSeconds}s of its grant`);
        this.peers.get(h)?.error('late', `no update within ${this.fed.limits.uploadGrantSeconds}s of the upload grant`, { round: r.round, attempt: r.attempt });
        this.metrics.updatesRejected.inc({ reason: 'late' });
        this.fail(r, h, 'grant-expired');
      }, this.fed.limits.uploadGrantSeconds * 1000);
      timer.unref();
      r.granted.set(h, timer);
      peer.send({ type: 'upload-grant', round: r.round, attempt: r.attempt });
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Rounds
  // ---------------------------------------------------------------------------------------------------

  private maybeStartRound(): void {
    if (this.closed || this.phase !== 'waiting' || this.current || this.retryTimer) return;
    if (this.state.round >= this.fed.rounds) return;
    if (this.peers.size < this.fed.minAvailable) return;
    this.startRound();
  }

  private startRound(): void {
    const round = this.state.round + 1;
    const attempt = this.nextAttempt;
    const ids = [...this.peers.keys()].sort();
    const chosen = sampleClients(ids, { fraction: this.fed.fraction, minCount: this.fed.minFit, seed: this.fed.seed, round: samplingRound(round, attempt) });
    const sampled = new Set(chosen);
    const now = Date.now();
    const deadlineMs = this.fed.roundDeadlineSeconds * 1000;
    const r: RoundInFlight = {
      round,
      attempt,
      sampled,
      pending: new Set(sampled),
      accepted: new Map(),
      failed: new Map(),
      progress: new Map(),
      aggregator: createAggregator(
        this.fed.aggregator.type === 'trimmed-mean' ? { type: 'trimmed-mean', beta: this.fed.aggregator.beta } : { type: this.fed.aggregator.type },
        this.global,
      ),
      startedAt: now,
      deadlineAt: now + deadlineMs,
      granted: new Map(),
      queue: [],
      aggregationSeconds: 0,
    };
    this.current = r;
    this.setPhase('training');
    this.metrics.sampled.set(sampled.size);
    r.deadlineTimer = setTimeout(() => this.onDeadline(r), deadlineMs);
    const m = this.fed.model;
    const config: RoundConfig = {
      round,
      attempt,
      rounds: this.fed.rounds,
      ganType: m.gan,
      localEpochs: this.fed.localEpochs,
      learningRate: { generator: m.optimizerG.learningRate, discriminator: m.optimizerD.learningRate },
      imageSize: m.imageSize,
      batchNorm: this.fed.batchNorm,
      examples: { ...this.fed.examples },
      ...(this.fed.maxUpdateNorm !== undefined ? { maxUpdateNorm: this.fed.maxUpdateNorm } : {}),
      deadlineSeconds: this.fed.roundDeadlineSeconds,
      model: m as unknown as Record<string, unknown>,
    };
    const head = encodeFrameHead({ type: 'round', round, attempt, config } as unknown as { type: string });
    this.log.info(
      `round ${round}${attempt > 1 ? ` (attempt ${attempt})` : ''}: sampled ${chosen.length} of ${ids.length} hospitals: ${chosen.join(', ')}; deadline ${this.fed.roundDeadlineSeconds}s`,
    );
    // One payload for all: each peer gets the head and the shared payload as fragments of one message.
    for (const h of chosen) this.peers.get(h)!.sendBinary(head, this.globalPayload);
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
    this.maybeFinish(r);
  }

  private maybeFinish(r: RoundInFlight): void {
    if (this.current !== r || r.pending.size > 0) return;
    clearTimeout(r.deadlineTimer);
    for (const t of r.granted.values()) clearTimeout(t);
    r.granted.clear();
    r.queue = [];
    this.current = undefined;
    this.receivePool?.clear(); // no upload until the next round: do not hold an update-sized buffer meanwhile
    this.closedUpTo = { round: r.round, attempt: r.attempt };
    this.metrics.sampled.set(0);
    const received = r.accepted.size;
    if (received < this.fed.minCompletion) {
      this.metrics.roundsFailed.inc();
      this.log.warn(`round ${r.round} attempt ${r.attempt}: ${received} update(s), ${this.fed.minCompletion} needed; repeating the round`);
      this.broadcast({ type: 'round-failed', round: r.round, attempt: r.attempt, received, needed: this.fed.minCompletion });
      this.nextAttempt = r.attempt + 1;
      this.setPhase('waiting');
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.broadcastStatus();
        this.maybeStartRound();
      }, this.retryDelayMs);
      return;
    }
    void this.completeRound(r).catch((e) => {
      // A failed checkpoint write must not lose the round silently: log, and retry the round.
      this.log.error(`round ${r.round}: could not complete: ${(e as Error).stack ?? e}`);
      this.nextAttempt = r.attempt + 1;
      this.setPhase('waiting');
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.maybeStartRound();
      }, this.retryDelayMs);
    });
  }

  private async completeRound(r: RoundInFlight): Promise<void> {
    this.setPhase('aggregating');
    const t0 = performance.now();
    let examples = 0;
    let dSum = 0;
    let gSum = 0;
    for (const a of r.accepted.values()) {
      examples += a.examples;
      dSum += a.examples * a.dLoss;
      gSum += a.examples * a.gLoss;
    }
    const entry: HistoryEntry = {
      round: r.round,
      participants: r.accepted.size,
      hospitals: [...r.accepted.keys()].sort(),
      examples,
      dLoss: dSum / examples,
      gLoss: gSum / examples,
      seconds: (Date.now() - r.startedAt) / 1000,
      attempts: r.attempt,
      completedAt: new Date().toISOString(),
    };
    const state: FederationState = { round: r.round, history: [...this.state.history, entry] };
    // Collect the last update's buffers before the result is allocated (memory stays O(model)): the
    // transport's own collection after that message is queued behind this one.
    await new Promise((res) => setImmediate(res));
    releaseLargeMessageGarbage();
    const bytes = this.aggregate(r, state);
    const aggSeconds = r.aggregationSeconds + (performance.now() - t0) / 1000;
    this.metrics.aggregationSeconds.inc({}, (performance.now() - t0) / 1000);
    await this.store.write(state.round, bytes);
    this.metrics.checkpointsWritten.inc();
    this.state = state;
    this.setGlobal(bytes);
    releaseLargeMessageGarbage(); // the previous global model and the decoded result
    this.nextAttempt = 1;
    this.metrics.roundsCompleted.inc();
    this.metrics.currentRound.set(state.round);
    this.metrics.lastAggregationSeconds.set(aggSeconds);
    this.metrics.lastRoundSeconds.set(entry.seconds);
    this.log.info(
      `round ${r.round} complete: ${entry.participants} update(s) from ${entry.hospitals.join(', ')}, ${examples} examples, dLoss ${entry.dLoss.toFixed(4)}, gLoss ${entry.gLoss.toFixed(4)}, ${entry.seconds.toFixed(1)}s (aggregation ${aggSeconds.toFixed(3)}s)`,
    );
    this.broadcast({ type: 'round-complete', round: r.round, participants: entry.participants, examples, dLoss: entry.dLoss, gLoss: entry.gLoss, seconds: entry.seconds });
    for (const fn of this.roundListeners) fn(entry);
    if (this.closed) return;
    if (state.round >= this.fed.rounds) {
      this.setPhase('finished');
      this.log.info(`all ${this.fed.rounds} rounds complete`);
      this.broadcast({ type: 'finished', rounds: state.round });
      return;
    }
    this.setPhase('waiting');
    this.broadcastStatus();
    this.maybeStartRound();
  }

  /** The aggregate of the round, encoded as its checkpoint (the aggregator and the decoded result are dropped). */
  private aggregate(r: RoundInFlight, state: FederationState): Uint8Array {
    let next = r.aggregator!.result();
    r.aggregator = null;
    releaseLargeMessageGarbage(); // the running sums
    // FedBN: the server does not average batch-norm tensors; the previous global ones stay (hospitals keep their own).
    if (this.fed.batchNorm === 'local') next = applyGlobalWeights(next, this.global, 'local');
    return this.store.encode(state, next);
  }

  private sendGlobal(peer: Peer): void {
    peer.sendBinary(encodeFrameHead({ type: 'global', round: this.state.round }), this.globalPayload);
  }

  private broadcast(msg: Parameters<Peer['send']>[0]): void {
    for (const p of this.peers.values()) p.send(msg);
  }

  private broadcastStatus(): void {
    const base = { type: 'status' as const, phase: this.phase, round: this.state.round, rounds: this.fed.rounds, connected: this.peers.size, minAvailable: this.fed.minAvailable };
    for (const p of this.peers.values()) p.send({ ...base, sampled: !!this.current?.pending.has(p.hospital) });
  }

  status(): StatusJson {
    const r = this.current;
    return {
      round: this.state.round,
      rounds: this.fed.rounds,
      phase: this.phase,
      attempt: r ? r.attempt : null,
      connected: [...this.peers.keys()].sort(),
      sampled: r ? [...r.sampled].sort() : [],
      received: r ? [...r.accepted.keys()].sort() : [],
      deadline: r ? new Date(r.deadlineAt).toISOString() : null,
      progress: r ? Object.fromEntries(r.progress) : {},
      fingerprint: this.global?.fingerprint ?? '',
      parameters: this.global ? this.global.tensors.reduce((n, t) => n + t.data.length, 0) : 0,
      config: this.fed,
      history: this.state.history,
    };
  }

  /** Stop timers (server shutdown). A round in flight is simply not completed; it restarts after a restart. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.current) {
      clearTimeout(this.current.deadlineTimer);
      for (const t of this.current.granted.values()) clearTimeout(t);
    }
  }
}

/**
 * The `round` key of client sampling: the round itself on a first attempt (as the in-process simulation
 * samples), a distinct key per repeated attempt so a repeated round draws a new sample.
 */
export function samplingRound(round: number, attempt: number): number {
  return attempt === 1 ? round : round + attempt * 1_000_000;
}
