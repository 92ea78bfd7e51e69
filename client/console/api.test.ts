import { describe, expect, it } from 'vitest';
import { upgradeKey } from '../../shared/protocol/upgradeAuth.ts';
import { ConsoleApi, ConsoleError, HOSPITAL_TOKEN, LiveFeed, refusal, WRONG_TOKEN, type LiveSocket, type LiveState, type Overview } from './api.ts';

const TOKEN = 'operator-secret-0123456789';

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
}

/** A fake console server: routes `METHOD path` to a response; records every call. */
function fakeServer(routes: Record<string, (call: Call) => Response>) {
  const calls: Call[] = [];
  const fetchFn = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const call: Call = { url, method: init?.method ?? 'GET', headers: { ...(init?.headers as Record<string, string>) }, ...(typeof init?.body === 'string' ? { body: init.body } : {}) };
    calls.push(call);
    const u = new URL(url);
    const route = routes[`${call.method} ${u.pathname}${u.search}`] ?? routes[`${call.method} ${u.pathname}`];
    if (!route) return new Response(JSON.stringify({ error: `no route ${call.method} ${u.pathname}` }), { status: 404 });
    const authorised = call.headers.Authorization === `Bearer ${TOKEN}`;
    if (!authorised) return new Response(JSON.stringify({ error: 'wrong operator token' }), { status: 401 });
    return route(call);
  }) as typeof fetch;
  return { calls, fetchFn };
}

const json = (v: unknown, status = 200, headers: Record<string, string> = {}) => new Response(JSON.stringify(v), { status, headers: { 'Content-Type': 'application/json', ...headers } });

const OVERVIEW: Overview = {
  federation: { phase: 'training', paused: false, stopped: false, round: 2, totalRounds: 5, attempt: 1, deadline: '2026-12-02T23:00:00.000Z' },
  hospitals: [{ name: 'h1', online: true, sampled: true, progress: 0.5, lastUpdateAt: null, examplesDeclared: 24, failures: [], epsilon: null, revoked: false }],
  history: [],
};

describe('ConsoleApi', () => {
  it('sends the operator token as a bearer token to origin-absolute /api/console URLs, and JSON bodies', async () => {
    const s = fakeServer({
      'GET /api/console/overview': () => json(OVERVIEW),
      'POST /api/console/rounds': () => json({ ok: true }),
      'PATCH /api/console/settings': () => json({ ok: true }),
      'POST /api/console/hospitals/st%20mary/revoke': () => json({ ok: true }),
    });
    const api = new ConsoleApi({ origin: 'https://fed.example.org/console#hospitals', token: TOKEN, fetch: s.fetchFn });
    expect(await api.overview()).toEqual(OVERVIEW);
    await api.setRounds(8);
    await api.patchSettings({ localSteps: 40 });
    await api.revoke('st mary');
    expect(s.calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      'GET https://fed.example.org/api/console/overview',
      'POST https://fed.example.org/api/console/rounds',
      'PATCH https://fed.example.org/api/console/settings',
      'POST https://fed.example.org/api/console/hospitals/st%20mary/revoke',
    ]);
    expect(s.calls.every((c) => c.headers.Authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(JSON.parse(s.calls[1].body!)).toEqual({ totalRounds: 8 });
    expect(s.calls[1].headers['Content-Type']).toBe('application/json');
    expect(JSON.parse(s.calls[2].body!)).toEqual({ localSteps: 40 });
    expect(s.calls[0].body).toBeUndefined();
  });

  it('turns a wrong token, a hospital token and a throttled address into messages an operator can act on', async () => {
    const wrong = new ConsoleApi({ origin: 'http://x', token: 'nope-nope-nope-nope', fetch: fakeServer({ 'GET /api/console/overview': () => json(OVERVIEW) }).fetchFn });
    const e401 = await wrong.overview().catch((e: unknown) => e);
    expect(e401).toBeInstanceOf(ConsoleError);
    expect((e401 as ConsoleError).status).toBe(401);
    expect((e401 as ConsoleError).message).toBe(WRONG_TOKEN);
    expect((e401 as ConsoleError).signInAgain).toBe(true);

    const hospital = new ConsoleApi({ origin: 'http://x', token: TOKEN, fetch: fakeServer({ 'GET /api/console/overview': () => json({ error: 'this is a hospital token, not the operator token' }, 403) }).fetchFn });
    const e403 = (await hospital.overview().catch((e: unknown) => e)) as ConsoleError;
    expect([e403.status, e403.message, e403.signInAgain]).toEqual([403, HOSPITAL_TOKEN, true]);

    const throttled = new ConsoleApi({ origin: 'http://x', token: TOKEN, fetch: fakeServer({ 'GET /api/console/overview': () => json({ error: 'too many wrong operator tokens' }, 429, { 'Retry-After': '8' }) }).fetchFn });
    const e429 = (await throttled.overview().catch((e: unknown) => e)) as ConsoleError;
    expect(e429.message).toBe('Too many wrong tokens were tried from this computer. Wait 8 s and try again.');
    expect([e429.retryAfterSeconds, e429.signInAgain]).toEqual([8, false]);
  });

  it('keeps the server’s reason and the field it names for a refused setting', async () => {
    const s = fakeServer({
      'PATCH /api/console/settings': () => json({ error: 'localSteps: must be at least 1', field: 'localSteps' }, 400),
      'POST /api/console/rounds': () => json({ issues: [{ path: ['totalRounds'], message: 'must be at least 3 (rounds already complete)' }] }, 400),
      'POST /api/console/pause': () => json({ error: 'the federation is stopped: it cannot be paused' }, 409),
    });
    const api = new ConsoleApi({ origin: 'http://x', token: TOKEN, fetch: s.fetchFn });
    const e1 = (await api.patchSettings({ localSteps: 0 }).catch((e: unknown) => e)) as ConsoleError;
    expect([e1.status, e1.message, e1.field]).toEqual([400, 'localSteps: must be at least 1', 'localSteps']);
    const e2 = (await api.setRounds(1).catch((e: unknown) => e)) as ConsoleError;
    expect([e2.message, e2.field]).toEqual(['must be at least 3 (rounds already complete)', 'totalRounds']);
    const e3 = (await api.pause().catch((e: unknown) => e)) as ConsoleError;
    expect([e3.status, e3.message, e3.signInAgain]).toEqual([409, 'the federation is stopped: it cannot be paused', false]);
  });

  it('says the server cannot be reached when fetch fails, and reads a plain-text refusal', async () => {
    const api = new ConsoleApi({ origin: 'http://x', token: TOKEN, fetch: (async () => Promise.reject(new TypeError('Failed to fetch'))) as typeof fetch });
    const e = (await api.overview().catch((x: unknown) => x)) as ConsoleError;
    expect(e.status).toBe(0);
    expect(e.message).toMatch(/^The federation server cannot be reached \(Failed to fetch\)/);
    expect(refusal(500, 'disk full\n', null).message).toBe("The federation server failed to do this (500): disk full. Try again; if it keeps failing, read the server's log.");
  });

  it('downloads the checkpoint and the audit export with the name the server gives, or a default', async () => {
    const bytes = new Uint8Array([1, 2, 3, 4]);
    const s = fakeServer({
      'GET /api/console/checkpoint': () => new Response(bytes, { headers: { 'Content-Disposition': 'attachment; filename="round-000003.fgw"' } }),
      'GET /api/console/audit.jsonl': () => new Response('{"type":"a"}\n'),
      'GET /api/console/audit?type=hospital-added&hospital=h1': () => json({ events: [{ at: '2026-12-02T22:00:00Z', type: 'hospital-added', hospital: 'h1' }] }),
      'GET /api/console/samples': () => json({ samples: [{ round: 1, url: '/api/console/samples/1.png' }] }),
    });
    const api = new ConsoleApi({ origin: 'http://x', token: TOKEN, fetch: s.fetchFn });
    const cp = await api.checkpoint();
    expect(cp.fileName).toBe('round-000003.fgw');
    expect(new Uint8Array(await cp.blob.arrayBuffer())).toEqual(bytes);
    expect((await api.auditExport()).fileName).toBe('fedgan-audit.jsonl');
    expect(await api.audit({ type: 'hospital-added', hospital: 'h1', since: '' })).toHaveLength(1);
    expect(await api.samples()).toEqual([{ round: 1, url: '/api/console/samples/1.png' }]);
  });

  it('opens the live socket on ws: or wss: like the page, with the console subprotocol and the token’s upgrade key (never the token)', () => {
    const plain = new ConsoleApi({ origin: 'http://127.0.0.1:8080', token: TOKEN }).live();
    expect(plain.url).toBe('ws://127.0.0.1:8080/api/console/live');
    const tls = new ConsoleApi({ origin: 'https://fed.example.org', token: TOKEN }).live();
    expect(tls.url).toBe('wss://fed.example.org/api/console/live');
    expect(tls.protocols).toEqual(['fedgan-console', `fedgan.auth.${upgradeKey(TOKEN)}`]);
    expect(tls.protocols.join()).not.toContain(TOKEN);
  });
});

class FakeSocket implements LiveSocket {
  onopen: ((e: unknown) => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;
  closed = false;
  close(): void {
    this.closed = true;
  }
}

describe('LiveFeed', () => {
  it('passes overview messages on, reconnects after 1, 2, 4 … s (capped), and starts over once a socket opens', () => {
    const sockets: FakeSocket[] = [];
    const states: LiveState[] = [];
    const overviews: Overview[] = [];
    const timers: { fn: () => void; ms: number }[] = [];
    let never = 0;
    const feed = new LiveFeed({
      url: 'ws://x/api/console/live',
      protocols: ['fedgan-console'],
      createSocket: () => {
        const s = new FakeSocket();
        sockets.push(s);
        return s;
      },
      onOverview: (o) => overviews.push(o),
      onState: (s) => states.push(s),
      onNeverOpened: () => never++,
      now: () => 1000,
      setTimer: (fn, ms) => timers.push({ fn, ms }),
      clearTimer: () => {},
      maxDelayMs: 4000,
    });
    feed.start();
    sockets[0].onopen!({});
    sockets[0].onmessage!({ data: JSON.stringify({ type: 'overview', ...OVERVIEW }) });
    sockets[0].onmessage!({ data: JSON.stringify({ type: 'something-else' }) });
    sockets[0].onmessage!({ data: 'not json' });
    expect(overviews).toEqual([OVERVIEW]);
    // Closed after it opened: retry in 1 s.
    sockets[0].onclose!({ code: 1006, reason: '' });
    expect(states.at(-1)).toEqual({ kind: 'retrying', retryAt: 2000, closedCode: 1006 });
    expect(never).toBe(0);
    // Each socket that never opens doubles the wait, up to the cap, and asks the page to check the token.
    for (const expected of [1000, 2000, 4000, 4000]) {
      expect(timers.at(-1)!.ms).toBe(expected);
      timers.at(-1)!.fn();
      sockets.at(-1)!.onclose!({ code: 1006, reason: '' });
    }
    expect(never).toBe(4);
    // One that opens resets the backoff.
    timers.at(-1)!.fn();
    sockets.at(-1)!.onopen!({});
    expect(states.at(-1)).toEqual({ kind: 'live' });
    sockets.at(-1)!.onclose!({ code: 1001, reason: 'server restart' });
    expect(timers.at(-1)!.ms).toBe(1000);
    // Stopped: the socket closes and no reconnect is scheduled.
    const before = timers.length;
    timers.at(-1)!.fn();
    feed.stop();
    expect(sockets.at(-1)!.closed).toBe(true);
    expect(timers.length).toBe(before);
  });
});
