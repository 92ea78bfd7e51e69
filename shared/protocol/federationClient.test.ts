import { describe, expect, it } from 'vitest';
import { crc32 } from '../codec/crc32.ts';
import { encodeWeights } from '../codec/weightsCodec.ts';
import type { WeightSet } from '../weights.ts';
import { backoffDelay, DEFAULT_BACKOFF, FederationClient, FederationClientError, wsUrlFromPage, type ClientEvent, type WebSocketFactory, type WebSocketLike } from './federationClient.ts';
import { decodeFrame, encodeFrame } from './frames.ts';
import { CLOSE, updateHeaderSchema } from './messages.ts';
import { FakeSocket } from './testDoubles.ts';

/** The client library against a scripted in-memory socket (the real server is covered in server/ and test/). */

// Type-level check: the browser's WebSocket fits the interface.
export const browserFactory: WebSocketFactory = (url) => new WebSocket(url);


const W: WeightSet = { fingerprint: 'f', tensors: [{ name: 'a', shape: [2], data: new Float32Array([1, 2]) }] };
const welcome = { type: 'welcome', protocol: 3, hospital: 'h1', clientId: 'c1', fingerprint: 'f', rounds: 3, round: 0, phase: 'waiting', limits: { maxFrameBytes: 1e6, heartbeatSeconds: 15, maxConcurrentUploads: 1, uploadGrantSeconds: 120, reconnectGraceSeconds: 60 } };
const roundFrame = (round: number, attempt = 1) =>
  encodeFrame({ type: 'round', round, attempt, config: { round, attempt, rounds: 3, ganType: 'acgan', localSteps: 1, learningRate: { generator: 1, discriminator: 1 }, imageSize: 16, batchNorm: 'average', examples: { min: 1, max: 10 }, deadlineSeconds: 5, model: {} } }, encodeWeights(W));
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
    expect(s.json()[0]).toEqual({ type: 'hello', protocols: [3], token: 'tok', clientId: 'c1', agent: 'test' });
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

  it('sends the quality probe the training returned in the update header (a header the server schema accepts), and none when there is none', async () => {
    const quality = { kid: 0.125, kidStd: 0.01, n: 64, features: 'mobilenet-v2' };
    for (const withProbe of [true, false]) {
      const { client, sockets } = harness(async () => ({ weights: W, examples: 7, dLoss: 0.1, gLoss: 0.2, ...(withProbe ? { quality } : {}) }));
      const run = client.run();
      const s = sockets[0];
      s.open();
      s.text(welcome);
      s.binary(roundFrame(1));
      await tick();
      s.text({ type: 'upload-grant', round: 1, attempt: 1 });
      const { header } = decodeFrame(s.sent.at(-1) as Uint8Array);
      expect(updateHeaderSchema.parse(header).quality).toEqual(withProbe ? quality : undefined);
      client.stop();
      await run.catch(() => {});
    }
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

describe('FederationClient: server messages are validated before it acts on them', () => {
  /** A client in the middle of a round: welcomed, training done, upload requested (state `uploading`). */
  async function uploading() {
    const h = harness(async () => ({ weights: W, examples: 1, dLoss: 0, gLoss: 0 }));
    const run = h.client.run();
    const s = h.sockets[0];
    s.open();
    s.text(welcome);
    s.binary(roundFrame(1));
    await tick();
    expect(h.client.state).toBe('uploading');
    return { ...h, s, run };
  }
  const invalidEvents = (events: ClientEvent[]) => events.filter((e): e is Extract<ClientEvent, { type: 'invalid-message' }> => e.type === 'invalid-message');

  type Uploading = Awaited<ReturnType<typeof uploading>>;
  /** [type, malformed message, the field its error names, the valid message, whether the client acted on it]. */
  const MALFORMED: [string, Record<string, unknown>, string, Record<string, unknown>, (h: Uploading, settled: boolean) => boolean][] = [
    ['upload-grant', { type: 'upload-grant', round: 1, attempt: '1' }, 'attempt', { type: 'upload-grant', round: 1, attempt: 1 }, (h) => h.s.sent.at(-1) instanceof Uint8Array],
    ['accepted', { type: 'accepted', round: 1 }, 'attempt', { type: 'accepted', round: 1, attempt: 1 }, (h) => h.client.state === 'waiting'],
    ['round-closed', { type: 'round-closed', round: 1, attempt: 1, reason: 'whim' }, 'reason', { type: 'round-closed', round: 1, attempt: 1, reason: 'deadline' }, (h) => h.client.state === 'waiting'],
    ['error', { type: 'error', code: 'no-upload-slot', message: 7, round: 1, attempt: 1 }, 'message', { type: 'error', code: 'no-upload-slot', message: 'x', round: 1, attempt: 1 }, (h) => h.client.state === 'waiting'],
    ['finished', { type: 'finished' }, 'rounds', { type: 'finished', rounds: 3 }, (_h, settled) => settled],
    ['status', { type: 'status', phase: 'waiting', round: 0, rounds: 3, connected: 1, minAvailable: 2 }, 'sampled', { type: 'status', phase: 'waiting', round: 0, rounds: 3, connected: 1, minAvailable: 2, sampled: true }, (h) => h.events.some((e) => e.type === 'status')],
    ['round-complete', { type: 'round-complete', round: 1, participants: 2, examples: 3, dLoss: 'low', gLoss: 1, seconds: 1 }, 'dLoss', { type: 'round-complete', round: 1, participants: 2, examples: 3, dLoss: 0.5, gLoss: 1, seconds: 1 }, (h) => h.events.some((e) => e.type === 'round-complete')],
    ['round-failed', { type: 'round-failed', round: 1, attempt: 1, received: 1, needed: 2, reason: 'deadline' }, 'nextAttemptInSeconds', { type: 'round-failed', round: 1, attempt: 1, received: 1, needed: 2, reason: 'deadline', nextAttemptInSeconds: 2 }, (h) => h.events.some((e) => e.type === 'round-failed')],
  ];
  for (const [type, message, field, valid, acted] of MALFORMED) {
    it(`an invalid ${type} gives an error event naming it and ${field}, and is not acted on`, async () => {
      const h = await uploading();
      const { s, events, run } = h;
      let settled = false;
      void run.then(() => (settled = true));
      const sentBefore = s.sent.length;
      const eventsBefore = events.length;
      s.text(message);
      await tick();
      expect(events.slice(eventsBefore)).toEqual([{ type: 'invalid-message', messageType: type, error: expect.stringMatching(new RegExp(`^invalid ${type} message from the server: ${field}: `)) }]);
      expect(acted(h, settled)).toBe(false);
      expect(h.client.state).toBe('uploading');
      expect(s.sent.length).toBe(sentBefore);
      // The valid message is acted on (so the check above could have failed).
      s.text(valid);
      await tick();
      expect(acted(h, settled)).toBe(true);
    });
  }

  it('stays connected and keeps working after invalid messages', async () => {
    const { client, s, run } = await uploading();
    s.onmessage?.({ data: '{"type": "accepted", "round": 1, "attempt": 1' }); // not JSON
    s.binary(new Uint8Array([1, 2, 3]));
    s.text({ type: 'upload-grant', round: 1, attempt: 1 });
    expect(decodeFrame(s.sent.at(-1) as Uint8Array).header).toMatchObject({ type: 'update', round: 1, attempt: 1 });
    s.text({ type: 'accepted', round: 1, attempt: 1 });
    expect(client.state).toBe('waiting');
    s.text({ type: 'finished', rounds: 3 });
    expect(await run).toEqual({ rounds: 3 });
  });

  it('declines at once a round frame whose weights it cannot decode, naming the problem', async () => {
    const trained: number[] = [];
    const { client, sockets, events } = harness(async (_g, cfg) => {
      trained.push(cfg.round);
      return { weights: W, examples: 1, dLoss: 0, gLoss: 0 };
    });
    void client.run();
    const s = sockets[0];
    s.open();
    s.text(welcome);
    const frame = roundFrame(1);
    frame[frame.length - 6] ^= 0xff; // a weight byte: the payload's CRC-32 no longer matches
    s.binary(frame);
    await tick();
    expect(s.json().filter((m) => m.type === 'decline')).toEqual([{ type: 'decline', round: 1, attempt: 1, reason: expect.stringMatching(/^the round's weights are unusable: weights checksum mismatch/) }]);
    expect(events).toContainEqual({ type: 'round-declined', round: 1, attempt: 1, reason: expect.stringMatching(/checksum mismatch/) });
    expect(trained).toEqual([]);
    expect(client.state).toBe('waiting');
    client.stop();
  });

  it('declines at once a round frame whose RoundConfig is invalid; one without a valid round cannot be declined', async () => {
    const { client, sockets, events } = harness(async () => ({ weights: W, examples: 1, dLoss: 0, gLoss: 0 }));
    void client.run();
    const s = sockets[0];
    s.open();
    s.text(welcome);
    const config = { round: 1, attempt: 1, rounds: 3, ganType: 'acgan', localSteps: 0, learningRate: { generator: 1, discriminator: 1 }, imageSize: 16, batchNorm: 'average', examples: { min: 1, max: 10 }, deadlineSeconds: 5, model: {} };
    s.binary(encodeFrame({ type: 'round', round: 1, attempt: 1, config }, encodeWeights(W)));
    s.binary(encodeFrame({ type: 'round', round: 'one', attempt: 1, config }, encodeWeights(W)));
    await tick();
    expect(s.json().filter((m) => m.type === 'decline')).toEqual([{ type: 'decline', round: 1, attempt: 1, reason: expect.stringMatching(/^invalid round frame header from the server: config\.localSteps: /) }]);
    expect(invalidEvents(events).map((e) => e.error)).toEqual([expect.stringMatching(/config\.localSteps/), expect.stringMatching(/^invalid round frame header from the server: round: /)]);
    expect(events.some((e) => e.type === 'round-start')).toBe(false);
    client.stop();
  });

  it('declines a round whose model config it cannot build', async () => {
    const { client, sockets } = harness(async () => ({ weights: W, examples: 1, dLoss: 0, gLoss: 0 }));
    void client.run();
    const s = sockets[0];
    s.open();
    s.text(welcome);
    const config = { round: 1, attempt: 1, rounds: 3, ganType: 'acgan', localSteps: 1, learningRate: { generator: 1, discriminator: 1 }, imageSize: 16, batchNorm: 'average', examples: { min: 1, max: 10 }, deadlineSeconds: 5, model: { gan: 'diffusion' } };
    s.binary(encodeFrame({ type: 'round', round: 1, attempt: 1, config }, encodeWeights(W)));
    await tick();
    expect(s.json().filter((m) => m.type === 'decline')).toEqual([{ type: 'decline', round: 1, attempt: 1, reason: expect.stringMatching(/^invalid round 1 model config: gan: /) }]);
    client.stop();
  });

  it('fetchGlobal rejects, naming the problem, on an invalid global frame', async () => {
    const { client, sockets, events } = harness(async () => ({ weights: W, examples: 1, dLoss: 0, gLoss: 0 }));
    void client.run();
    sockets[0].open();
    sockets[0].text(welcome);
    const bad = client.fetchGlobal();
    sockets[0].binary(encodeFrame({ type: 'global', round: -1 }, encodeWeights(W)));
    await expect(bad).rejects.toThrow(/^invalid global frame header from the server: round: /);
    const corrupt = client.fetchGlobal();
    const f = encodeFrame({ type: 'global', round: 1 }, encodeWeights(W));
    f[f.length - 6] ^= 0xff;
    sockets[0].binary(f);
    await expect(corrupt).rejects.toThrow(/^unusable global weights from the server: /);
    expect(invalidEvents(events).map((e) => e.messageType)).toEqual(['global', 'global']);
    client.stop();
  });
});
