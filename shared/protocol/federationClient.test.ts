import { describe, expect, it } from 'vitest';
import { crc32 } from '../codec/crc32.ts';
import { encodeWeights } from '../codec/weightsCodec.ts';
import type { WeightSet } from '../weights.ts';
import { backoffDelay, DEFAULT_BACKOFF, FederationClient, FederationClientError, wsUrlFromPage, type ClientEvent, type WebSocketFactory, type WebSocketLike } from './federationClient.ts';
import { decodeFrame, encodeFrame } from './frames.ts';
import { CLOSE } from './messages.ts';

/** The client library against a scripted in-memory socket (the real server is covered in server/ and test/). */

// Type-level check: the browser's WebSocket fits the interface.
export const browserFactory: WebSocketFactory = (url) => new WebSocket(url);

class FakeSocket implements WebSocketLike {
  readyState = 0;
  binaryType = 'blob';
  sent: (string | Uint8Array)[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: string | ArrayBuffer | ArrayBufferView<ArrayBuffer>): void {
    this.sent.push(typeof data === 'string' ? data : new Uint8Array((data as Uint8Array).buffer, (data as Uint8Array).byteOffset, (data as Uint8Array).byteLength).slice());
  }
  close(code = 1000, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }
  // server side
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  text(m: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(m) });
  }
  binary(b: Uint8Array): void {
    this.onmessage?.({ data: b.slice().buffer });
  }
  drop(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  json(): Record<string, unknown>[] {
    return this.sent.filter((s): s is string => typeof s === 'string').map((s) => JSON.parse(s));
  }
}

const W: WeightSet = { fingerprint: 'f', tensors: [{ name: 'a', shape: [2], data: new Float32Array([1, 2]) }] };
const welcome = { type: 'welcome', protocol: 1, hospital: 'h1', clientId: 'c1', fingerprint: 'f', rounds: 3, round: 0, phase: 'waiting', limits: { maxFrameBytes: 1e6, heartbeatSeconds: 15 } };
const roundFrame = (round: number, attempt = 1) =>
  encodeFrame({ type: 'round', round, attempt, config: { round, attempt, rounds: 3, ganType: 'acgan', localEpochs: 1, learningRate: { generator: 1, discriminator: 1 }, imageSize: 16, batchNorm: 'average', examples: { min: 1, max: 10 }, deadlineSeconds: 5, model: {} } }, encodeWeights(W));
const tick = () => new Promise((r) => setTimeout(r, 5));

function harness(train: ConstructorParameters<typeof FederationClient>[0]['train'], reconnect = {}, extra: Partial<ConstructorParameters<typeof FederationClient>[0]> = {}) {
  const sockets: FakeSocket[] = [];
  const events: ClientEvent[] = [];
  const client = new FederationClient({
    url: 'ws://x/ws',
    token: 'tok',
    clientId: 'c1',
    agent: 'test',
    train,
    createSocket: (u) => {
      const s = new FakeSocket(u);
      sockets.push(s);
      return s;
    },
    reconnect: { initialMs: 1, maxMs: 5, ...reconnect },
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { client, sockets, events };
}

describe('FederationClient', () => {
  it('says hello with its versions and identity, trains, asks for a slot, uploads on grant', async () => {
    const { client, sockets, events } = harness(async (global, cfg, progress) => {
      expect([...global.tensors[0].data]).toEqual([1, 2]);
      progress(0.5);
      return { weights: { ...W, tensors: [{ ...W.tensors[0], data: new Float32Array([3, 4]) }] }, examples: 7, dLoss: 0.1, gLoss: 0.2 };
    });
    const run = client.run();
    const s = sockets[0];
    expect(s.binaryType).toBe('arraybuffer');
    s.open();
    expect(s.json()[0]).toEqual({ type: 'hello', protocols: [1], token: 'tok', clientId: 'c1', agent: 'test' });
    s.text(welcome);
    expect(client.state).toBe('waiting');
    s.binary(roundFrame(1));
    await tick();
    expect(s.json().map((m) => m.type)).toEqual(['hello', 'progress', 'upload-request']);
    expect(client.state).toBe('uploading');
    s.text({ type: 'upload-grant', round: 1, attempt: 1 });
    const up = decodeFrame(s.sent.at(-1) as Uint8Array);
    expect(up.header).toMatchObject({ type: 'update', round: 1, attempt: 1, examples: 7, dLoss: 0.1, gLoss: 0.2 });
    s.text({ type: 'accepted', round: 1, attempt: 1 });
    expect(client.state).toBe('waiting');
    s.text({ type: 'finished', rounds: 3 });
    expect(await run).toEqual({ rounds: 3 });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['connected', 'round-start', 'progress', 'uploading', 'accepted', 'finished']));
  });

  it('uses an injected CRC-32 to check the round weights and seal the update (same bytes as the default)', async () => {
    const seen: number[] = [];
    const counting = (b: Uint8Array, c?: number) => {
      seen.push(b.length);
      return crc32(b, c);
    };
    const trained: WeightSet = { ...W, tensors: [{ ...W.tensors[0], data: new Float32Array([3, 4]) }] };
    const { client, sockets } = harness(async () => ({ weights: trained, examples: 7, dLoss: 0.1, gLoss: 0.2 }), {}, { crc32: counting });
    void client.run();
    const s = sockets[0];
    s.open();
    s.text(welcome);
    s.binary(roundFrame(1));
    await tick();
    expect(seen.length).toBeGreaterThanOrEqual(2); // the round's weights checked, the update sealed
    s.text({ type: 'upload-grant', round: 1, attempt: 1 });
    const up = decodeFrame(s.sent.at(-1) as Uint8Array);
    expect(Array.from(up.payload)).toEqual(Array.from(encodeWeights(trained)));
    client.stop();
  });

  it('aborts training when the round is closed, and does not upload', async () => {
    let aborted = false;
    const { client, sockets } = harness(
      (_g, _c, _p, signal) =>
        new Promise((_, rej) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            rej(signal.reason);
          }),
        ),
    );
    void client.run();
    const s = sockets[0];
    s.open();
    s.text(welcome);
    s.binary(roundFrame(1));
    s.text({ type: 'round-closed', round: 1, attempt: 1, reason: 'deadline' });
    await tick();
    expect(aborted).toBe(true);
    expect(s.json().map((m) => m.type)).toEqual(['hello']);
    client.stop();
  });

  it('declines a round when training fails or returns non-finite losses', async () => {
    let n = 0;
    const { client, sockets } = harness(async () => {
      if (++n === 1) throw new Error('out of GPU memory');
      return { weights: W, examples: 1, dLoss: NaN, gLoss: 0 };
    });
    void client.run();
    const s = sockets[0];
    s.open();
    s.text(welcome);
    s.binary(roundFrame(1));
    await tick();
    s.binary(roundFrame(2));
    await tick();
    const declines = s.json().filter((m) => m.type === 'decline');
    expect(declines).toEqual([
      { type: 'decline', round: 1, attempt: 1, reason: 'out of GPU memory' },
      { type: 'decline', round: 2, attempt: 1, reason: expect.stringContaining('non-finite losses') },
    ]);
    client.stop();
  });

  it('reconnects with backoff after a lost connection and gives up after maxAttempts', async () => {
    const { client, sockets, events } = harness(async () => ({ weights: W, examples: 1, dLoss: 0, gLoss: 0 }), { maxAttempts: 3 });
    const run = client.run().catch((e: FederationClientError) => e);
    sockets[0].open();
    sockets[0].text(welcome);
    sockets[0].drop(1006);
    await tick();
    expect(sockets).toHaveLength(2);
    for (let i = 1; i < 4; i++) {
      sockets[i].drop(1006);
      await tick();
      await tick();
    }
    const err = await run;
    expect(err).toBeInstanceOf(FederationClientError);
    expect((err as FederationClientError).message).toContain("gave up after 3");
    expect(sockets).toHaveLength(4);
    expect(events.filter((e) => e.type === 'disconnected').map((e) => (e as { retryInMs: number | null }).retryInMs === null)).toEqual([false, false, false, true]);
  });

  it('does not reconnect after a fatal refusal', async () => {
    for (const code of [CLOSE.unauthorized, CLOSE.unsupportedProtocol, CLOSE.badHello, CLOSE.superseded]) {
      const { client, sockets } = harness(async () => ({ weights: W, examples: 1, dLoss: 0, gLoss: 0 }));
      const run = client.run();
      sockets[0].open();
      sockets[0].drop(code, 'nope');
      const err = await run.catch((e) => e);
      expect(err.code).toBe(code);
      await tick();
      expect(sockets).toHaveLength(1);
      expect(client.state).toBe('failed');
    }
  });

  it('fetches the global weights', async () => {
    const { client, sockets } = harness(async () => ({ weights: W, examples: 1, dLoss: 0, gLoss: 0 }));
    void client.run();
    sockets[0].open();
    sockets[0].text(welcome);
    const p = client.fetchGlobal();
    expect(sockets[0].json().at(-1)).toEqual({ type: 'get-global' });
    sockets[0].binary(encodeFrame({ type: 'global', round: 2 }, encodeWeights(W)));
    const g = await p;
    expect(g.round).toBe(2);
    expect([...g.weights.tensors[0].data]).toEqual([1, 2]);
    client.stop();
  });

  it('backoff grows by the factor, is capped, and jitters within bounds', () => {
    const o = { ...DEFAULT_BACKOFF, jitter: 0 };
    expect([0, 1, 2, 3, 10].map((n) => backoffDelay(n, o))).toEqual([500, 1000, 2000, 4000, 30_000]);
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 0)).toBe(400);
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 1)).toBe(600);
  });

  it('derives the WebSocket URL from the page URL', () => {
    expect(wsUrlFromPage('http://host:8080/?token=abc')).toBe('ws://host:8080/ws');
    expect(wsUrlFromPage('https://fed.example.org/app#x')).toBe('wss://fed.example.org/ws');
  });
});
