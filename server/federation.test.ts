import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { encodeWeights } from '../shared/codec/weightsCodec.ts';
import { sampleClients } from '../shared/fed/sampling.ts';
import { FederationClient, FederationClientError, type ClientEvent, type TrainFn } from '../shared/protocol/federationClient.ts';
import { encodeFrame } from '../shared/protocol/frames.ts';
import { CLOSE } from '../shared/protocol/messages.ts';
import type { WeightSet } from '../shared/weights.ts';
import {
  constantTrainer,
  getJson,
  getMetrics,
  nodeClient,
  RawPeer,
  startTestServer,
  tinyWeights,
  TINY_FINGERPRINT,
  tokenOf,
  until,
  type TestServer,
} from './testing/federation.ts';

let server: TestServer | undefined;
const clients: FederationClient[] = [];
const raws: RawPeer[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  for (const r of raws.splice(0)) r.close();
  await server?.cleanup();
  server = undefined;
});

function client(s: TestServer, hospital: string, train: TrainFn, opts = {}): FederationClient {
  const c = nodeClient(s, hospital, train, opts);
  clients.push(c);
  return c;
}
function raw(s: TestServer): RawPeer {
  const r = new RawPeer(s.wsUrl);
  raws.push(r);
  return r;
}
const valueOf = (base: number) => (t: number, i: number) => base + t * 0.25 + i * 0.125;

/** Upload `weights` from a raw peer that already received the round frame. */
async function rawUpload(p: RawPeer, round: number, attempt: number, weights: WeightSet | Uint8Array, examples = 10, from = 0) {
  p.send({ type: 'upload-request', round, attempt });
  await p.waitText((m) => m.type === 'upload-grant' || m.type === 'error', 5000, from);
  const payload = weights instanceof Uint8Array ? weights : encodeWeights(weights);
  p.send(encodeFrame({ type: 'update', round, attempt, examples, dLoss: 1, gLoss: 1 }, payload));
}

describe('federation server over real sockets', () => {
  it('runs a full round: samples a fraction of the hospitals and aggregates their updates weighted by examples', async () => {
    server = await startTestServer({ rounds: 1, fraction: 0.5, minFit: 2, minAvailable: 4, minCompletion: 2, seed: 11 });
    const spec: Record<string, { base: number; examples: number; d: number; g: number }> = {
      h1: { base: 1, examples: 10, d: 0.5, g: 1.5 },
      h2: { base: 2, examples: 30, d: 0.7, g: 1.1 },
      h3: { base: 4, examples: 20, d: 0.9, g: 1.3 },
      h4: { base: 8, examples: 40, d: 0.2, g: 2.0 },
    };
    const trained: string[] = [];
    const runs = Object.entries(spec).map(([h, s]) =>
      client(server!, h, async (global, cfg) => {
        trained.push(h);
        expect(global.fingerprint).toBe(TINY_FINGERPRINT);
        expect([...global.tensors[0].data]).toEqual([0, 0, 0, 0, 0, 0]);
        expect(cfg).toMatchObject({ round: 1, attempt: 1, rounds: 1, ganType: 'acgan', localSteps: 200, imageSize: 16, batchNorm: 'average' });
        expect(cfg.learningRate.generator).toBeCloseTo(2e-4);
        return { weights: tinyWeights(valueOf(s.base)), examples: s.examples, dLoss: s.d, gLoss: s.g };
      }).run(),
    );
    const results = await Promise.all(runs);
    expect(results.every((r) => r.rounds === 1)).toBe(true);

    const expectedSample = sampleClients(['h1', 'h2', 'h3', 'h4'], { fraction: 0.5, minCount: 2, seed: 11, round: 1 });
    expect(expectedSample).toHaveLength(2);
    expect(trained.sort()).toEqual(expectedSample);

    const status = await getJson(`${server.url}/api/status`);
    expect(status.round).toBe(1);
    expect(status.phase).toBe('finished');
    const total = expectedSample.reduce((n, h) => n + spec[h].examples, 0);
    const entry = status.history[0];
    expect(entry).toMatchObject({ round: 1, participants: 2, hospitals: expectedSample, examples: total, attempts: 1 });
    expect(entry.dLoss).toBeCloseTo(expectedSample.reduce((s, h) => s + spec[h].examples * spec[h].d, 0) / total, 10);
    expect(entry.gLoss).toBeCloseTo(expectedSample.reduce((s, h) => s + spec[h].examples * spec[h].g, 0) / total, 10);

    // The new global model, coordinate by coordinate: Σ n_k w_k / Σ n_k, rounded once to float32.
    const global = server.federation.globalWeights;
    global.tensors.forEach((t, ti) => {
      for (let i = 0; i < t.data.length; i++) {
        const exact = expectedSample.reduce((s, h) => s + spec[h].examples * Math.fround(valueOf(spec[h].base)(ti, i)), 0) / total;
        expect(t.data[i]).toBe(Math.fround(exact));
      }
    });
    // Persisted before being announced.
    expect(readdirSync(join(server.stateDir, 'checkpoints')).sort()).toEqual(['round-000000.fgw', 'round-000001.fgw']);
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_rounds_completed_total')).toBe(1);
    expect(m.get('fedgan_updates_accepted_total')).toBe(2);
    expect(m.get('fedgan_bytes_received_total')).toBeGreaterThan(0);
    expect(m.get('fedgan_bytes_sent_total')).toBeGreaterThan(0);
    expect(m.get('fedgan_aggregation_seconds_total')).toBeGreaterThan(0);
  });

  it('runs several rounds, serves the global model, and keeps the last K checkpoints', async () => {
    server = await startTestServer({ rounds: 3, minFit: 2, minAvailable: 2, minCompletion: 2, keepCheckpoints: 2 });
    let seen = 0;
    const train: TrainFn = async (global) => {
      seen = Math.max(seen, global.tensors[0].data[0]);
      return { weights: tinyWeights(global.tensors[0].data[0] + 1), examples: 5, dLoss: 1, gLoss: 1 };
    };
    const a = client(server, 'h1', train);
    const b = client(server, 'h2', train, { stopWhenFinished: false });
    const events: ClientEvent['type'][] = [];
    b.on((e) => events.push(e.type));
    void b.run();
    const [ra] = await Promise.all([a.run(), until(() => events.includes('finished'), 10_000)]);
    expect(ra.rounds).toBe(3);
    expect(seen).toBe(2); // round 3 started from the result of round 2
    const g = await b.fetchGlobal();
    expect(g.round).toBe(3);
    expect([...g.weights.tensors[0].data]).toEqual([3, 3, 3, 3, 3, 3]);
    expect(readdirSync(join(server.stateDir, 'checkpoints')).sort()).toEqual(['round-000002.fgw', 'round-000003.fgw']);
    expect(events).toEqual(expect.arrayContaining(['connected', 'round-start', 'uploading', 'accepted', 'round-complete']));
    const status = await getJson(`${server.url}/api/status`);
    expect(status.history.map((h: { round: number }) => h.round)).toEqual([1, 2, 3]);
  });

  it('closes the round at the deadline without the straggler, and refuses its late update clearly', async () => {
    server = await startTestServer({ rounds: 2, minFit: 3, minAvailable: 3, minCompletion: 2, roundDeadlineSeconds: 1.5 });
    const straggler = raw(server);
    await straggler.hello('h3');
    const t0 = Date.now();
    const runs = [client(server, 'h1', constantTrainer(1, 10)), client(server, 'h2', constantTrainer(3, 10))];
    runs.forEach((c) => void c.run());
    const frame = await straggler.waitBinary('round');
    expect(frame.header).toMatchObject({ round: 1, attempt: 1 });
    const closed = await straggler.waitText((m) => m.type === 'round-closed');
    expect(closed).toMatchObject({ round: 1, attempt: 1, reason: 'deadline' });
    const done = await straggler.waitText((m) => m.type === 'round-complete');
    expect(done).toMatchObject({ round: 1, participants: 2 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    const before = straggler.messages.length;
    await rawUpload(straggler, 1, 1, tinyWeights(100), 10, before);
    const err = await straggler.waitText((m) => m.type === 'error', 5000, before);
    expect(err).toMatchObject({ code: 'late', round: 1, attempt: 1 });
    expect([...server.federation.globalWeights.tensors[0].data]).toEqual([2, 2, 2, 2, 2, 2]);
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_rejected_updates_total{reason="late"}')).toBeGreaterThanOrEqual(1);
  });

  it('counts a disconnect mid-round as a failure once its reconnect grace is over, instead of waiting for the deadline', async () => {
    server = await startTestServer({ rounds: 1, minFit: 3, minAvailable: 3, minCompletion: 2, roundDeadlineSeconds: 60, limits: { reconnectGraceSeconds: 0.5 } });
    const quitter = raw(server);
    await quitter.hello('h3');
    const runs = [client(server, 'h1', constantTrainer(1, 10)).run(), client(server, 'h2', constantTrainer(3, 10)).run()];
    await quitter.waitBinary('round');
    quitter.close();
    const t0 = Date.now();
    await Promise.all(runs);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(server.federation.state.history[0]).toMatchObject({ participants: 2, hospitals: ['h1', 'h2'] });
  });

  it('repeats a round when fewer than minCompletion updates arrive', async () => {
    server = await startTestServer({ rounds: 1, minFit: 2, minAvailable: 2, minCompletion: 2 });
    let attempts = 0;
    const flaky: TrainFn = async () => {
      attempts++;
      if (attempts === 1) throw new Error('GPU lost');
      return { weights: tinyWeights(5), examples: 10, dLoss: 1, gLoss: 1 };
    };
    const events: ClientEvent[] = [];
    const b = client(server, 'h2', flaky);
    b.on((e) => events.push(e));
    await Promise.all([client(server, 'h1', constantTrainer(1, 10)).run(), b.run()]);
    expect(events.find((e) => e.type === 'train-error')).toMatchObject({ round: 1, attempt: 1, error: 'GPU lost' });
    // h2's decline made 2 updates impossible: the attempt ended at once, h1 was told to stop.
    expect(events.find((e) => e.type === 'round-failed')).toMatchObject({ message: { round: 1, attempt: 1, received: 0, needed: 2, reason: 'unreachable', nextAttemptInSeconds: 0.02 } });
    expect(server.federation.state.history[0]).toMatchObject({ round: 1, attempts: 2, participants: 2 });
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_round_attempts_failed_total')).toBe(1);
  });

  it('refuses unknown tokens, foreign protocol versions, and a second client on the same token', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 2 });
    const bad = new FederationClient({ ...clientOpts(server), token: 'not-a-valid-token-at-all' });
    clients.push(bad);
    const err = await bad.run().catch((e) => e);
    expect(err).toBeInstanceOf(FederationClientError);
    expect(err.code).toBe(CLOSE.unauthorized);
    expect(bad.state).toBe('failed');

    const p = raw(server);
    await p.opened;
    p.send({ type: 'hello', protocols: [99], token: tokenOf('h1'), clientId: 'x' });
    expect(await p.waitText((m) => m.type === 'error')).toMatchObject({ code: 'protocol-version' });
    expect((await p.waitClose()).code).toBe(CLOSE.unsupportedProtocol);

    const first = raw(server);
    await first.hello('h1');
    const second = raw(server);
    await second.opened;
    second.send({ type: 'hello', protocols: [2], token: tokenOf('h1'), clientId: 'another-install' });
    expect(await second.waitText((m) => m.type === 'error')).toMatchObject({ code: 'token-in-use' });
    expect((await second.waitClose()).code).toBe(CLOSE.tokenInUse);
    // The same client id reconnecting replaces its old (maybe half-dead) connection.
    const again = raw(server);
    await again.hello('h1');
    expect((await first.waitClose()).code).toBe(CLOSE.superseded);

    const noHello = raw(server);
    await noHello.opened;
    noHello.send(new Uint8Array([1, 2, 3]));
    expect((await noHello.waitClose()).code).toBe(CLOSE.badHello);
    // Before a hello nothing large is even buffered: a 1 MB frame closes the connection (1009).
    const big = raw(server);
    await big.opened;
    big.send(new Uint8Array(1 << 20));
    expect((await big.waitClose()).code).toBe(1009);
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_refusals_total{reason="unauthorized"}')).toBe(1);
    expect(m.get('fedgan_refusals_total{reason="protocol-version"}')).toBe(1);
    expect(m.get('fedgan_refusals_total{reason="token-in-use"}')).toBe(1);
    expect(server.logLines.some((l) => l.includes('unknown token'))).toBe(true);
    expect(server.logLines.join('\n')).not.toContain(tokenOf('h1'));
  });

  it('validates every update: NaN, fingerprint, shapes, example count and norm bound, each refused to its sender only', async () => {
    server = await startTestServer({ rounds: 1, minFit: 6, minAvailable: 6, minCompletion: 1, maxUpdateNorm: 10, examples: { min: 1, max: 1000 } });
    const peers = await Promise.all(
      ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map(async (h) => {
        const p = raw(server!);
        await p.hello(h);
        return p;
      }),
    );
    await Promise.all(peers.map((p) => p.waitBinary('round')));
    const nan = tinyWeights(1);
    nan.tensors[1].data[2] = NaN;
    const otherShape: WeightSet = { fingerprint: TINY_FINGERPRINT, tensors: tinyWeights(1).tensors.map((t, i) => (i === 2 ? { ...t, shape: [1, 2] } : t)) };
    const cases: [WeightSet, number, string | null][] = [
      [tinyWeights(1), 10, null],
      [nan, 10, 'non-finite'],
      [{ ...tinyWeights(1), fingerprint: 'ffffffffffffffff' }, 10, 'fingerprint'],
      [otherShape, 10, 'shape'],
      [tinyWeights(1), 5000, 'examples'],
      [tinyWeights(100), 10, 'norm'],
    ];
    for (let i = 0; i < cases.length; i++) {
      const [w, ex] = cases[i];
      await rawUpload(peers[i], 1, 1, w, ex);
    }
    for (let i = 0; i < cases.length; i++) {
      const want = cases[i][2];
      if (want === null) expect(await peers[i].waitText((m) => m.type === 'accepted')).toMatchObject({ round: 1, attempt: 1 });
      else expect(await peers[i].waitText((m) => m.type === 'error')).toMatchObject({ code: want, round: 1, attempt: 1 });
    }
    await until(() => server!.federation.state.round === 1, 5000, 'round 1');
    expect(server.federation.state.history[0]).toMatchObject({ participants: 1, hospitals: ['h1'] });
    // Each refusal went to its sender only.
    for (let i = 0; i < cases.length; i++) {
      const errors = peers[i].messages.filter((m) => m.text?.type === 'error');
      expect(errors).toHaveLength(cases[i][2] ? 1 : 0);
    }
    const m = await getMetrics(`${server.url}/metrics`);
    for (const reason of ['non-finite', 'fingerprint', 'shape', 'examples', 'norm']) {
      expect(m.get(`fedgan_rejected_updates_total{reason="${reason}"}`)).toBe(1);
    }
  });

  it('refuses out-of-protocol messages with precise codes and keeps serving', async () => {
    server = await startTestServer({ rounds: 1, minFit: 2, minAvailable: 3, fraction: 0.1, minCompletion: 2, seed: 3, limits: { frameMarginBytes: 1024 } });
    const peers = await Promise.all(
      ['h1', 'h2', 'h3'].map(async (h) => {
        const p = raw(server!);
        await p.hello(h);
        return p;
      }),
    );
    const sampled = sampleClients(['h1', 'h2', 'h3'], { fraction: 0.1, minCount: 2, seed: 3, round: 1 });
    const [inA] = sampled.map((h) => peers[['h1', 'h2', 'h3'].indexOf(h)]);
    const out = peers[['h1', 'h2', 'h3'].findIndex((h) => !sampled.includes(h))];
    await inA.waitBinary('round');
    const expectError = async (p: RawPeer, send: () => void, code: string) => {
      const from = p.messages.length;
      send();
      expect(await p.waitText((m) => m.type === 'error', 5000, from)).toMatchObject({ code });
    };
    await expectError(out, () => out.send({ type: 'upload-request', round: 1, attempt: 1 }), 'not-sampled');
    await expectError(inA, () => inA.send({ type: 'upload-request', round: 7, attempt: 1 }), 'wrong-round');
    await expectError(inA, () => inA.send({ type: 'upload-request', round: 0, attempt: 1 }), 'late');
    await expectError(inA, () => inA.send(encodeFrame({ type: 'update', round: 1, attempt: 1, examples: 3, dLoss: 1, gLoss: 1 }, encodeWeights(tinyWeights(1)))), 'no-upload-slot');
    await expectError(inA, () => inA.send({ type: 'teleport' }), 'unknown-type');
    await expectError(inA, () => inA.send('{not json'), 'bad-frame');
    await expectError(inA, () => inA.send({ type: 'progress', round: 1 }), 'bad-message');
    await expectError(inA, () => inA.send(new Uint8Array([9, 9, 9, 9, 9, 9, 9, 9, 9])), 'bad-frame');
    await expectError(inA, () => inA.send(encodeFrame({ type: 'round' }, new Uint8Array(0))), 'unknown-type');
    // A frame above the limit (model + margin) is refused but the connection stays…
    const limit = server.transport.maxFrameBytes;
    await expectError(inA, () => inA.send(new Uint8Array(limit + 1)), 'frame-too-large');
    // …and the hospital can still take part.
    await rawUpload(inA, 1, 1, tinyWeights(2), 10, inA.messages.length);
    await inA.waitText((m) => m.type === 'accepted');
    await expectError(inA, () => inA.send({ type: 'upload-request', round: 1, attempt: 1 }), 'duplicate');
    // A frame far above the limit is not even buffered: ws closes the connection with 1009.
    out.send(new Uint8Array(2 * limit + (1 << 20) + 16));
    expect((await out.waitClose()).code).toBe(1009);
    const m = await getMetrics(`${server.url}/metrics`);
    for (const reason of ['not-sampled', 'wrong-round', 'late', 'no-upload-slot', 'unknown-type', 'bad-frame', 'bad-message', 'frame-too-large', 'duplicate']) {
      expect(m.get(`fedgan_refusals_total{reason="${reason}"}`), reason).toBeGreaterThanOrEqual(1);
    }
  });

  it('aggregates with the coordinate-wise median and the trimmed mean', async () => {
    for (const [aggregator, expected] of [
      [{ type: 'median' }, 3],
      [{ type: 'trimmed-mean', beta: 0.2 }, 3],
      [{ type: 'fedavg' }, 22],
    ] as const) {
      server = await startTestServer({ rounds: 1, minFit: 5, minAvailable: 5, minCompletion: 5, aggregator });
      const values = [1, 2, 3, 4, 100];
      await Promise.all(values.map((v, i) => client(server!, `h${i + 1}`, constantTrainer(v, 10)).run()));
      for (const t of server.federation.globalWeights.tensors) expect([...t.data].every((x) => x === expected)).toBe(true);
      await server.cleanup();
      server = undefined;
    }
  });

  it('keeps batch-norm weights out of the average with batchNorm: local (FedBN)', async () => {
    server = await startTestServer({ rounds: 1, minFit: 2, minAvailable: 2, minCompletion: 2, batchNorm: 'local' });
    await Promise.all([client(server, 'h1', constantTrainer(2, 10)).run(), client(server, 'h2', constantTrainer(4, 10)).run()]);
    const g = server.federation.globalWeights;
    expect([...g.tensors[0].data]).toEqual([3, 3, 3, 3, 3, 3]);
    expect([...g.tensors[2].data]).toEqual([0, 0]); // d/bn1/gamma: still the initial value
  });
});

function clientOpts(s: TestServer) {
  return {
    url: s.wsUrl,
    token: tokenOf('h1'),
    train: constantTrainer(1, 1),
    createSocket: (url: string) => new WebSocket(url),
  };
}

describe('rounds that fail fast and explain themselves (real sockets)', () => {
  /** A train function that never finishes on its own: it ends when the round is aborted. */
  const untilAborted: TrainFn = (_g, _c, _p, signal) => new Promise((_res, rej) => signal.addEventListener('abort', () => rej(new Error('aborted'))));

  it('welcome carries the upload-slot and reconnect limits', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 2, limits: { maxConcurrentUploads: 2, uploadGrantSeconds: 45, reconnectGraceSeconds: 7 } });
    const p = raw(server);
    const w = (await p.hello('h1')) as { limits: Record<string, number>; protocol: number };
    expect(w.limits).toMatchObject({ maxConcurrentUploads: 2, uploadGrantSeconds: 45, reconnectGraceSeconds: 7, heartbeatSeconds: 15 });
    expect(w.protocol).toBe(2); // the raw peer offers only version 2: still served, the new fields are extra
    const c = client(server, 'h2', constantTrainer(1, 1));
    const connected = new Promise<ClientEvent>((res) => c.on((e) => e.type === 'connected' && res(e)));
    void c.run();
    expect(await connected).toMatchObject({ welcome: { protocol: 3, limits: { maxConcurrentUploads: 2, uploadGrantSeconds: 45, reconnectGraceSeconds: 7 } } });
  });

  it('ends the attempt as soon as its minimum is out of reach: the hospital still training is stopped and both are told why', async () => {
    server = await startTestServer({ rounds: 1, minFit: 2, minAvailable: 2, minCompletion: 2, roundDeadlineSeconds: 60, retry: { maxFailedAttempts: 1 } });
    const events: ClientEvent[] = [];
    const a = client(server, 'h1', untilAborted);
    a.on((e) => events.push(e));
    void a.run();
    const quitter = raw(server);
    await quitter.hello('h2');
    await quitter.waitBinary('round');
    const t0 = Date.now();
    quitter.send({ type: 'decline', round: 1, attempt: 1, reason: 'out of memory' });
    const failed = await quitter.waitText((m) => m.type === 'round-failed');
    expect(Date.now() - t0).toBeLessThan(5000); // not the 60 s deadline
    // maxFailedAttempts 1: no next attempt is scheduled until a hospital joins.
    expect(failed).toEqual({ type: 'round-failed', round: 1, attempt: 1, received: 0, needed: 2, reason: 'unreachable', nextAttemptInSeconds: null });
    await until(() => events.some((e) => e.type === 'round-failed'), 5000, 'h1 to hear of it');
    expect(events.find((e) => e.type === 'round-closed')).toEqual({ type: 'round-closed', message: { type: 'round-closed', round: 1, attempt: 1, reason: 'aborted' } });
    expect(a.state).toBe('waiting');
  });

  it('a sampled hospital that reconnects within the grace gets the same attempt again (resumed) while the other keeps training', async () => {
    server = await startTestServer({ rounds: 1, minFit: 2, minAvailable: 2, minCompletion: 2, roundDeadlineSeconds: 60, maxUpdateNorm: null, limits: { reconnectGraceSeconds: 30 } });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const starts: number[] = [];
    const a = client(server, 'h1', async () => (starts.push(Date.now()), await gate, { weights: tinyWeights(1), examples: 10, dLoss: 1, gLoss: 1 }));
    const done = a.run();
    const first = raw(server);
    await first.hello('h2');
    const r1 = await first.waitBinary('round');
    expect(r1.header).toMatchObject({ round: 1, attempt: 1 });
    expect(r1.header.resumed).toBeUndefined();
    first.close(); // a reload: the connection is gone
    await until(() => server!.logLines.some((l) => l.includes('h2 disconnected during round 1')), 5000, 'the server to see the drop');
    const again = raw(server);
    await again.hello('h2'); // the same client id
    const r2 = await again.waitBinary('round');
    expect(r2.header).toMatchObject({ type: 'round', round: 1, attempt: 1, resumed: true });
    const left = (r2.header.config as { deadlineSeconds: number }).deadlineSeconds;
    expect(left).toBeGreaterThan(30); // 60 s less the few moments since the round started
    expect(left).toBeLessThanOrEqual(60);
    expect(again.messages.some((m) => m.text?.type === 'round-failed')).toBe(false);
    expect(starts).toHaveLength(1); // h1 was not disturbed
    await rawUpload(again, 1, 1, tinyWeights(3), 10, again.messages.length);
    await again.waitText((m) => m.type === 'accepted');
    release();
    await done;
    expect(server.federation.state.history[0]).toMatchObject({ round: 1, attempts: 1, participants: 2, hospitals: ['h1', 'h2'] });
  });

  it('a full disk: hospitals get round-failed save-failed, the metric counts, /readyz is 503; all recovers when the disk frees', async () => {
    let full = false;
    let failures = 0;
    const { writeFileAtomic } = await import('./atomicFile.ts');
    server = await startTestServer(
      // retryDelayMs 20 (startTestServer): the write is retried after 20, 40, 80… ms.
      { rounds: 1, minFit: 2, minAvailable: 2, minCompletion: 2, maxUpdateNorm: null },
      {
        writeCheckpoint: async (path, bytes) => {
          if (full) {
            failures++;
            throw Object.assign(new Error(`ENOSPC: no space left on device, write '${path}'`), { code: 'ENOSPC' });
          }
          await writeFileAtomic(path, bytes);
        },
      },
    );
    full = true;
    const events: ClientEvent[] = [];
    const a = client(server, 'h1', constantTrainer(1, 10));
    a.on((e) => events.push(e));
    const runs = [a.run(), client(server, 'h2', constantTrainer(3, 10)).run()];
    await until(() => failures >= 2 && events.filter((e) => e.type === 'round-failed').length >= 2, 5000, 'two failed writes, announced');
    const failed = events.filter((e) => e.type === 'round-failed').map((e) => (e as { message: Record<string, unknown> }).message);
    // Real clock: a hospital that (re)joins while the save is pending hears the time LEFT until the next try
    // (e.g. 0.0196 s), not the whole backoff; the exact 0.02 → 0.04 schedule is pinned with a fake clock in
    // roundMachine.test.ts. Here: the reason, the counts, and delays within the backoff.
    expect(failed[0]).toMatchObject({ type: 'round-failed', round: 1, attempt: 1, received: 2, needed: 2, reason: 'save-failed' });
    expect(failed[0]!.nextAttemptInSeconds as number).toBeGreaterThan(0);
    expect(failed[0]!.nextAttemptInSeconds as number).toBeLessThanOrEqual(0.02);
    expect(failed[1]).toMatchObject({ reason: 'save-failed' });
    expect(failed[1]!.nextAttemptInSeconds as number).toBeGreaterThan(0);
    expect(failed[1]!.nextAttemptInSeconds as number).toBeLessThanOrEqual(0.04);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_checkpoint_write_failures_total')).toBeGreaterThanOrEqual(2);
    expect(server.federation.storageOk()).toBe(false);
    expect(server.federation.state.round).toBe(0);
    full = false;
    await Promise.all(runs);
    expect(server.federation.storageOk()).toBe(true);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect(server.federation.state.history[0]).toMatchObject({ round: 1, participants: 2, attempts: 1 });
    expect(readdirSync(join(server.stateDir, 'checkpoints')).sort()).toEqual(['round-000000.fgw', 'round-000001.fgw']);
  });
});

describe('HTTP endpoints', () => {
  it('answers /healthz, /readyz, /metrics, /api/status and serves a placeholder page without dist/', async () => {
    server = await startTestServer({ rounds: 2 });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    for (const name of ['fedgan_rounds_completed_total', 'fedgan_connected_hospitals', 'fedgan_bytes_received_total', 'fedgan_bytes_sent_total', 'fedgan_aggregation_seconds_total', 'fedgan_rejected_updates_total', 'fedgan_checkpoint_write_failures_total', 'fedgan_round_retry_stopped']) {
      expect(metrics).toContain(`# TYPE ${name}`);
    }
    const status = await getJson(`${server.url}/api/status`);
    expect(status).toMatchObject({
      round: 0,
      phase: 'waiting',
      connected: [],
      sampled: [],
      history: [],
      config: { rounds: 2, retry: { initialDelaySeconds: 2, maxDelaySeconds: 60, maxFailedAttempts: 8 } },
      retry: { failedAttempts: 0, nextAttemptAt: null, stopped: false },
      checkpoint: { writeFailures: 0, pending: null },
    });
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('npm run build');
    expect((await fetch(`${server.url}/nope.js`)).status).toBe(404);
    expect(existsSync(join(server.stateDir, 'checkpoints', 'round-000000.fgw'))).toBe(true);
  });

  it('is not ready (503, WebSocket refused) until the state is loaded', async () => {
    const { startFederationServer } = await import('./server.ts');
    const { parseFedConfig } = await import('../shared/config/fedConfig.ts');
    const { TokenStore } = await import('./auth.ts');
    const s2Dir = mkdtempSync(join(tmpdir(), 'fedgan-ready-'));
    let open!: () => void;
    const gate2 = new Promise<void>((r) => (open = r));
    const s2 = await startFederationServer({
      fed: parseFedConfig({ model: { imageSize: 16 } }),
      tokens: new TokenStore([]),
      stateDir: s2Dir,
      host: '127.0.0.1',
      port: 0,
      log: { info() {}, warn() {}, error() {} },
      initialWeights: async () => (await gate2, tinyWeights(0)),
    });
    try {
      expect((await fetch(`${s2.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${s2.url}/readyz`)).status).toBe(503);
      expect(await getJson(`${s2.url}/api/status`)).toEqual({ phase: 'loading' });
      const p = new RawPeer(s2.wsUrl);
      await expect(p.opened).rejects.toThrow(/503/);
      open();
      await s2.ready;
      expect((await fetch(`${s2.url}/readyz`)).status).toBe(200);
    } finally {
      await s2.close();
      rmSync(s2Dir, { recursive: true, force: true });
    }
  });

  it('serves the built web app from dist/, with app routes and no path traversal', async () => {
    const dist = mkdtempSync(join(tmpdir(), 'fedgan-dist-'));
    mkdirSync(join(dist, 'assets'), { recursive: true });
    writeFileSync(join(dist, 'index.html'), '<!doctype html><title>app</title>');
    writeFileSync(join(dist, 'assets', 'main.js'), 'console.log(1)');
    server = await startTestServer({ rounds: 1 }, { staticDir: dist });
    const index = await fetch(`${server.url}/?token=abc`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toContain('text/html');
    expect(index.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(await index.text()).toContain('<title>app</title>');
    const js = await fetch(`${server.url}/assets/main.js`);
    expect(js.headers.get('content-type')).toContain('javascript');
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect(await (await fetch(`${server.url}/some/app/route`)).text()).toContain('<title>app</title>');
    expect((await fetch(`${server.url}/missing.js`)).status).toBe(404);
    // Literal and encoded dot segments never leave dist/ (fetch would normalise them, so use raw requests).
    const { request } = await import('node:http');
    for (const path of ['/../../../../etc/passwd', '/..%2F..%2F..%2F..%2Fetc%2Fpasswd', '/assets/..%2F..%2F..%2Fetc/hosts']) {
      const body = await new Promise<string>((res, rej) => {
        const req = request({ host: '127.0.0.1', port: server!.port, path }, (r) => {
          let b = '';
          r.on('data', (d) => (b += d));
          r.on('end', () => res(`${r.statusCode} ${b}`));
        });
        req.on('error', rej);
        req.end();
      });
      expect(body).not.toMatch(/root:|localhost/);
    }
    expect((await fetch(`${server.url}/healthz`, { method: 'POST' })).status).toBe(405);
  });

  it('enforces the connection limit and drops peers that stop answering pings', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 2, limits: { maxConnections: 2, heartbeatSeconds: 0.3 } });
    const a = raw(server);
    await a.hello('h1');
    const b = raw(server);
    await b.hello('h2');
    const c = raw(server);
    expect((await c.waitClose()).code).toBe(CLOSE.tryAgainLater);
    // A dead peer: its socket stops reading, so it never answers the server's pings.
    (a.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await until(() => server!.transport.peers().length === 1, 5000, 'the dead peer to be dropped');
    expect(server.transport.peers().map((p) => p.hospital)).toEqual(['h2']);
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_refusals_total{reason="server-full"}')).toBe(1);
    expect(m.get('fedgan_refusals_total{reason="heartbeat-timeout"}')).toBe(1);
    expect(m.get('fedgan_connected_hospitals')).toBe(1);
  });
});
