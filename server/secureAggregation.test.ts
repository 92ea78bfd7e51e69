import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { fedAvg } from '../shared/aggregate/fedavg.ts';
import type { FederationClient, TrainFn } from '../shared/protocol/federationClient.ts';
import { decodeFrame } from '../shared/protocol/frames.ts';
import type { RoundFailed } from '../shared/protocol/messages.ts';
import { quantError } from '../shared/secagg/quantize.ts';
import { nodeClient, startTestServer, tinyWeights, until, type TestServer } from './testing/federation.ts';

/**
 * Secure aggregation through the real server (loopback) with Node hospitals running the shared client:
 * a full round, a hospital that drops out after sharing its keys (within the threshold, and beyond it), and
 * a capture of every frame the hospitals send: the server receives only masked updates.
 */
const SECURE = { enabled: true, phaseSeconds: 2 };
const VALUES: Record<string, (t: number, i: number) => number> = {
  h1: (t, i) => 0.1 + 0.01 * i + 0.1 * t,
  h2: (t, i) => -0.2 + 0.03 * i,
  h3: (t, i) => 0.05 * (i + 1) - 0.1 * t,
};
const EXAMPLES: Record<string, number> = { h1: 100, h2: 300, h3: 50 };

/** Every frame a hospital sends (what the server receives), and the text messages it receives. */
interface Capture {
  sentBinary: { header: Record<string, unknown>; payload: Uint8Array }[];
  sentText: Record<string, unknown>[];
  received: Record<string, unknown>[];
}

/** `drop`: message types this hospital never sends (a hospital that misses a phase). */
function capturingSocket(capture: Capture, drop: string[] = []) {
  return (url: string, protocols?: string | string[]) => {
    const ws = new WebSocket(url, protocols);
    const send = ws.send.bind(ws);
    (ws as unknown as { send: (d: unknown) => void }).send = (data: unknown) => {
      if (typeof data === 'string' && drop.includes(JSON.parse(data).type)) return;
      if (typeof data === 'string') capture.sentText.push(JSON.parse(data));
      else {
        const bytes = data instanceof Uint8Array ? data : new Uint8Array(data as ArrayBuffer);
        const f = decodeFrame(bytes);
        capture.sentBinary.push({ header: f.header, payload: f.payload.slice() });
      }
      send(data as Buffer);
    };
    ws.on('message', (d: Buffer, isBinary: boolean) => {
      if (!isBinary) capture.received.push(JSON.parse(d.toString()));
    });
    return ws as unknown as globalThis.WebSocket;
  };
}

let server: TestServer | undefined;
const clients: FederationClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  await server?.cleanup();
  server = undefined;
});

function start(hospital: string, train: TrainFn, capture: Capture, drop: string[] = []) {
  const c = nodeClient(server!, hospital, train, { createSocket: capturingSocket(capture, drop) as never });
  clients.push(c);
  void c.run().catch(() => undefined);
  return c;
}

const emptyCapture = (): Capture => ({ sentBinary: [], sentText: [], received: [] });
const trainer = (h: string): TrainFn => async () => ({ weights: tinyWeights(VALUES[h]), examples: EXAMPLES[h], dLoss: 1, gLoss: 2 });

/** A trainer that waits until the server relayed the shares to this hospital, then drops its connection for good. */
function dropsAfterSharing(capture: Capture, client: () => FederationClient): TrainFn {
  return async (_g, _c, _p, signal) => {
    await until(() => capture.received.some((m) => m.type === 'secagg-relay'), 8000, 'secagg-relay');
    client().stop();
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('stopped'))));
  };
}

/** The server's global model (after the round: its new one). */
const globalAfterRound = async (s: TestServer) => s.federation.globalWeights;

describe('secure aggregation through the server (Node hospitals, loopback)', () => {
  it('a full round: the server gets only masked updates and its new model is FedAvg within the quantisation bound (FedBN kept)', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 3, minFit: 3, minCompletion: 2, batchNorm: 'local', privacy: { secureAggregation: SECURE } } as never);
    const caps = { h1: emptyCapture(), h2: emptyCapture(), h3: emptyCapture() };
    for (const h of ['h1', 'h2', 'h3'] as const) start(h, trainer(h), caps[h]);
    await until(() => server!.logLines.some((l) => l.includes('round 1 complete')), 15000, 'round 1 complete');
    // What each hospital sent: keys, shares, an unmasking answer and exactly one binary frame, masked.
    for (const h of ['h1', 'h2', 'h3'] as const) {
      const c = caps[h];
      expect(c.sentText.map((m) => m.type).filter((t) => String(t).startsWith('secagg'))).toEqual(['secagg-keys', 'secagg-shares', 'secagg-reveal']);
      expect(c.sentBinary).toHaveLength(1);
      const { header, payload } = c.sentBinary[0];
      expect(header).toMatchObject({ type: 'update', masked: true, examples: EXAMPLES[h] });
      // 9 words: the two generator tensors (6 + 3); the batch-norm gamma never leaves (FedBN).
      expect(payload.byteLength).toBe(9 * 4);
      // None of the trained float32 values appears in the payload.
      const plain = new Float32Array(tinyWeights(VALUES[h]).tensors.flatMap((t) => [...t.data]));
      const sent = new Float32Array(payload.buffer, payload.byteOffset, 9);
      for (const v of plain) expect(sent.includes(v)).toBe(false);
      const roster = c.received.find((m) => m.type === 'secagg-roster') as { threshold: number; members: { hospital: string }[] };
      expect(roster.threshold).toBe(2);
      expect(roster.members.map((m) => m.hospital)).toEqual(['h1', 'h2', 'h3']);
    }
    const got = await globalAfterRound(server);
    const want = fedAvg((['h1', 'h2', 'h3'] as const).map((h) => ({ weights: tinyWeights(VALUES[h]), examples: EXAMPLES[h] })));
    const scale = (2 ** 31 - 1) / (3 * 100_000 * 0.5);
    const bound = quantError(scale, 3, 450);
    for (const k of [0, 1]) got.tensors[k].data.forEach((v, i) => expect(Math.abs(v - want.tensors[k].data[i])).toBeLessThanOrEqual(bound + 1e-7));
    // FedBN: the batch-norm gamma keeps the initial global value (0), not the hospitals' average.
    expect(Array.from(got.tensors[2].data)).toEqual([0, 0]);
    expect(server.logLines.some((l) => /update from h1 accepted .*masked/.test(l))).toBe(true);
  }, 30_000);

  it('a hospital that drops out after sharing its keys: the others\' sum is unmasked (its pairwise masks rebuilt)', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 3, minFit: 3, minCompletion: 2, limits: { reconnectGraceSeconds: 0 }, privacy: { secureAggregation: SECURE } } as never);
    const caps = { h1: emptyCapture(), h2: emptyCapture(), h3: emptyCapture() };
    start('h1', trainer('h1'), caps.h1);
    start('h2', trainer('h2'), caps.h2);
    let h3!: FederationClient;
    h3 = start('h3', dropsAfterSharing(caps.h3, () => h3), caps.h3);
    await until(() => server!.logLines.some((l) => l.includes('round 1 complete')), 15000, 'round 1 complete');
    expect(caps.h3.sentBinary).toHaveLength(0);
    expect(server.logLines.some((l) => /h3 dropped out after sharing keys/.test(l))).toBe(true);
    const unmask = caps.h1.received.find((m) => m.type === 'secagg-unmask') as { survivors: string[] };
    expect(unmask.survivors).toEqual(['h1', 'h2']);
    const got = await globalAfterRound(server);
    const want = fedAvg((['h1', 'h2'] as const).map((h) => ({ weights: tinyWeights(VALUES[h]), examples: EXAMPLES[h] })));
    const bound = quantError((2 ** 31 - 1) / (3 * 100_000 * 0.5), 3, 400);
    got.tensors.forEach((t, k) => t.data.forEach((v, i) => expect(Math.abs(v - want.tensors[k].data[i])).toBeLessThanOrEqual(bound + 1e-7)));
  }, 30_000);

  it('a hospital that never advertises its keys is out of the attempt after phaseSeconds; the others complete the round', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 3, minFit: 3, minCompletion: 2, privacy: { secureAggregation: SECURE } } as never);
    const caps = { h1: emptyCapture(), h2: emptyCapture(), h3: emptyCapture() };
    start('h1', trainer('h1'), caps.h1);
    start('h2', trainer('h2'), caps.h2);
    start('h3', trainer('h3'), caps.h3, ['secagg-keys']);
    await until(() => server!.logLines.some((l) => l.includes('round 1 complete')), 15000, 'round 1 complete');
    expect(caps.h3.received).toContainEqual({ type: 'round-closed', round: 1, attempt: 1, reason: 'aborted' });
    expect(caps.h3.received.some((m) => m.type === 'secagg-roster')).toBe(false);
    expect(caps.h3.sentBinary).toHaveLength(0);
    expect(server.logLines.some((l) => /h3 did not advertise its secure-aggregation keys within 2s: out of attempt 1/.test(l))).toBe(true);
    const got = server.federation.globalWeights;
    const want = fedAvg((['h1', 'h2'] as const).map((h) => ({ weights: tinyWeights(VALUES[h]), examples: EXAMPLES[h] })));
    const bound = quantError((2 ** 31 - 1) / (3 * 100_000 * 0.5), 3, 400);
    got.tensors.forEach((t, k) => t.data.forEach((v, i) => expect(Math.abs(v - want.tensors[k].data[i])).toBeLessThanOrEqual(bound + 1e-7)));
  }, 30_000);

  it('beyond the threshold the attempt fails cleanly: round-failed secure-aggregation, with the phase in plain words', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 3, minFit: 3, minCompletion: 2, limits: { reconnectGraceSeconds: 0 }, privacy: { secureAggregation: { ...SECURE, threshold: 3 } } } as never);
    const caps = { h1: emptyCapture(), h2: emptyCapture(), h3: emptyCapture() };
    start('h1', trainer('h1'), caps.h1);
    start('h2', trainer('h2'), caps.h2);
    let h3!: FederationClient;
    h3 = start('h3', dropsAfterSharing(caps.h3, () => h3), caps.h3);
    await until(() => caps.h1.received.some((m) => m.type === 'round-failed'), 15000, 'round-failed');
    const failed = caps.h1.received.find((m) => m.type === 'round-failed') as RoundFailed;
    expect(failed).toMatchObject({ round: 1, attempt: 1, reason: 'secure-aggregation', received: 2 });
    expect(failed.detail).toMatch(/needs 3 hospitals, but only 2 sent their masked update: the sum cannot be unmasked/);
    // Nobody was asked to unmask: no share that could reveal anything left a hospital.
    expect(caps.h1.sentText.some((m) => m.type === 'secagg-reveal')).toBe(false);
    expect(server.logLines.some((l) => l.includes('round 1 complete'))).toBe(false);
  }, 30_000);
});
