/**
 * The round state machine without sockets: a fake clock (timers fire only when the test advances time),
 * fake hospitals that record what they are sent, and an in-memory checkpoint store that can fail.
 */
import { describe, expect, it } from 'vitest';
import { encodeWeights, decodeWeights } from '../shared/codec/weightsCodec.ts';
import { parseFedConfig, type FedConfigInput } from '../shared/config/fedConfig.ts';
import { configureRound } from '../shared/fed/strategy.ts';
import { decodeFrame } from '../shared/protocol/frames.ts';
import type { ErrorCode, ServerTextMessage } from '../shared/protocol/messages.ts';
import type { WeightSet } from '../shared/weights.ts';
import { memoryLogger } from './log.ts';
import { Metrics } from './metrics.ts';
import { backoffMs, RoundMachine, type CheckpointSink, type Clock, type MemoryHooks, type RoundPeer, type TimerHandle } from './roundMachine.ts';
import type { FederationState } from './state.ts';

// ---------------------------------------------------------------------------------------------------------
// Fakes
// ---------------------------------------------------------------------------------------------------------

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

/** Timers fire only inside advance(), in time order; the async work they start is flushed after each. */
class FakeClock implements Clock {
  t = T0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimer(h: TimerHandle): void {
    this.timers.delete(h as number);
  }
  /** Milliseconds from now of every pending timer, ascending. */
  pending(): number[] {
    return [...this.timers.values()].map((x) => x.at - this.t).sort((a, b) => a - b);
  }
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

/** Let every promise the machine started settle (checkpoint writes, aggregation). */
const flush = () => new Promise<void>((r) => setImmediate(r));

class FakePeer implements RoundPeer {
  texts: ServerTextMessage[] = [];
  frames: { header: Record<string, unknown>; weights: WeightSet; meta: Record<string, unknown> }[] = [];
  errors: { code: ErrorCode; message: string; round?: number; attempt?: number }[] = [];
  constructor(readonly hospital: string) {}
  send(msg: ServerTextMessage): void {
    this.texts.push(msg);
  }
  sendBinary(...parts: Uint8Array[]): void {
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) (all.set(p, o), (o += p.length));
    const { header, payload } = decodeFrame(all);
    const d = decodeWeights(payload);
    this.frames.push({ header, weights: d.weights, meta: d.meta });
  }
  error(code: ErrorCode, message: string, extra: { round?: number; attempt?: number } = {}): void {
    this.errors.push({ code, message, ...extra });
  }
  of<T extends ServerTextMessage['type']>(type: T): Extract<ServerTextMessage, { type: T }>[] {
    return this.texts.filter((m) => m.type === type) as Extract<ServerTextMessage, { type: T }>[];
  }
  rounds(): { round: number; attempt: number }[] {
    return this.frames.filter((f) => f.header.type === 'round').map((f) => ({ round: f.header.round as number, attempt: f.header.attempt as number }));
  }
  lastError(): string | undefined {
    return this.errors.at(-1)?.code;
  }
}

/** Checkpoints in memory; `failures` makes the next writes reject. */
class MemoryStore implements CheckpointSink {
  readonly dir = 'memory';
  writes: { round: number; state: FederationState; weights: WeightSet; keep?: readonly number[] }[] = [];
  attempts = 0;
  failures = 0;
  /** The next encode() calls that throw (a bug in the aggregation path). */
  encodeFailures = 0;
  saved: { state: FederationState; bytes: Uint8Array; file: string } | null = null;
  encode(state: FederationState, weights: WeightSet): Uint8Array {
    if (this.encodeFailures > 0 && this.encodeFailures--) throw new Error('encoder bug');
    return encodeWeights(weights, { kind: 'test-checkpoint', state });
  }
  async write(round: number, bytes: Uint8Array, opts: { keep?: readonly number[] } = {}): Promise<void> {
    this.attempts++;
    if (this.failures > 0) {
      this.failures--;
      throw new Error('ENOSPC: no space left on device');
    }
    const d = decodeWeights(bytes);
    this.writes.push({ round, state: (d.meta as { state: FederationState }).state, weights: d.weights, ...(opts.keep ? { keep: opts.keep } : {}) });
  }
  async loadLatest(): Promise<{ state: FederationState; bytes: Uint8Array; file: string } | null> {
    return this.saved;
  }
}

const FP = 'abcdefabcdefabcd';
/** A kernel [2, 2] and a batch-norm gamma [2], every value `v`. */
function weights(v: number, gamma = v): WeightSet {
  return {
    fingerprint: FP,
    tensors: [
      { name: 'g/dense/kernel', shape: [2, 2], data: new Float32Array(4).fill(v) },
      { name: 'g/bn1/gamma', shape: [2], data: new Float32Array(2).fill(gamma) },
    ],
  };
}
const values = (w: WeightSet) => w.tensors.map((t) => [...t.data]);

async function setup(input: FedConfigInput = {}, extra: { memory?: MemoryHooks; store?: MemoryStore; initial?: WeightSet } = {}) {
  // Hand-made weights: no model-derived update-norm bound unless a test sets one.
  const fed = parseFedConfig({ rounds: 3, roundDeadlineSeconds: 100, maxUpdateNorm: null, ...input, model: { imageSize: 16 } });
  const clock = new FakeClock();
  const store = extra.store ?? new MemoryStore();
  const metrics = new Metrics();
  const log = memoryLogger();
  const m = new RoundMachine({ fed, store, metrics, log, clock, memory: extra.memory });
  expect(m.phase).toBe('loading');
  await m.load(extra.initial ?? weights(0));
  const peers = new Map<string, FakePeer>();
  const join = (h: string) => {
    const p = new FakePeer(h);
    peers.set(h, p);
    m.onJoin(p);
    return p;
  };
  const request = (p: FakePeer, round = 1, attempt = 1) => m.onText(p, { type: 'upload-request', round, attempt });
  const update = (p: FakePeer, w: WeightSet, examples = 10, round = 1, attempt = 1, losses = { dLoss: 1, gLoss: 1 }) => {
    const payload = encodeWeights(w);
    m.onUpdate(p, { type: 'update', round, attempt, examples, ...losses }, payload, payload.length + 64);
  };
  /** upload-request, then the update (the hospital must hold a grant by then). */
  const upload = async (p: FakePeer, w: WeightSet, examples = 10, round = 1, attempt = 1) => {
    request(p, round, attempt);
    update(p, w, examples, round, attempt);
    await flush();
  };
  return { fed, clock, store, metrics, log, m, peers, join, request, update, upload };
}

// ---------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------

describe('round machine: starting rounds', () => {
  it('loading → waiting, saves round 0, starts a round once minAvailable hospitals are connected, sending the strategy round config', async () => {
    const { m, join, store, fed, clock, metrics } = await setup({ minAvailable: 3, minFit: 2, minCompletion: 2, fraction: 0.5, seed: 3 });
    expect(m.phase).toBe('waiting');
    expect(store.writes.map((w) => w.round)).toEqual([0]);
    expect(metrics.phase.get({ phase: 'waiting' })).toBe(1);
    const a = join('h1');
    const b = join('h2');
    expect(m.phase).toBe('waiting');
    expect(a.of('status').at(-1)).toMatchObject({ phase: 'waiting', connected: 2, minAvailable: 3, sampled: false });
    const c = join('h3');
    expect(m.phase).toBe('training');
    const plan = configureRound(fed, { round: 1, attempt: 1, available: ['h1', 'h2', 'h3'] });
    const all = { h1: a, h2: b, h3: c };
    for (const [h, p] of Object.entries(all)) {
      if (plan.sampled.includes(h)) {
        expect(p.frames).toHaveLength(1);
        expect(p.frames[0].header).toEqual({ type: 'round', round: 1, attempt: 1, config: JSON.parse(JSON.stringify(plan.config)) });
        expect(values(p.frames[0].weights)).toEqual(values(weights(0)));
        expect(p.of('status').at(-1)).toMatchObject({ phase: 'training', sampled: true });
      } else {
        expect(p.frames).toHaveLength(0);
        expect(p.of('status').at(-1)).toMatchObject({ phase: 'training', sampled: false });
      }
    }
    const s = m.status();
    expect(s).toMatchObject({ phase: 'training', round: 0, attempt: 1, sampled: plan.sampled, received: [], connected: ['h1', 'h2', 'h3'] });
    expect(s.deadline).toBe(new Date(T0 + 100_000).toISOString());
    expect(clock.pending()).toEqual([100_000]); // the deadline
    expect(metrics.sampled.get()).toBe(2);
  });

  it('resumes from a saved checkpoint (waiting, or finished when every round is done)', async () => {
    const store = new MemoryStore();
    const saved: FederationState = { round: 3, history: [] };
    store.saved = { state: saved, bytes: encodeWeights(weights(7), { state: saved }), file: 'round-000003.fgw' };
    const { m, join, log } = await setup({ rounds: 3 }, { store });
    expect(m.phase).toBe('finished');
    expect(store.writes).toHaveLength(0);
    expect(values(m.globalWeights)).toEqual(values(weights(7)));
    expect(log.lines).toContain('INFO resumed from round-000003.fgw: 3 round(s) completed');
    const p = join('h1');
    expect(p.texts).toEqual([{ type: 'finished', rounds: 3 }]);
    m.onText(p, { type: 'upload-request', round: 4, attempt: 1 });
    expect(p.lastError()).toBe('finished');

    const store2 = new MemoryStore();
    store2.saved = { state: { round: 1, history: [] }, bytes: encodeWeights(weights(1)), file: 'f' };
    const two = await setup({ rounds: 3, minAvailable: 1, minFit: 1, minCompletion: 1 }, { store: store2 });
    expect(two.m.phase).toBe('waiting');
    expect(two.join('h1').rounds()).toEqual([{ round: 2, attempt: 1 }]);
  });

  it('serves the global model and records progress of sampled hospitals only', async () => {
    const { m, join } = await setup({ minAvailable: 2, minFit: 2, minCompletion: 2 });
    const a = join('h1');
    join('h2');
    m.onText(a, { type: 'get-global' });
    expect(a.frames.at(-1)!.header).toMatchObject({ type: 'global', round: 0 });
    m.onText(a, { type: 'progress', round: 1, attempt: 1, fraction: 0.25 });
    m.onText(a, { type: 'progress', round: 2, attempt: 1, fraction: 0.75 });
    expect(m.status().progress).toEqual({ h1: 0.25 });
  });
});

describe('round machine: upload slots', () => {
  it('one slot: grants in request order, one at a time, and completes the round when all delivered', async () => {
    const { m, join, request, update, clock, store, metrics } = await setup({ minAvailable: 3, minFit: 3, minCompletion: 3, rounds: 1 });
    const [a, b, c] = ['h1', 'h2', 'h3'].map(join);
    request(b);
    request(a);
    request(c);
    expect(b.of('upload-grant')).toEqual([{ type: 'upload-grant', round: 1, attempt: 1 }]);
    expect(a.of('upload-grant')).toHaveLength(0);
    expect(c.of('upload-grant')).toHaveLength(0);
    request(b); // a repeated request repeats the grant
    expect(b.of('upload-grant')).toHaveLength(2);
    // b's grant: uploadGrantSeconds (120 s) but never past the deadline (100 s), and while a and c wait for
    // the slot at most b's share of the time left: 100 s / (1 + 2 waiting), in whole milliseconds.
    expect(clock.pending()).toEqual([33_333, 100_000]);
    update(b, weights(3), 30);
    expect(b.of('accepted')).toEqual([{ type: 'accepted', round: 1, attempt: 1 }]);
    expect(a.of('upload-grant')).toHaveLength(1);
    expect(c.of('upload-grant')).toHaveLength(0);
    update(a, weights(1), 10);
    expect(c.of('upload-grant')).toHaveLength(1);
    update(c, weights(5), 20);
    expect(m.phase).toBe('aggregating');
    await flush();
    expect(m.phase).toBe('finished');
    expect(clock.pending()).toEqual([]); // the deadline and grant timers are gone
    const expected = Math.fround((30 * 3 + 10 * 1 + 20 * 5) / 60);
    expect(values(m.globalWeights)[0]).toEqual([expected, expected, expected, expected]);
    expect(store.writes.map((w) => w.round)).toEqual([0, 1]);
    expect(m.state.history[0]).toEqual({
      round: 1,
      participants: 3,
      hospitals: ['h1', 'h2', 'h3'],
      examples: 60,
      examplesMedian: 20, // of 10, 20, 30: caps the next round's counts at 4 × 20
      dLoss: 1,
      gLoss: 1,
      seconds: 0,
      attempts: 1,
      completedAt: new Date(T0).toISOString(),
    });
    for (const p of [a, b, c]) {
      expect(p.of('round-complete')).toEqual([{ type: 'round-complete', round: 1, participants: 3, examples: 60, dLoss: 1, gLoss: 1, seconds: 0 }]);
      expect(p.of('finished')).toEqual([{ type: 'finished', rounds: 1 }]);
    }
    expect(metrics.updatesAccepted.get()).toBe(3);
    expect(metrics.roundsCompleted.get()).toBe(1);
    expect(metrics.checkpointsWritten.get()).toBe(1);
  });

  it('three slots: three grants at once, the fourth when one frees', async () => {
    const { join, request, update } = await setup({ minAvailable: 4, minFit: 4, minCompletion: 4, limits: { maxConcurrentUploads: 3 } });
    const peers = ['h1', 'h2', 'h3', 'h4'].map(join);
    for (const p of [peers[3], peers[0], peers[2], peers[1]]) request(p);
    expect(peers.map((p) => p.of('upload-grant').length)).toEqual([1, 0, 1, 1]);
    update(peers[2], weights(1));
    expect(peers[1].of('upload-grant')).toHaveLength(1);
    expect(peers[2].of('accepted')).toHaveLength(1);
  });

  it('refuses an update without a grant (no-upload-slot) and keeps the hospital in the round', async () => {
    const { m, join, update, request, metrics } = await setup({ minAvailable: 2, minFit: 2, minCompletion: 2 });
    const [a] = ['h1', 'h2'].map(join);
    update(a, weights(1));
    expect(a.lastError()).toBe('no-upload-slot');
    expect(metrics.updatesRejected.get({ reason: 'no-upload-slot' })).toBe(1);
    request(a);
    update(a, weights(1));
    expect(a.of('accepted')).toHaveLength(1);
    expect(m.status().received).toEqual(['h1']);
    update(a, weights(1));
    expect(a.lastError()).toBe('duplicate');
  });

  it('a grant expires after uploadGrantSeconds: the hospital is out (late), its slot goes to the next, its later update is late', async () => {
    const { m, join, request, update, clock, metrics } = await setup({ minAvailable: 3, minFit: 3, minCompletion: 2, limits: { uploadGrantSeconds: 30 } });
    const [a, b, c] = ['h1', 'h2', 'h3'].map(join);
    request(a);
    request(b);
    await clock.advance(29_999);
    expect(a.errors).toHaveLength(0);
    expect(b.of('upload-grant')).toHaveLength(0);
    await clock.advance(1);
    expect(a.errors).toEqual([{ code: 'late', message: 'no update within 30s of the upload grant: the grant expired and the slot is freed', round: 1, attempt: 1 }]);
    expect(metrics.updatesRejected.get({ reason: 'late' })).toBe(1);
    expect(b.of('upload-grant')).toHaveLength(1);
    update(a, weights(1));
    expect(a.errors.at(-1)).toMatchObject({ code: 'late', message: 'h1 is out of round 1 (grant-expired)' });
    update(b, weights(2));
    request(c);
    update(c, weights(4));
    await flush();
    expect(m.state.history[0]).toMatchObject({ round: 1, participants: 2, hospitals: ['h2', 'h3'], seconds: 30 });
  });
});

describe('round machine: deadline and stragglers', () => {
  it('closes the round at the deadline: stragglers (also one holding a grant) get round-closed, their late messages are refused', async () => {
    const { m, join, request, update, clock, metrics } = await setup({ minAvailable: 3, minFit: 3, minCompletion: 1, roundDeadlineSeconds: 50 });
    const [a, b, c] = ['h1', 'h2', 'h3'].map(join);
    request(a);
    update(a, weights(2));
    request(b); // holds the slot, never uploads
    await clock.advance(49_999);
    expect(m.phase).toBe('training');
    await clock.advance(1);
    for (const p of [b, c]) expect(p.of('round-closed')).toEqual([{ type: 'round-closed', round: 1, attempt: 1, reason: 'deadline' }]);
    expect(a.of('round-closed')).toHaveLength(0);
    expect(m.state.history[0]).toMatchObject({ round: 1, participants: 1, hospitals: ['h1'], seconds: 50 });
    expect(values(m.globalWeights)[0]).toEqual([2, 2, 2, 2]);
    // Round 2 is under way; a straggler's update for round 1 is late, not wrong-round.
    expect(m.status()).toMatchObject({ phase: 'training', round: 1, attempt: 1 });
    update(c, weights(9), 10, 1, 1);
    expect(c.errors.at(-1)).toMatchObject({ code: 'late', round: 1, attempt: 1 });
    m.onText(b, { type: 'upload-request', round: 1, attempt: 1 });
    expect(b.errors.at(-1)).toMatchObject({ code: 'late' });
    m.onText(b, { type: 'upload-request', round: 5, attempt: 1 });
    expect(b.errors.at(-1)).toMatchObject({ code: 'wrong-round' });
    expect(metrics.updatesRejected.get({ reason: 'late' })).toBe(2);
    expect(clock.pending()).toEqual([50_000]); // only round 2's deadline
  });

  it('a hospital out of the sample is refused, and its decline of a round not in flight too', async () => {
    const { m, join } = await setup({ minAvailable: 3, minFit: 1, minCompletion: 1, fraction: 0.1, seed: 1 });
    ['h1', 'h2', 'h3'].map(join);
    const out = ['h1', 'h2', 'h3'].find((h) => !m.status().sampled.includes(h))!;
    const p = new FakePeer(out);
    m.onText(p, { type: 'upload-request', round: 1, attempt: 1 });
    expect(p.lastError()).toBe('not-sampled');
    m.onText(p, { type: 'decline', round: 1, attempt: 2, reason: 'x' });
    expect(p.lastError()).toBe('wrong-round');
  });
});

describe('round machine: failed attempts, backoff and the retry limit', () => {
  it('repeats a round with fewer than minCompletion updates after 2, 4, 5 s (capped), stops after maxFailedAttempts, and resumes on a join', async () => {
    const { m, join, clock, metrics, log, peers } = await setup({
      minAvailable: 2,
      minFit: 2,
      minCompletion: 2,
      retry: { initialDelaySeconds: 2, maxDelaySeconds: 5, maxFailedAttempts: 4 },
    });
    const [a, b] = ['h1', 'h2'].map(join);
    const declineAll = (attempt: number) => {
      for (const p of peers.values()) m.onText(p, { type: 'decline', round: 1, attempt, reason: 'busy' });
    };
    const delays = [2000, 4000, 5000];
    for (let attempt = 1; attempt <= 3; attempt++) {
      declineAll(attempt);
      expect(m.phase).toBe('waiting');
      // The first decline already makes 2 updates impossible: the attempt ends at once, the other is stopped.
      expect(a.of('round-failed').at(-1)).toEqual({ type: 'round-failed', round: 1, attempt, received: 0, needed: 2, reason: 'unreachable', nextAttemptInSeconds: delays[attempt - 1] / 1000 });
      expect(m.status().retry).toEqual({ failedAttempts: attempt, nextAttemptAt: new Date(clock.t + delays[attempt - 1]).toISOString(), stopped: false });
      expect(clock.pending()).toEqual([delays[attempt - 1]]);
      // A join while backing off does not cut the wait.
      if (attempt === 2) join('h3');
      await clock.advance(delays[attempt - 1] - 1);
      expect(m.phase).toBe('waiting');
      await clock.advance(1);
      expect(m.phase).toBe('training');
      expect(m.status().attempt).toBe(attempt + 1);
      // The update of a failed attempt is late.
      m.onText(a, { type: 'upload-request', round: 1, attempt });
      expect(a.lastError()).toBe('late');
    }
    // Attempt 4 (h1, h2, h3 connected): everyone declines; that is the 4th failure in a row.
    for (const p of peers.values()) m.onText(p, { type: 'decline', round: 1, attempt: 4, reason: 'busy' });
    expect(m.phase).toBe('waiting');
    expect(clock.pending()).toEqual([]);
    expect(m.status().retry).toEqual({ failedAttempts: 4, nextAttemptAt: null, stopped: true });
    expect(a.of('round-failed').at(-1)).toMatchObject({ attempt: 4, reason: 'unreachable', nextAttemptInSeconds: null });
    expect(metrics.roundsFailed.get()).toBe(4);
    expect(metrics.retryStopped.get()).toBe(1);
    await clock.advance(3_600_000);
    expect(m.phase).toBe('waiting');
    const stopLines = log.lines.filter((l) => l.includes('not retrying until a hospital joins'));
    expect(stopLines).toEqual(['WARN round 1 attempt 4: 0 update(s), 2 needed; 4 attempts failed in a row (retry.maxFailedAttempts): not retrying until a hospital joins']);
    // A leave does not resume; a join does, at once, with the next attempt and a fresh backoff.
    m.onLeave(peers.get('h3')!);
    expect(m.phase).toBe('waiting');
    const back = join('h3');
    expect(m.phase).toBe('training');
    expect(back.rounds()).toEqual([{ round: 1, attempt: 5 }]);
    expect(m.status().retry).toEqual({ failedAttempts: 0, nextAttemptAt: null, stopped: false });
    expect(metrics.retryStopped.get()).toBe(0);
    for (const p of [a, b, back]) m.onText(p, { type: 'decline', round: 1, attempt: 5, reason: 'busy' });
    expect(clock.pending()).toEqual([2000]);
  });

  it('a round that succeeds after failures records its attempts and resets the count', async () => {
    const { m, join, clock, upload } = await setup({ minAvailable: 2, minFit: 2, minCompletion: 2 });
    const [a, b] = ['h1', 'h2'].map(join);
    await upload(a, weights(1));
    m.onText(b, { type: 'decline', round: 1, attempt: 1, reason: 'GPU lost' });
    expect(clock.pending()).toEqual([2000]); // the default initial delay
    await clock.advance(2000);
    await upload(a, weights(1), 10, 1, 2);
    await upload(b, weights(3), 10, 1, 2);
    expect(m.state.history[0]).toMatchObject({ round: 1, attempts: 2, participants: 2 });
    expect(m.status().retry).toEqual({ failedAttempts: 0, nextAttemptAt: null, stopped: false });
    expect(m.status()).toMatchObject({ phase: 'training', attempt: 1 }); // round 2, attempt 1
  });

  it('backoff is min(initial · 2^(k−1), max)', async () => {
    const retry = { initialDelaySeconds: 2, maxDelaySeconds: 60, maxFailedAttempts: 8 };
    expect([1, 2, 3, 4, 5, 6, 7].map((k) => backoffMs(retry, k))).toEqual([2000, 4000, 8000, 16000, 32000, 60000, 60000]);
    expect(backoffMs(retry, 3, 20)).toBe(80);
    expect(parseFedConfig({}).retry).toEqual(retry);
    expect(() => parseFedConfig({ retry: { initialDelaySeconds: 10, maxDelaySeconds: 5 } })).toThrow('retry.initialDelaySeconds: must be at most retry.maxDelaySeconds (5)');
    expect(() => parseFedConfig({ retry: { maxFailedAttempts: 0 } })).toThrow(/retry\.maxFailedAttempts/);
  });
});

describe('round machine: an aggregation that throws', () => {
  it('counts as a failed attempt: round-failed, logged, repeated after the backoff', async () => {
    const { m, join, upload, clock, store, log, metrics } = await setup({ minAvailable: 2, minFit: 2, minCompletion: 2 });
    const [a, b] = ['h1', 'h2'].map(join);
    store.encodeFailures = 1;
    await upload(a, weights(1));
    await upload(b, weights(3));
    expect(m.phase).toBe('waiting');
    expect(a.of('round-failed')).toEqual([{ type: 'round-failed', round: 1, attempt: 1, received: 2, needed: 2, reason: 'internal', nextAttemptInSeconds: 2 }]);
    expect(log.lines.some((l) => l.startsWith('ERROR round 1: aggregation failed: Error: encoder bug'))).toBe(true);
    expect(metrics.roundsFailed.get()).toBe(1);
    expect(clock.pending()).toEqual([2000]);
    await clock.advance(2000);
    expect(a.rounds()).toEqual([
      { round: 1, attempt: 1 },
      { round: 1, attempt: 2 },
    ]);
  });
});

describe('round machine: checkpoint writes that fail', () => {
  it('counts the failure, shows it in status and metrics, keeps the aggregate and retries the write with backoff; the round is announced once saved', async () => {
    const { m, join, upload, clock, store, metrics, log } = await setup({ minAvailable: 2, minFit: 2, minCompletion: 2, rounds: 2, batchNorm: 'local' });
    const [a, b] = ['h1', 'h2'].map(join);
    store.failures = 2;
    await upload(a, weights(2, 50), 10);
    await upload(b, weights(4, -50), 30);
    // First write failed: nothing announced, nothing retrained, the phase stays aggregating.
    expect(m.phase).toBe('aggregating');
    expect(m.state.round).toBe(0);
    expect(metrics.checkpointWriteFailures.get()).toBe(1);
    expect(metrics.checkpointPending.get()).toBe(1);
    expect(m.status().checkpoint).toEqual({
      writeFailures: 1,
      pending: { round: 1, failures: 1, lastError: 'ENOSPC: no space left on device', nextRetryAt: new Date(T0 + 2000).toISOString() },
    });
    expect(a.of('status').at(-1)).toMatchObject({ phase: 'aggregating', round: 0 });
    expect(a.of('round-complete')).toHaveLength(0);
    // Every hospital is told: the round's result could not be saved, the next try is in 2 s.
    for (const p of [a, b]) {
      expect(p.of('round-failed')).toEqual([{ type: 'round-failed', round: 1, attempt: 1, received: 2, needed: 2, reason: 'save-failed', nextAttemptInSeconds: 2 }]);
    }
    expect(m.storageOk()).toBe(false);
    expect(log.lines.filter((l) => l.startsWith('ERROR round 1: checkpoint write failed (1 time(s))'))).toHaveLength(1);
    expect(clock.pending()).toEqual([2000]);
    // A hospital that joins meanwhile hears why nothing moves, with the time to the next try.
    await clock.advance(500);
    const late = join('h3');
    expect(late.of('round-failed')).toEqual([{ type: 'round-failed', round: 1, attempt: 1, received: 2, needed: 2, reason: 'save-failed', nextAttemptInSeconds: 1.5 }]);
    // An update for the closed round is late meanwhile.
    await upload(a, weights(1), 10);
    expect(a.lastError()).toBe('late');
    await clock.advance(1500);
    expect(metrics.checkpointWriteFailures.get()).toBe(2);
    expect(m.status().checkpoint.pending).toMatchObject({ failures: 2, nextRetryAt: new Date(clock.t + 4000).toISOString() });
    expect(clock.pending()).toEqual([4000]);
    expect(a.of('round-failed').map((f) => [f.reason, f.nextAttemptInSeconds])).toEqual([
      ['save-failed', 2],
      ['save-failed', 4],
    ]);
    expect(m.storageOk()).toBe(false);
    await clock.advance(4000);
    expect(m.storageOk()).toBe(true);
    // Saved on the third try: the same aggregate, announced now, and round 2 starts.
    expect(store.attempts).toBe(4); // round 0, then three tries of round 1
    expect(store.writes.map((w) => w.round)).toEqual([0, 1]);
    const mean = Math.fround((10 * 2 + 30 * 4) / 40);
    expect(values(store.writes[1].weights)).toEqual([[mean, mean, mean, mean], [0, 0]]); // FedBN: the BN tensor stays round 0's
    expect(values(m.globalWeights)).toEqual(values(store.writes[1].weights));
    expect(m.state.round).toBe(1);
    expect(m.state.history[0]).toMatchObject({ round: 1, participants: 2, examples: 40, attempts: 1, completedAt: new Date(T0).toISOString() });
    expect(store.writes[1].state).toEqual(m.state);
    expect(a.of('round-complete')).toHaveLength(1);
    expect(a.rounds()).toEqual([
      { round: 1, attempt: 1 },
      { round: 2, attempt: 1 },
    ]);
    expect(m.status().checkpoint).toEqual({ writeFailures: 2, pending: null });
    expect(metrics.checkpointPending.get()).toBe(0);
    expect(metrics.checkpointsWritten.get()).toBe(1);
    expect(metrics.roundsFailed.get()).toBe(0);
    expect(log.lines.some((l) => l.includes('round 1 complete') && l.includes('checkpoint written after 2 failed write(s)'))).toBe(true);
  });
});

describe('round machine: a disconnect at every phase', () => {
  it('waiting: the others hear of it; the round starts once minAvailable are connected again', async () => {
    const { m, join } = await setup({ minAvailable: 3, minFit: 2, minCompletion: 2 });
    const a = join('h1');
    const b = join('h2');
    m.onLeave(a);
    expect(m.status().connected).toEqual(['h2']);
    expect(b.of('status').at(-1)).toMatchObject({ phase: 'waiting', connected: 1 });
    join('h3');
    expect(m.phase).toBe('waiting');
    join('h1');
    expect(m.phase).toBe('training');
    expect(m.status().connected).toEqual(['h1', 'h2', 'h3']);
  });

  it('training, before any upload-request, without a reconnect grace: a failure at once (no wait for the deadline)', async () => {
    const { m, join, upload, clock } = await setup({ minAvailable: 3, minFit: 3, minCompletion: 2, rounds: 1, limits: { reconnectGraceSeconds: 0 } });
    const [a, b, c] = ['h1', 'h2', 'h3'].map(join);
    await upload(a, weights(1));
    await upload(b, weights(3));
    expect(m.phase).toBe('training');
    m.onLeave(c);
    await flush();
    expect(m.state.history[0]).toMatchObject({ participants: 2, hospitals: ['h1', 'h2'], seconds: 0 });
    expect(clock.pending()).toEqual([]);
  });

  it('training, queued for a slot: it leaves the queue, the next one is granted', async () => {
    const { m, join, request, update } = await setup({ minAvailable: 3, minFit: 3, minCompletion: 2 });
    const [a, b, c] = ['h1', 'h2', 'h3'].map(join);
    request(a);
    request(b);
    request(c);
    m.onLeave(b);
    update(a, weights(1));
    expect(c.of('upload-grant')).toHaveLength(1);
    expect(b.of('upload-grant')).toHaveLength(0);
  });

  it('training, holding a grant: the slot is freed at once and its expiry timer cleared', async () => {
    const { m, join, request, clock } = await setup({ minAvailable: 3, minFit: 3, minCompletion: 2, limits: { uploadGrantSeconds: 10 } });
    const [a, b] = ['h1', 'h2', 'h3'].map(join);
    request(a);
    request(b);
    expect(clock.pending()).toEqual([10_000, 100_000]);
    m.onLeave(a);
    expect(b.of('upload-grant')).toHaveLength(1);
    expect(clock.pending()).toEqual([10_000, 60_000, 100_000]); // b's grant, a's reconnect grace, the deadline
    await clock.advance(5000);
    expect(a.errors).toHaveLength(0);
  });

  it('aggregating/saving: the round still completes; only those still connected hear of it', async () => {
    const { m, join, upload, clock, store } = await setup({ minAvailable: 2, minFit: 2, minCompletion: 2, rounds: 1 });
    const [a, b] = ['h1', 'h2'].map(join);
    store.failures = 1;
    await upload(a, weights(1));
    await upload(b, weights(3));
    expect(m.phase).toBe('aggregating');
    m.onLeave(a);
    await clock.advance(2000);
    expect(m.phase).toBe('finished');
    expect(m.state.history[0]).toMatchObject({ participants: 2 });
    expect(a.of('round-complete')).toHaveLength(0);
    expect(b.of('round-complete')).toHaveLength(1);
  });

  it('a superseded connection leaving does not remove the live one', async () => {
    const { m, join } = await setup({ minAvailable: 2, minFit: 2, minCompletion: 2 });
    const old = join('h1');
    join('h1');
    m.onLeave(old);
    expect(m.status().connected).toEqual(['h1']);
  });
});

describe('round machine: memory hooks and shutdown', () => {
  it('recycles an update buffer unless the aggregator keeps it, and frees memory around the aggregate', async () => {
    for (const [aggregator, recycledAfterAccept] of [
      [{ type: 'fedavg' as const }, true],
      [{ type: 'median' as const }, false],
    ] as const) {
      const events: string[] = [];
      const memory: MemoryHooks = {
        recycle: () => events.push('recycle'),
        roundClosed: () => events.push('roundClosed'),
        beforeAggregate: async () => void events.push('beforeAggregate'),
        release: () => events.push('release'),
      };
      const { join, upload } = await setup({ minAvailable: 1, minFit: 1, minCompletion: 1, aggregator }, { memory });
      await upload(join('h1'), weights(1));
      expect(events).toEqual([...(recycledAfterAccept ? ['recycle'] : []), 'roundClosed', 'beforeAggregate', 'release', 'release']);
    }
  });

  it('close() stops every timer: deadline, grants, retry, checkpoint retry', async () => {
    const a1 = await setup({ minAvailable: 1, minFit: 1, minCompletion: 1 });
    a1.request(a1.join('h1'));
    expect(a1.clock.pending()).toHaveLength(2);
    a1.m.close();
    await a1.clock.advance(10_000_000);
    expect(a1.peers.get('h1')!.errors).toHaveLength(0);
    expect(a1.peers.get('h1')!.of('round-closed')).toHaveLength(0);

    const a2 = await setup({ minAvailable: 1, minFit: 1, minCompletion: 1 });
    a2.m.onText(a2.join('h1'), { type: 'decline', round: 1, attempt: 1, reason: 'x' });
    expect(a2.clock.pending()).toHaveLength(1);
    a2.m.close();
    await a2.clock.advance(10_000_000);
    expect(a2.peers.get('h1')!.rounds()).toHaveLength(1);

    const a3 = await setup({ minAvailable: 1, minFit: 1, minCompletion: 1 });
    a3.store.failures = 1;
    await a3.upload(a3.join('h1'), weights(1));
    expect(a3.clock.pending()).toHaveLength(1);
    a3.m.close();
    await a3.clock.advance(10_000_000);
    expect(a3.store.writes.map((w) => w.round)).toEqual([0]);
  });
});

describe('round machine: quality tracked during training', () => {
  const probe = (kid: number, features = 'tiny') => ({ kid, kidStd: kid / 10, n: 40, features });
  /** upload-request, then an update whose header carries `quality`. */
  function uploadWithProbe(t: Awaited<ReturnType<typeof setup>>, p: FakePeer, w: WeightSet, examples: number, round: number, quality?: ReturnType<typeof probe>) {
    t.request(p, round, 1);
    const payload = encodeWeights(w);
    t.m.onUpdate(p, { type: 'update', round, attempt: 1, examples, dLoss: 1, gLoss: 1, ...(quality ? { quality } : {}) }, payload, payload.length + 64);
  }

  it('asks for probes on the rounds after every N-th model, records the example-weighted mean for the model measured (entry r: round r − 1), and keeps the best checkpoint', async () => {
    const t = await setup({ rounds: 5, minAvailable: 2, minFit: 2, minCompletion: 2, quality: { everyRounds: 2, features: 'tiny', perClass: 8, seed: 5, subsets: 4 } });
    const [a, b] = ['h1', 'h2'].map(t.join);
    const asked = (round: number) => a.frames.find((f) => f.header.type === 'round' && f.header.round === round)!.header.config as { quality?: unknown };

    // Rounds 1 and 2 measure models 0 and 1: not asked; a probe sent anyway is not counted.
    expect(asked(1).quality).toBeUndefined();
    uploadWithProbe(t, a, weights(1), 10, 1, probe(0.9));
    uploadWithProbe(t, b, weights(1), 30, 1);
    await flush();
    expect(t.m.state.history[0].quality).toBeUndefined();
    expect(t.log.lines).toContain('WARN round 1: the quality probe of h1 is not counted: the round did not ask for a quality probe');
    uploadWithProbe(t, a, weights(2), 10, 2);
    uploadWithProbe(t, b, weights(2), 30, 2);
    await flush();
    expect(t.m.status().quality).toEqual({ everyRounds: 2, features: 'tiny', best: null, latest: null });

    // Round 3 probes model 2 (the global it sends): 0.5 × 10 + 0.1 × 30 over 40 examples.
    expect(asked(3).quality).toEqual({ features: 'tiny', perClass: 8, seed: 5, subsets: 4 });
    uploadWithProbe(t, a, weights(3), 10, 3, probe(0.5));
    uploadWithProbe(t, b, weights(3), 30, 3, probe(0.1));
    await flush();
    const q3 = { round: 2, kid: (0.5 * 10 + 0.1 * 30) / 40, kidStd: (0.05 * 10 + 0.01 * 30) / 40, hospitals: 2, examples: 40, features: 'tiny' };
    expect(t.m.state.history[2].quality!.kid).toBeCloseTo(0.2, 12);
    expect(t.m.state.history[2].quality).toEqual({ ...q3, kid: t.m.state.history[2].quality!.kid, kidStd: t.m.state.history[2].quality!.kidStd });
    expect(t.m.state.history[2].quality!.kidStd).toBeCloseTo(0.02, 12);
    expect(a.of('round-complete').at(-1)).toMatchObject({ round: 3, quality: { round: 2, hospitals: 2, examples: 40, features: 'tiny' } });
    expect(t.store.writes.at(-1)).toMatchObject({ round: 3, keep: [2] });
    expect(t.metrics.qualityBestRound.get()).toBe(2);
    expect(t.metrics.qualityRound.get()).toBe(2);
    expect(t.metrics.qualityKid.get()).toBeCloseTo(0.2, 12);

    // Round 4 does not probe (model 3); round 5 probes model 4, worse than model 2: the best stays round 2.
    expect(asked(4).quality).toBeUndefined();
    uploadWithProbe(t, a, weights(4), 10, 4);
    uploadWithProbe(t, b, weights(4), 30, 4);
    await flush();
    expect(t.store.writes.at(-1)).toMatchObject({ round: 4, keep: [2] });
    expect(asked(5).quality).toBeDefined();
    // h2 probed on other features: not counted; h1 alone makes the figure.
    uploadWithProbe(t, a, weights(5), 10, 5, probe(0.3));
    uploadWithProbe(t, b, weights(5), 30, 5, probe(0.01, 'mobilenet-v2'));
    await flush();
    expect(t.log.lines).toContain('WARN round 5: the quality probe of h2 is not counted: the probe was made with mobilenet-v2 features, the round asked for tiny');
    expect(t.m.state.history[4].quality).toEqual({ round: 4, kid: 0.3, kidStd: 0.03, hospitals: 1, examples: 10, features: 'tiny' });
    expect(t.m.phase).toBe('finished');
    expect(t.store.writes.at(-1)).toMatchObject({ round: 5, keep: [2] });
    expect(t.m.status().quality).toEqual({ everyRounds: 2, features: 'tiny', best: { round: 2, kid: t.m.state.history[2].quality!.kid, features: 'tiny' }, latest: t.m.state.history[4].quality });
    expect(t.metrics.qualityBestRound.get()).toBe(2);
    expect(t.metrics.qualityRound.get()).toBe(4);
    expect(t.metrics.render()).toContain('fedgan_quality_best_round 2');
  });

  it('a resumed server knows the best round from its history (status, metrics, the next checkpoint keeps it)', async () => {
    const store = new MemoryStore();
    const entry = (round: number, kid?: number) => ({
      round,
      participants: 1,
      hospitals: ['h1'],
      examples: 10,
      dLoss: 1,
      gLoss: 1,
      seconds: 1,
      attempts: 1,
      completedAt: new Date(T0).toISOString(),
      ...(kid !== undefined ? { quality: { round: round - 1, kid, kidStd: 0, hospitals: 1, examples: 10, features: 'tiny' } } : {}),
    });
    const saved: FederationState = { round: 3, history: [entry(1), entry(2, 0.4), entry(3, 0.6)] };
    store.saved = { state: saved, bytes: encodeWeights(weights(3), { state: saved }), file: 'round-000003.fgw' };
    const t = await setup({ rounds: 4, minAvailable: 1, minFit: 1, minCompletion: 1, quality: { everyRounds: 1, features: 'tiny' } }, { store });
    expect(t.m.status().quality.best).toEqual({ round: 1, kid: 0.4, features: 'tiny' });
    expect(t.metrics.qualityBestRound.get()).toBe(1);
    expect(t.metrics.qualityRound.get()).toBe(2);
    await t.upload(t.join('h1'), weights(4), 10, 4);
    expect(t.m.state.history[3].quality).toBeUndefined(); // h1 sent no probe
    expect(t.store.writes.at(-1)).toMatchObject({ round: 4, keep: [1] });
  });
});

describe('round machine: attempts that fail fast and explain themselves', () => {
  it('ends the attempt as soon as minCompletion is out of reach (a decline, then a refused update): those still training are stopped, everyone is told why and when the next attempt starts', async () => {
    const { m, join, request, update, clock, peers, metrics } = await setup({ minAvailable: 4, minFit: 3, minCompletion: 2, fraction: 0.5, examples: { min: 1, max: 100 } });
    ['h1', 'h2', 'h3', 'h4'].map(join);
    const sampled = m.status().sampled;
    expect(sampled).toHaveLength(3);
    const [s1, s2, s3] = sampled.map((h) => peers.get(h)!);
    const idle = peers.get(['h1', 'h2', 'h3', 'h4'].find((h) => !sampled.includes(h))!)!;
    await clock.advance(5000);
    m.onText(s1, { type: 'decline', round: 1, attempt: 1, reason: 'no GPU' });
    expect(m.phase).toBe('training'); // 2 updates are still possible
    request(s2);
    update(s2, weights(1), 5000); // refused (examples): now at most 1 update can arrive
    expect(s2.lastError()).toBe('examples');
    expect(m.phase).toBe('waiting');
    expect(s3.of('round-closed')).toEqual([{ type: 'round-closed', round: 1, attempt: 1, reason: 'aborted' }]);
    for (const p of [s1, s2, s3, idle]) {
      expect(p.of('round-failed')).toEqual([{ type: 'round-failed', round: 1, attempt: 1, received: 0, needed: 2, reason: 'unreachable', nextAttemptInSeconds: 2 }]);
    }
    expect(clock.pending()).toEqual([2000]); // only the retry: the deadline timer is gone
    expect(metrics.roundsFailed.get()).toBe(1);
    // The stopped hospital's late upload is refused as late.
    request(s3);
    expect(s3.lastError()).toBe('late');
  });

  it('a sampled hospital that leaves and does not come back within the reconnect grace ends the attempt then, not at the deadline', async () => {
    const { m, join, clock } = await setup({ minAvailable: 2, minFit: 2, minCompletion: 2, roundDeadlineSeconds: 300, limits: { reconnectGraceSeconds: 30 } });
    const [a, b] = ['h1', 'h2'].map(join);
    await clock.advance(10_000);
    m.onLeave(b);
    expect(clock.pending()).toEqual([30_000, 290_000]); // b's grace, the deadline
    await clock.advance(29_999);
    expect(m.phase).toBe('training');
    expect(a.of('round-failed')).toHaveLength(0);
    await clock.advance(1);
    expect(m.phase).toBe('waiting');
    expect(a.of('round-closed')).toEqual([{ type: 'round-closed', round: 1, attempt: 1, reason: 'aborted' }]);
    expect(a.of('round-failed')).toEqual([{ type: 'round-failed', round: 1, attempt: 1, received: 0, needed: 2, reason: 'unreachable', nextAttemptInSeconds: 2 }]);
  });

  it('a sampled hospital that reconnects within the grace gets the same attempt again (resumed, with the time left) and the round completes with it', async () => {
    const { m, join, clock, upload, store } = await setup({ minAvailable: 2, minFit: 2, minCompletion: 2, rounds: 1, limits: { reconnectGraceSeconds: 30 } });
    const [a, b] = ['h1', 'h2'].map(join);
    const first = b.frames[0].header as { config: Record<string, unknown> };
    await clock.advance(10_000);
    m.onLeave(b);
    expect(m.status()).toMatchObject({ connected: ['h1'], sampled: ['h1', 'h2'], reconnecting: ['h2'] });
    await clock.advance(10_000);
    const back = join('h2');
    expect(back.frames).toHaveLength(1);
    expect(back.frames[0].header).toEqual({ type: 'round', round: 1, attempt: 1, resumed: true, config: { ...first.config, deadlineSeconds: 80 } });
    expect(values(back.frames[0].weights)).toEqual(values(weights(0)));
    // The same payload as every round frame: the checkpoint without the federation state (no hospital names).
    expect(back.frames[0].meta).toEqual(a.frames[0].meta);
    expect(back.frames[0].meta).not.toHaveProperty('state');
    expect(a.frames).toHaveLength(1); // the other hospital is not disturbed
    expect(clock.pending()).toEqual([80_000]); // the grace timer is gone, the deadline stays
    expect(m.status().reconnecting).toEqual([]);
    await clock.advance(40_000); // past the old grace: nothing happens
    expect(m.phase).toBe('training');
    await upload(a, weights(1));
    await upload(back, weights(3));
    expect(m.phase).toBe('finished');
    expect(store.writes.at(-1)!.state.history[0]).toMatchObject({ round: 1, attempts: 1, participants: 2, hospitals: ['h1', 'h2'] });
    expect([...a.texts, ...back.texts].filter((t) => t.type === 'round-failed')).toEqual([]);
  });

  it('a grant never runs past the deadline, and while another hospital waits the holder keeps only its share of the time left', async () => {
    const { m, join, request, update, clock, fed } = await setup({ minAvailable: 3, minFit: 3, minCompletion: 2, rounds: 1, roundDeadlineSeconds: 300, limits: { uploadGrantSeconds: 120 } });
    expect(m.welcome().limits).toEqual({ maxConcurrentUploads: 1, uploadGrantSeconds: 120, reconnectGraceSeconds: 60 });
    expect(fed.limits.maxConcurrentUploads).toBe(1);
    const [a, b, c] = ['h1', 'h2', 'h3'].map(join);
    await clock.advance(200_000);
    request(a); // 100 s to the deadline: the grant lasts 100 s, not 120
    expect(clock.pending()).toEqual([100_000, 100_000]);
    await clock.advance(10_000);
    request(b); // b waits: a keeps its share, (300 − 210) / 2 = 45 s from now
    expect(b.of('upload-grant')).toHaveLength(0);
    expect(clock.pending()).toEqual([45_000, 90_000]);
    await clock.advance(45_000);
    expect(a.errors.at(-1)).toMatchObject({ code: 'late', message: 'no update within 45s of the upload grant: the grant expired and the slot is freed' });
    expect(b.of('upload-grant')).toHaveLength(1);
    await clock.advance(5000);
    update(b, weights(2));
    expect(b.of('accepted')).toHaveLength(1);
    request(c);
    update(c, weights(4));
    await flush();
    expect(m.phase).toBe('finished');
    expect(m.state.history[0]).toMatchObject({ participants: 2, hospitals: ['h2', 'h3'] });
  });
});

describe('round machine: round-complete losses are always finite numbers', () => {
  it('losses of ±1e308 (finite, so accepted) give finite means in round-complete, never null on the wire', async () => {
    const { m, join, update, request, clock } = await setup({ minAvailable: 2, minFit: 2, minCompletion: 2, rounds: 1 });
    const [a, b] = ['h1', 'h2'].map(join);
    request(a);
    update(a, weights(1), 10, 1, 1, { dLoss: 1e308, gLoss: -1e308 });
    request(b);
    update(b, weights(1), 10, 1, 1, { dLoss: 1e308, gLoss: -1e308 });
    await clock.advance(0);
    const [done] = a.of('round-complete');
    expect(Number.isFinite(done.dLoss) && Number.isFinite(done.gLoss)).toBe(true);
    // What the transport sends: JSON, where a non-finite number would become null.
    expect(JSON.parse(JSON.stringify(done))).toMatchObject({ dLoss: 1e6, gLoss: -1e6 });
    expect(m.state.history[0]).toMatchObject({ dLoss: 1e6, gLoss: -1e6 });
  });
});

describe('round machine: operator control (the console, fake clock)', () => {
  it('pause lets the round in flight finish and starts no other; resume starts the next at once', async () => {
    const { m, join, upload, clock } = await setup({ rounds: 3, minAvailable: 2, minFit: 2, minCompletion: 2 });
    const a = join('h1');
    const b = join('h2');
    expect(m.phase).toBe('training');
    m.pause();
    expect(m.control).toEqual({ paused: true, stopped: false });
    await upload(a, weights(1));
    await upload(b, weights(3));
    expect(m.state.round).toBe(1);
    expect(m.phase).toBe('waiting');
    await clock.advance(3600_000);
    expect(a.rounds()).toEqual([{ round: 1, attempt: 1 }]);
    expect(clock.pending()).toEqual([]);
    m.resume();
    expect(m.phase).toBe('training');
    expect(a.rounds()).toEqual([
      { round: 1, attempt: 1 },
      { round: 2, attempt: 1 },
    ]);
  });

  it('stop ends the attempt in flight now (round-closed aborted, its update dropped, not a failed attempt); resume repeats it as the next attempt', async () => {
    const { m, join, upload, request, update, clock, metrics } = await setup({ rounds: 1, minAvailable: 2, minFit: 2, minCompletion: 2 });
    const events: string[] = [];
    m.onEvent((e) => e.type !== 'changed' && events.push(e.type === 'round-failed' ? `failed ${e.reason} ${JSON.stringify(e.failures)}` : e.type));
    const a = join('h1');
    const b = join('h2');
    await upload(a, weights(1));
    m.stop();
    expect(m.phase).toBe('waiting');
    expect(m.status().attempt).toBeNull();
    expect(b.of('round-closed')).toEqual([{ type: 'round-closed', round: 1, attempt: 1, reason: 'aborted' }]);
    expect(a.of('round-closed')).toEqual([]);
    expect(clock.pending()).toEqual([]); // no deadline, no retry
    expect(metrics.roundsFailed.get()).toBe(0);
    expect(m.hospitalActivity('h2')?.failures).toEqual([{ round: 1, attempt: 1, reason: 'stopped', at: T0 }]);
    // The update of h2 for the stopped attempt is late.
    request(b);
    update(b, weights(3));
    expect(b.lastError()).toBe('late');
    m.resume();
    expect(a.rounds().at(-1)).toEqual({ round: 1, attempt: 2 });
    await upload(a, weights(1), 10, 1, 2);
    await upload(b, weights(3), 10, 1, 2);
    expect(m.phase).toBe('finished');
    expect(m.state.history[0]).toMatchObject({ attempts: 2, participants: 2 });
    expect(events).toEqual(['joined', 'joined', 'round-started', 'failed stopped by the operator {"h2":"stopped"}', 'round-started', 'round-aggregated']);
  });

  it('round settings wait for the round in flight and apply from the next attempt; the number of rounds applies at once', async () => {
    const { m, join, upload, fed } = await setup({ rounds: 2, minAvailable: 2, minFit: 2, minCompletion: 2, localSteps: 5 });
    const a = join('h1');
    const b = join('h2');
    m.setNextConfig(parseFedConfig({ ...fed, localSteps: 9, minCompletion: 1 }));
    expect(m.config.effective.localSteps).toBe(5);
    expect(m.config.pending?.localSteps).toBe(9);
    // The round in flight keeps minCompletion 2: one update does not complete it.
    await upload(a, weights(1));
    expect(m.state.round).toBe(0);
    await upload(b, weights(3));
    expect(m.state.round).toBe(1);
    expect(m.config).toMatchObject({ effective: { localSteps: 9, minCompletion: 1, rounds: 2 }, pending: null });
    const cfg = (p: typeof a) => (p.frames.at(-1)!.header as { config: { localSteps: number } }).config.localSteps;
    expect(cfg(a)).toBe(9);
    expect(() => m.setTotalRounds(1)).toThrow('must be a whole number of at least 2 (rounds completed and the round in flight)');
    m.setTotalRounds(4);
    expect(m.status().rounds).toBe(4);
    await upload(a, weights(1), 10, 2, 1);
    m.onText(b, { type: 'decline', round: 2, attempt: 1, reason: 'busy' });
    await flush();
    // minCompletion 1 now: one update completes round 2 (with 2 the attempt would have failed).
    expect(m.state.history[1]).toMatchObject({ round: 2, participants: 1, hospitals: ['h1'] });
    expect(m.phase).toBe('training');
  });

  it('a lower minAvailable set while waiting starts a round at once with the hospitals connected', async () => {
    const { m, join, fed } = await setup({ rounds: 2, minAvailable: 3, minFit: 2, minCompletion: 2 });
    const a = join('h1');
    join('h2');
    expect(m.phase).toBe('waiting');
    m.setNextConfig(parseFedConfig({ ...fed, minAvailable: 2 }));
    expect(m.phase).toBe('training');
    expect(a.rounds()).toEqual([{ round: 1, attempt: 1 }]);
    expect(a.of('status').at(-1)).toMatchObject({ minAvailable: 2 });
  });

  it('extending a finished federation goes back to waiting and starts the next round with the hospitals still connected', async () => {
    const { m, join, upload } = await setup({ rounds: 1, minAvailable: 1, minFit: 1, minCompletion: 1 });
    const a = join('h1');
    await upload(a, weights(1));
    expect(m.phase).toBe('finished');
    m.setTotalRounds(2);
    expect(a.rounds().at(-1)).toEqual({ round: 2, attempt: 1 });
    expect(m.phase).toBe('training');
  });

  it('a revoked hospital is out of the round at once (no reconnect grace): the round goes on, or fails when minCompletion is out of reach', async () => {
    const { m, join, upload, clock } = await setup({ rounds: 2, minAvailable: 3, minFit: 3, minCompletion: 2, limits: { reconnectGraceSeconds: 60 } });
    const a = join('h1');
    const b = join('h2');
    join('h3');
    m.revoke('h3');
    expect(m.status().connected).toEqual(['h1', 'h2']);
    expect(clock.pending()).toEqual([100_000]); // only the deadline: no grace timer
    await upload(a, weights(1));
    await upload(b, weights(3));
    expect(m.state.history[0]).toMatchObject({ round: 1, hospitals: ['h1', 'h2'] });
    expect(m.hospitalActivity('h3')?.failures[0]).toMatchObject({ round: 1, attempt: 1, reason: 'revoked' });
    // Round 2 needs 3 connected: h3 joins again (say, rotated), then h2 is revoked and h3 leaves: 1 < minCompletion.
    const c = join('h3');
    expect(c.rounds()).toEqual([{ round: 2, attempt: 1 }]);
    m.revoke('h2');
    m.revoke('h3');
    expect(m.phase).toBe('waiting');
    expect(a.of('round-failed').at(-1)).toMatchObject({ round: 2, attempt: 1, received: 0, needed: 2, reason: 'unreachable' });
  });

  it('records the last accepted update of each hospital (time, examples declared) for the console', async () => {
    const { m, join, upload, clock } = await setup({ rounds: 2, minAvailable: 1, minFit: 1, minCompletion: 1 });
    const a = join('h1');
    await clock.advance(1500);
    await upload(a, weights(1), 42);
    expect(m.hospitalActivity('h1')).toEqual({ lastUpdateAt: T0 + 1500, examplesDeclared: 42, epsilon: null, failures: [] });
    expect(m.status().epsilon).toEqual({});
    // With differential privacy the update reports the ε spent: the console and the operator's status show the last one.
    m.onText(a, { type: 'upload-request', round: 2, attempt: 1 });
    const payload = encodeWeights(weights(2));
    m.onUpdate(a, { type: 'update', round: 2, attempt: 1, examples: 40, dLoss: 0, gLoss: 1, privacy: { epsilon: 1.75, delta: 1e-5 } }, payload, payload.length + 64);
    await flush();
    expect(m.hospitalActivity('h1')).toMatchObject({ examplesDeclared: 40, epsilon: 1.75 });
    expect(m.status().epsilon).toEqual({ h1: 1.75 });
  });
});
