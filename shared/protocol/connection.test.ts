import { describe, expect, it } from 'vitest';
import { encodeWeights } from '../codec/weightsCodec.ts';
import { backoffDelay, DEFAULT_BACKOFF, FederationConnection, type ConnectionEvent, type ConnectionOptions } from './connection.ts';
import { encodeFrame } from './frames.ts';
import { CLOSE } from './messages.ts';
import { FakeSocket, ManualTimers, roundConfig } from './testDoubles.ts';

/** The connection alone (no rounds): hello, welcome, validation, backoff and close codes, on a manual clock. */

const welcome = { type: 'welcome', protocol: 3, hospital: 'h1', clientId: 'c1', fingerprint: 'f', rounds: 3, round: 0, phase: 'waiting', limits: { maxFrameBytes: 1e6, heartbeatSeconds: 15, maxConcurrentUploads: 1, uploadGrantSeconds: 120, reconnectGraceSeconds: 60 } };
const tick = () => new Promise((r) => setTimeout(r, 0));

function harness(opts: Partial<ConnectionOptions> = {}) {
  const sockets: FakeSocket[] = [];
  const events: ConnectionEvent[] = [];
  const timers = new ManualTimers();
  const conn = new FederationConnection(
    {
      url: 'ws://x/ws',
      token: 'tok',
      clientId: 'c1',
      agent: 'test',
      createSocket: (u) => {
        const s = new FakeSocket(u);
        sockets.push(s);
        return s;
      },
      timers,
      random: () => 0.5, // no jitter: delays are the bare backoff
      ...opts,
    },
    (e) => events.push(e),
  );
  const of = <T extends ConnectionEvent['type']>(type: T) => events.filter((e): e is Extract<ConnectionEvent, { type: T }> => e.type === type);
  /** Open the newest socket and welcome it. */
  const welcomeLatest = () => {
    const s = sockets.at(-1)!;
    s.open();
    s.text(welcome);
    return s;
  };
  return { conn, sockets, events, timers, of, welcomeLatest };
}

describe('FederationConnection', () => {
  it('says hello with its versions, token, identity and agent, and is connected on a valid welcome', () => {
    const { conn, sockets, of } = harness();
    conn.start();
    expect(conn.state).toBe('connecting');
    const s = sockets[0];
    expect(s.binaryType).toBe('arraybuffer');
    expect(conn.send({ type: 'get-global' })).toBe(false); // not welcomed: nothing is sent
    s.open();
    expect(s.json()).toEqual([{ type: 'hello', protocols: [3], token: 'tok', clientId: 'c1', agent: 'test' }]);
    s.text(welcome);
    expect(conn.state).toBe('connected');
    expect(conn.welcome).toEqual(welcome);
    expect(of('connected')).toEqual([{ type: 'connected', welcome }]);
    expect(conn.send({ type: 'get-global' })).toBe(true);
    expect(s.json().at(-1)).toEqual({ type: 'get-global' });
  });

  it('offers the subprotocols fedgan and fedgan.auth.<key of the token> on every socket, never the token itself', () => {
    const offered: string[][] = [];
    const sockets: FakeSocket[] = [];
    const timers = new ManualTimers();
    const conn = new FederationConnection(
      { url: 'ws://x/ws', token: 'tok', clientId: 'c1', timers, random: () => 0.5, createSocket: (u, protocols) => (offered.push(protocols), sockets.push(new FakeSocket(u)), sockets.at(-1)!) },
      () => {},
    );
    conn.start();
    sockets[0].drop(1006);
    timers.advance(DEFAULT_BACKOFF.initialMs);
    // The key: base64url(SHA-256("fedgan.auth:" + hex SHA-256("tok"))), computed with sha256sum and openssl.
    const expected = ['fedgan', 'fedgan.auth.gIsMb_AcGQ3nETw5OyEQe7LztkGTsyaB_rKhMJLIJyU'];
    expect(offered).toEqual([expected, expected]);
    expect(sockets.map((s) => s.url)).toEqual(['ws://x/ws', 'ws://x/ws']); // nothing in the URL
  });

  it('opens the default socket (the global WebSocket, as in browsers) with the subprotocols', () => {
    const made: { url: string; protocols: unknown }[] = [];
    const g = globalThis as { WebSocket?: unknown };
    const saved = g.WebSocket;
    g.WebSocket = class extends FakeSocket {
      constructor(url: string, protocols?: unknown) {
        super(url);
        made.push({ url, protocols });
      }
    };
    try {
      new FederationConnection({ url: 'wss://h/ws', token: 'tok', clientId: 'c1', timers: new ManualTimers() }, () => {}).start();
    } finally {
      g.WebSocket = saved;
    }
    expect(made).toEqual([{ url: 'wss://h/ws', protocols: ['fedgan', 'fedgan.auth.gIsMb_AcGQ3nETw5OyEQe7LztkGTsyaB_rKhMJLIJyU'] }]);
  });

  it('keeps a random client id stable across reconnects when none is given', () => {
    const { conn, sockets, timers } = harness({ clientId: undefined });
    expect(conn.clientId).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    conn.start();
    sockets[0].open();
    sockets[0].drop(1006);
    timers.advance(DEFAULT_BACKOFF.initialMs);
    sockets[1].open();
    expect(sockets.map((s) => s.json()[0].clientId)).toEqual([conn.clientId, conn.clientId]);
  });

  it('refuses to start with a hello the server would refuse, naming the field, without opening a socket', () => {
    const { conn, sockets, of } = harness({ clientId: 'has spaces' });
    conn.start();
    expect(sockets).toHaveLength(0);
    expect(conn.state).toBe('failed');
    expect(of('failed')[0].error).toMatchObject({ code: CLOSE.badHello, message: expect.stringMatching(/^this client's hello is invalid: clientId: must be 1–128 of/) });
  });

  it('hands on valid messages and frames, reports invalid ones without handing them on', () => {
    const { conn, welcomeLatest, events, of } = harness();
    conn.start();
    const s = welcomeLatest();
    const before = events.length;
    s.text({ type: 'accepted', round: 1, attempt: 1 });
    s.text({ type: 'accepted', round: 1 });
    s.text({ type: 'something-new', x: 1 });
    const payload = encodeWeights({ fingerprint: 'f', tensors: [] });
    s.binary(encodeFrame({ type: 'round', round: 2, attempt: 1, config: roundConfig }, payload));
    s.binary(encodeFrame({ type: 'round', round: 2, attempt: 1, config: { ...roundConfig, deadlineSeconds: -1 } }, payload));
    expect(events.slice(before).map((e) => e.type)).toEqual(['message', 'invalid-message', 'frame', 'invalid-message']);
    expect(of('message')[0].message).toEqual({ type: 'accepted', round: 1, attempt: 1 });
    expect(of('invalid-message').map((e) => e.invalid)).toEqual([
      { kind: 'text', messageType: 'accepted', error: expect.stringMatching(/^invalid accepted message from the server: attempt: /) },
      { kind: 'binary', messageType: 'round', error: expect.stringMatching(/config\.deadlineSeconds: /), task: { round: 2, attempt: 1 } },
    ]);
    expect(conn.state).toBe('connected'); // an invalid message does not end the connection
  });

  it('survives a handler that throws: the failure is reported and the connection goes on', () => {
    const events: ConnectionEvent[] = [];
    const sockets: FakeSocket[] = [];
    const conn = new FederationConnection({ url: 'ws://x/ws', token: 'tok', clientId: 'c1', createSocket: (u) => (sockets.push(new FakeSocket(u)), sockets.at(-1)!), timers: new ManualTimers() }, (e) => {
      events.push(e);
      if (e.type === 'message' && e.message.type === 'status') throw new Error('handler bug');
    });
    conn.start();
    sockets[0].open();
    sockets[0].text(welcome);
    sockets[0].text({ type: 'status', phase: 'waiting', round: 0, rounds: 3, connected: 1, minAvailable: 2, sampled: false });
    expect(events.at(-1)).toEqual({ type: 'invalid-message', invalid: { kind: 'text', messageType: null, error: 'the client failed while handling a text message from the server: handler bug' } });
    sockets[0].text({ type: 'accepted', round: 1, attempt: 1 });
    expect(events.at(-1)).toMatchObject({ type: 'message', message: { type: 'accepted' } });
    expect(conn.state).toBe('connected');
  });

  it('reconnects with exponential backoff (no jitter here) and resets it after a welcome', () => {
    const { conn, sockets, timers, of, welcomeLatest } = harness({ reconnect: { initialMs: 100, maxMs: 1000, factor: 3 } });
    conn.start();
    for (let i = 0; i < 4; i++) {
      sockets.at(-1)!.drop(1006, 'network');
      expect(conn.state).toBe('connecting');
      const delay = timers.delays[0];
      timers.advance(delay - 1);
      expect(sockets).toHaveLength(i + 1); // not before the delay
      timers.advance(1);
      expect(sockets).toHaveLength(i + 2);
    }
    expect(of('disconnected').map((e) => e.retryInMs)).toEqual([100, 300, 900, 1000]);
    welcomeLatest();
    sockets.at(-1)!.drop(CLOSE.goingAway, 'server shutting down');
    expect(of('disconnected').at(-1)).toEqual({ type: 'disconnected', code: CLOSE.goingAway, reason: 'server shutting down', retryInMs: 100 });
  });

  it('spreads the delay by the jitter from the injected random source', () => {
    const o = { ...DEFAULT_BACKOFF, initialMs: 1000 };
    for (const r of [0, 0.25, 0.999]) {
      const { conn, sockets, of } = harness({ random: () => r, reconnect: { initialMs: 1000 } });
      conn.start();
      sockets[0].drop(1006);
      expect(of('disconnected')[0].retryInMs).toBe(backoffDelay(0, o, () => r));
    }
    expect(backoffDelay(0, o, () => 0)).toBe(800);
  });

  it('gives up after maxAttempts consecutive failed attempts', () => {
    const { conn, sockets, timers, of } = harness({ reconnect: { initialMs: 10, maxAttempts: 2 } });
    conn.start();
    sockets[0].drop(1006);
    timers.advance(10);
    sockets[1].drop(1006);
    timers.advance(20);
    sockets[2].drop(1006, 'still down');
    expect(sockets).toHaveLength(3);
    expect(conn.state).toBe('failed');
    expect(of('disconnected').map((e) => e.retryInMs)).toEqual([10, 20, null]);
    expect(of('failed')[0].error).toMatchObject({ code: 1006, message: 'gave up after 2 failed connection attempts (last close 1006: still down)' });
    timers.advance(1e9);
    expect(sockets).toHaveLength(3);
  });

  it('does not reconnect after a fatal close code', () => {
    for (const code of [CLOSE.badHello, CLOSE.unauthorized, CLOSE.unsupportedProtocol, CLOSE.superseded]) {
      const { conn, sockets, timers, of } = harness();
      conn.start();
      sockets[0].open();
      sockets[0].drop(code, 'nope');
      timers.advance(1e9);
      expect(sockets).toHaveLength(1);
      expect(conn.state).toBe('failed');
      expect(of('disconnected')).toEqual([{ type: 'disconnected', code, reason: 'nope', retryInMs: null }]);
      expect(of('failed')[0].error).toMatchObject({ code, message: `the server refused this client (${code}: nope)` });
    }
  });

  it('retries with backoff when the token is in use, the server is full, or the hello timed out', () => {
    for (const code of [CLOSE.tokenInUse, CLOSE.tryAgainLater, CLOSE.helloTimeout, CLOSE.goingAway]) {
      const { conn, sockets, timers, of } = harness({ reconnect: { initialMs: 50 } });
      conn.start();
      sockets[0].open();
      sockets[0].drop(code);
      expect(sockets).toHaveLength(1); // before the delay
      timers.advance(50);
      expect(sockets).toHaveLength(2);
      sockets[1].open();
      sockets[1].drop(code); // not welcomed: the backoff grows
      expect(of('disconnected').map((e) => e.retryInMs)).toEqual([50, 100]);
      expect(conn.state).toBe('connecting');
    }
  });

  it('drops a connection whose welcome is invalid and reconnects with backoff', async () => {
    const { conn, sockets, timers, of } = harness({ reconnect: { initialMs: 40 } });
    conn.start();
    sockets[0].open();
    sockets[0].text({ ...welcome, fingerprint: 42 });
    expect(of('invalid-message')[0].invalid).toEqual({ kind: 'text', messageType: 'welcome', error: expect.stringMatching(/^invalid welcome message from the server: fingerprint: /) });
    expect(of('connected')).toEqual([]);
    expect(sockets[0].closedWith).toEqual({ code: CLOSE.normal, reason: 'invalid welcome from the server' });
    expect(of('disconnected')).toEqual([{ type: 'disconnected', code: 1002, reason: 'invalid welcome from the server', retryInMs: 40 }]);
    await tick(); // the socket's own close event comes later and is ignored
    expect(of('disconnected')).toHaveLength(1);
    timers.advance(40);
    sockets[1].open();
    sockets[1].text(welcome);
    expect(conn.state).toBe('connected');
  });

  it('fails when the welcome names a protocol version the client did not offer', () => {
    const { conn, sockets, of } = harness();
    conn.start();
    sockets[0].open();
    sockets[0].text({ ...welcome, protocol: 7 });
    expect(conn.state).toBe('failed');
    expect(of('failed')[0].error).toMatchObject({ code: CLOSE.unsupportedProtocol, message: expect.stringContaining('protocol 7') });
    expect(sockets[0].closedWith?.code).toBe(CLOSE.normal);
  });

  it('stop() closes the socket, cancels a pending reconnect and sends nothing more', async () => {
    const { conn, sockets, timers } = harness();
    conn.start();
    sockets[0].drop(1006);
    conn.stop();
    timers.advance(1e9);
    expect(sockets).toHaveLength(1);
    expect(conn.state).toBe('stopped');

    const h = harness();
    h.conn.start();
    const s = h.welcomeLatest();
    h.conn.stop(CLOSE.normal, 'bye');
    expect(s.closedWith).toEqual({ code: CLOSE.normal, reason: 'bye' });
    await tick();
    expect(h.events.filter((e) => e.type === 'disconnected')).toEqual([]);
    expect(h.conn.send({ type: 'get-global' })).toBe(false);
  });
});
