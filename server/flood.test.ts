/**
 * Admission over real sockets (server/admission.ts wired by server/transport.ts): a flood of hello-less
 * sockets cannot lock hospitals out (from other addresses, and, for hospitals that present their upgrade
 * credential, from their own), the unauthenticated budget per address and in all, the upgrade credential
 * (outside that budget, one per hospital, wrong ones throttled, the hello must match it), the backoff after
 * failed sign-ins, and the WebSocket Origin allow-list.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { FederationClient } from '../shared/protocol/federationClient.ts';
import { CLOSE } from '../shared/protocol/messages.ts';
import { upgradeKey, upgradeProtocols } from '../shared/protocol/upgradeAuth.ts';
import { parseTrustedProxies } from './admission.ts';
import { startFlood, loopbackAddresses, type Flood } from './testing/flood.ts';
import { constantTrainer, getMetrics, nodeClient, RawPeer, startTestServer, tokenOf, until, type TestServer } from './testing/federation.ts';

let server: TestServer | undefined;
let flood: Flood | undefined;
const clients: FederationClient[] = [];
const raws: RawPeer[] = [];

afterEach(async () => {
  await flood?.stop();
  flood = undefined;
  for (const c of clients.splice(0)) c.stop();
  for (const r of raws.splice(0)) r.close();
  await server?.cleanup();
  server = undefined;
});

/** A raw socket from `localAddress` (127.0.0.x), optionally with an Origin header, other headers or subprotocols. */
function raw(s: TestServer, opts: { localAddress?: string; origin?: string; headers?: Record<string, string>; protocols?: string[] } = {}): RawPeer {
  const r = new RawPeer(s.wsUrl, opts);
  raws.push(r);
  return r;
}

/** `ws` with its first message (the hello) sent `ms` later: a client one round trip of `ms` away. */
function helloAfter(ms: number, ws: WebSocket): WebSocket {
  const send = ws.send.bind(ws) as (data: unknown) => void;
  let first = true;
  (ws as { send: (data: unknown) => void }).send = (data) => {
    if (!first) return send(data);
    first = false;
    setTimeout(() => ws.readyState === ws.OPEN && send(data), ms);
  };
  return ws;
}

/** Fail with `what` instead of hanging when `p` does not settle in time. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: not done within ${ms / 1000} s`)), ms)))]).finally(() => clearTimeout(t));
}

/** Open a socket, say hello with `hospital`'s token, wait for the welcome (true) or a refusal (false); then close. */
async function tryJoin(s: TestServer, hospital: string, timeoutMs = 10_000): Promise<boolean> {
  const p = new RawPeer(s.wsUrl);
  try {
    await p.opened;
    p.send({ type: 'hello', protocols: [2], token: tokenOf(hospital), clientId: `probe-${hospital}` });
    const r = await p.waitFor(() => p.messages.find((m) => m.text?.type === 'welcome') ?? p.closed, timeoutMs);
    return 'text' in r;
  } catch {
    return false;
  } finally {
    p.close();
  }
}

describe('admission over real sockets', () => {
  it('a flood of 300 hello-less sockets from 10 addresses, refreshed as they drop, does not keep two hospitals from joining and finishing a round', async () => {
    server = await startTestServer({ rounds: 1, fraction: 1, minFit: 2, minAvailable: 2, minCompletion: 2 }, { hospitals: ['h1', 'h2', 'h3'] });
    const t0 = Date.now();
    // Each dropped socket is reopened after 20 ms (the flood shares this process, and its 2 cores, with the server).
    flood = startFlood(server.wsUrl, { sockets: 300, addresses: loopbackAddresses(10), reopenMs: 20 });
    // The flood holds the unauthenticated budget (64) before anyone tries to join.
    await until(() => server!.transport.unauthenticatedCount >= 60 && flood!.opened >= 300, 20_000, 'the flood to fill the unauthenticated budget');

    // Joins one after another during the flood (a third hospital, so the round below is not affected).
    // Each waits behind the flood's queued handshakes: seconds on a loaded 2-core machine, but it gets in.
    let joined = 0;
    for (let i = 0; i < 3; i++) if (await tryJoin(server, 'h3')) joined++;
    expect(joined).toBe(3);
    await until(() => server!.transport.peers().length === 0, 5000, 'the probes to leave');

    // Two hospitals join and finish a round while the flood goes on.
    const runs = ['h1', 'h2'].map((h, k) => {
      const c = nodeClient(server!, h, constantTrainer(k + 1, 10));
      clients.push(c);
      return c.run();
    });
    const results = await within(20_000, 'the round during the flood', Promise.all(runs));
    expect(results.map((r) => r.rounds)).toEqual([1, 1]);
    expect(server.federation.state.history[0]).toMatchObject({ round: 1, participants: 2 });
    // The flood was still on, and was being cut back to its budget.
    expect(server.transport.unauthenticatedCount).toBeLessThanOrEqual(64);
    await flood.stop();
    await new Promise((r) => setTimeout(r, 500)); // upgrades already under way when the flood stopped
    server.transport.flushAdmissionLog(true);
    const seconds = (Date.now() - t0) / 1000;
    const m = await getMetrics(`${server.url}/metrics`);
    // Once 300 had opened, all but 64 of them had been closed to make room.
    const evicted = m.get('fedgan_refusals_total{reason="unauthenticated-budget"}')!;
    expect(evicted).toBeGreaterThanOrEqual(300 - 64);
    expect(m.get('fedgan_refusals_total{reason="server-full"}') ?? 0).toBe(0);
    // Logged in summary: the first at once, then a line every 10 s, together counting every closed socket.
    const lines = server.logLines.filter((l) => l.includes('unauthenticated connection'));
    expect(lines.length).toBeLessThanOrEqual(2 + Math.ceil(seconds / 10));
    expect(server.logLines.length).toBeLessThan(40); // over a thousand sockets, a few dozen lines in all
    expect(lines.reduce((n, l) => n + Number(/closed (\d+) unauthenticated/.exec(l)![1]), 0)).toBe(evicted);
    expect(lines.some((l) => /closed \d+ unauthenticated connections \(no hello yet\) to make room for new ones .* from 10 addresses in the last \d+ s/.test(l))).toBe(true);
    expect(lines[0]).toMatch(/^WARN closed 1 unauthenticated connection \(no hello yet\) to make room .* from 127\.0\.0\.\d+ \(more are summarised every 10 s\)$/);
  }, 60_000);

  it("a flood of hello-less sockets from the hospitals' own address: two hospitals with their upgrade credential join at the first attempt and finish a round", async () => {
    server = await startTestServer({ rounds: 1, fraction: 1, minFit: 2, minAvailable: 2, minCompletion: 2 }, { hospitals: ['h1', 'h2'] });
    // Every flood socket comes from 127.0.0.1, as the hospitals do (one NAT, or an ingress without TRUSTED_PROXIES).
    flood = startFlood(server.wsUrl, { sockets: 100, addresses: ['127.0.0.1'], reopenMs: 20 });
    await until(() => server!.transport.unauthenticatedCount >= 8 && flood!.opened >= 100, 20_000, 'the flood to fill the address budget');
    const evictedBefore = (await getMetrics(`${server.url}/metrics`)).get('fedgan_refusals_total{reason="unauthenticated-budget"}')!;
    const seen: Record<string, string[]> = { h1: [], h2: [] };
    const runs = ['h1', 'h2'].map((h, k) => {
      const c = nodeClient(server!, h, constantTrainer(k + 1, 10), {
        onEvent: (e) => seen[h].push(e.type === 'disconnected' ? `disconnected ${e.code}` : e.type),
        // Hospitals 100 ms away: the hello arrives 100 ms after the upgrade, long enough for the flood to
        // open more than the address's budget of sockets meanwhile (without the credential, they are closed).
        createSocket: (url, protocols) => helloAfter(100, new WebSocket(url, protocols)),
      });
      clients.push(c);
      return c.run();
    });
    const results = await within(20_000, 'the round during the flood', Promise.all(runs));
    expect(results.map((r) => r.rounds)).toEqual([1, 1]);
    expect(server.federation.state.history[0]).toMatchObject({ round: 1, participants: 2 });
    // At the first attempt: no connection of theirs was closed before their welcome.
    for (const h of ['h1', 'h2']) expect(seen[h].slice(0, seen[h].indexOf('connected'))).not.toContainEqual(expect.stringMatching(/^disconnected/));
    // The flood went on meanwhile, cut back to the address's budget.
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_refusals_total{reason="unauthenticated-budget"}')! - evictedBefore).toBeGreaterThan(20);
    expect(server.transport.unauthenticatedCount).toBeLessThanOrEqual(8);
    expect(m.get('fedgan_refusals_total{reason="credential-replaced"}') ?? 0).toBe(0);
  }, 60_000);

  it('lets a socket with a hospital\'s upgrade credential wait for its hello outside the budget, one per hospital', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 3, limits: { maxConnections: 3, maxUnauthenticated: 2, maxUnauthenticatedPerAddress: 2 } });
    const waiting = [raw(server), raw(server)];
    for (const p of waiting) await p.opened;
    await until(() => server!.transport.unauthenticatedCount === 2, 2000, 'two waiting sockets');
    // The server selects "fedgan", never the credential.
    const h1 = raw(server, { protocols: upgradeProtocols(tokenOf('h1')) });
    await h1.opened;
    expect(h1.ws.protocol).toBe('fedgan');
    expect(server.transport.unauthenticatedCount).toBe(2); // not counted in the budget, and nobody was closed for it
    // More sockets without a credential close each other, never the credentialed one.
    const more = [raw(server), raw(server)];
    for (const p of more) await p.opened;
    for (const p of waiting) expect((await p.waitClose()).code).toBe(CLOSE.tryAgainLater);
    expect(h1.closed).toBeUndefined();
    // maxConnections (3): h1 + h2 waiting + 2 without a credential is 4: the older of those is closed to make room.
    const h2 = raw(server, { protocols: [`fedgan.auth.${upgradeKey(tokenOf('h2'))}`, 'fedgan'] });
    await h2.opened;
    expect(h2.ws.protocol).toBe('fedgan');
    expect((await more[0].waitClose()).code).toBe(CLOSE.tryAgainLater);
    expect(more[1].closed).toBeUndefined();
    // A newer socket with h2's credential replaces the older one, which had not said hello.
    const h2b = raw(server, { protocols: upgradeProtocols(tokenOf('h2')) });
    await h2b.opened;
    expect(await h2.waitClose()).toEqual({ code: CLOSE.tryAgainLater, reason: 'replaced by a newer connection with the same credential before its hello' });
    await h1.hello('h1');
    await h2b.hello('h2');
    expect(server.transport.peers().map((p) => p.hospital).sort()).toEqual(['h1', 'h2']);
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_refusals_total{reason="credential-replaced"}')).toBe(1);
    expect(m.get('fedgan_refusals_total{reason="unauthenticated-budget"}')).toBe(3);
  });

  it('refuses a wrong upgrade credential with 4001 and counts it as a failed sign-in; the right one still gets in from that address', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 3, limits: { authFailuresBeforeBackoff: 2, authBackoffSeconds: 30, authBackoffMaxSeconds: 60 } });
    const attempt = async (protocols: string[]) => {
      const p = raw(server!, { protocols });
      await p.opened;
      const closed = await p.waitClose();
      return { ...closed, error: p.messages[0]?.text };
    };
    const wrong = upgradeProtocols('not-the-token-of-any-hospital');
    const first = await attempt(wrong);
    expect(first).toEqual({
      code: CLOSE.unauthorized,
      reason: 'unknown token',
      error: { type: 'error', code: 'unauthorized', message: "unknown token: the upgrade request's fedgan.auth.… key matches no hospital's token" },
    });
    expect((await attempt(['fedgan', 'fedgan.auth.not-a-key'])).code).toBe(CLOSE.unauthorized); // malformed: a failure too
    expect((await attempt(wrong)).code).toBe(CLOSE.unauthorized); // the third: the address now waits 30 s
    const during = await attempt(wrong);
    expect({ code: during.code, reason: during.reason }).toEqual({ code: CLOSE.tryAgainLater, reason: 'too many unknown tokens from this address: try again in 30 s' });
    // A socket without a credential from the address is refused during the wait…
    expect((await attempt([])).code).toBe(CLOSE.tryAgainLater);
    // …but a hospital that presents its credential is not held back by the failures of others at its address.
    const welcome = await raw(server, { protocols: upgradeProtocols(tokenOf('h1')) }).hello('h1');
    expect(welcome).toMatchObject({ type: 'welcome', hospital: 'h1' });
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_refusals_total{reason="unauthorized"}')).toBe(3);
    expect(m.get('fedgan_refusals_total{reason="auth-backoff"}')).toBe(2);
    server.transport.flushAdmissionLog(true);
    expect(server.logLines.filter((l) => l.includes('unknown token'))).toEqual([
      expect.stringMatching(/^WARN refused 1 sign-in with an unknown token .* from 127\.0\.0\.1: "a key in the upgrade request that matches no token" \(more are summarised every 10 s\)$/),
      expect.stringMatching(/^WARN refused 1 connection during a sign-in backoff .* from 127\.0\.0\.1 \(more are summarised/),
      expect.stringMatching(/^WARN refused 2 sign-ins with an unknown token .* from 1 address in the last \d+ s \(127\.0\.0\.1\), e\.g\. "fedgan\.auth\.… is not followed by a key of 43 base64url characters"$/),
      expect.stringMatching(/^WARN refused 1 connection during a sign-in backoff .* from 1 address in the last \d+ s \(127\.0\.0\.1\)$/),
    ]);
  });

  it("refuses a hello whose token is not the one the upgrade credential was made from (4001, a failed sign-in)", async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 3 });
    const p = raw(server, { protocols: upgradeProtocols(tokenOf('h1')) });
    await p.opened;
    p.send({ type: 'hello', protocols: [3], token: tokenOf('h2'), clientId: 'mixed' });
    expect(await p.waitClose()).toEqual({ code: CLOSE.unauthorized, reason: "unknown token: the hello's token is not the one the upgrade request's key was made from" });
    expect(p.messages[0]?.text).toMatchObject({ type: 'error', code: 'unauthorized' });
    // An unknown token in the hello of a credentialed socket is refused as ever.
    const q = raw(server, { protocols: upgradeProtocols(tokenOf('h1')) });
    await q.opened;
    q.send({ type: 'hello', protocols: [3], token: 'an-unknown-token-0123456789', clientId: 'guess' });
    expect((await q.waitClose()).code).toBe(CLOSE.unauthorized);
    expect(server.transport.peers()).toEqual([]);
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_refusals_total{reason="unauthorized"}')).toBe(2);
    server.transport.flushAdmissionLog(true);
    expect(server.logLines.filter((l) => l.includes('unknown token'))[0]).toMatch(
      /^WARN refused 1 sign-in with an unknown token .* from 127\.0\.0\.1: "a hello whose token is not the one of the upgrade request's key \(h1\)"/,
    );
    // The same socket's hospital gets in with its own token.
    await raw(server, { protocols: upgradeProtocols(tokenOf('h1')) }).hello('h1');
  });

  it('keeps the unauthenticated budget per address and in all, and never closes an authenticated hospital for it', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 3, limits: { maxUnauthenticated: 5, maxUnauthenticatedPerAddress: 3 } });
    const hospital = raw(server, { localAddress: '127.0.0.2' });
    await hospital.hello('h1');
    // Per address: a fourth waiting socket from 127.0.0.2 closes that address's oldest, not the hospital.
    const a = [0, 1, 2].map(() => raw(server!, { localAddress: '127.0.0.2' }));
    for (const p of a) await p.opened;
    await until(() => server!.transport.unauthenticatedCount === 3, 2000, 'three waiting sockets');
    const a4 = raw(server, { localAddress: '127.0.0.2' });
    await a4.opened;
    const closed = await a[0].waitClose();
    expect(closed).toEqual({ code: CLOSE.tryAgainLater, reason: 'too many connections waiting for a hello: send it at once after connecting' });
    expect(a[1].closed).toBeUndefined();
    // In all: 3 from 127.0.0.2 + 2 from 127.0.0.3 fill the 5; one more from 127.0.0.4 closes 127.0.0.2's oldest.
    const b = [0, 1].map(() => raw(server!, { localAddress: '127.0.0.3' }));
    for (const p of b) await p.opened;
    const c = raw(server, { localAddress: '127.0.0.4' });
    await c.opened;
    expect((await a[1].waitClose()).code).toBe(CLOSE.tryAgainLater);
    await until(() => server!.transport.unauthenticatedCount === 5, 2000, 'the budget to be full');
    expect(b.every((p) => p.closed === undefined)).toBe(true);
    // A waiting socket that says hello becomes a hospital's connection and leaves the budget.
    await c.hello('h2');
    expect(server.transport.unauthenticatedCount).toBe(4);
    expect(hospital.closed).toBeUndefined();
    expect(server.transport.peers().map((p) => p.hospital).sort()).toEqual(['h1', 'h2']);
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_refusals_total{reason="unauthenticated-budget"}')).toBe(2);
    expect(m.get('fedgan_unauthenticated_connections')).toBe(4);
  });

  it('makes an address wait after repeated unknown tokens, refusing it at once with 1013, and logs it in summary', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 2, limits: { authFailuresBeforeBackoff: 2, authBackoffSeconds: 3, authBackoffMaxSeconds: 10 } });
    const wrong = async () => {
      const p = raw(server!, { localAddress: '127.0.0.5' });
      await p.opened;
      p.send({ type: 'hello', protocols: [2], token: 'not-a-valid-token-at-all', clientId: 'guesser' });
      return (await p.waitClose()).code;
    };
    // Two sockets opened before the failures, waiting with their hello.
    const early = [raw(server, { localAddress: '127.0.0.5' }), raw(server, { localAddress: '127.0.0.5' })];
    for (const p of early) await p.opened;
    expect([await wrong(), await wrong(), await wrong()]).toEqual([CLOSE.unauthorized, CLOSE.unauthorized, CLOSE.unauthorized]);
    const t0 = Date.now(); // the address waits 3 s from about now
    // Their hellos are not looked at while the address waits (no parallel guessing on sockets opened earlier).
    early[0].send({ type: 'hello', protocols: [2], token: tokenOf('h1'), clientId: 'raw-h1' });
    early[1].send({ type: 'hello', protocols: [2], token: 'another-wrong-token-guess', clientId: 'guesser' });
    for (const p of early) expect((await p.waitClose()).code).toBe(CLOSE.tryAgainLater);
    // Even a valid token is not looked at meanwhile.
    const during: number[] = [];
    for (let i = 0; i < 10; i++) {
      const p = raw(server, { localAddress: '127.0.0.5' });
      p.ws.on('open', () => p.send({ type: 'hello', protocols: [2], token: tokenOf('h1'), clientId: 'raw-h1' }));
      const closed = await p.waitClose();
      during.push(closed.code);
      if (i === 0) expect(closed.reason).toMatch(/^too many unknown tokens from this address: try again in [123] s$/);
    }
    expect(Date.now() - t0).toBeLessThan(2900); // (else the wait was over before the check: a machine far too slow for this test)
    expect(new Set(during)).toEqual(new Set([CLOSE.tryAgainLater]));
    // Another address is not affected.
    await raw(server, { localAddress: '127.0.0.6' }).hello('h2');
    // After the wait, the right token gets in from that address.
    await new Promise((r) => setTimeout(r, 3100 - (Date.now() - t0)));
    await raw(server, { localAddress: '127.0.0.5' }).hello('h1');

    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_refusals_total{reason="unauthorized"}')).toBe(3);
    expect(m.get('fedgan_refusals_total{reason="auth-backoff"}')).toBe(12);
    server.transport.flushAdmissionLog(true);
    const signIns = server.logLines.filter((l) => l.includes('unknown token'));
    expect(signIns).toEqual([
      expect.stringMatching(/^WARN refused 1 sign-in with an unknown token .* from 127\.0\.0\.5 \(more are summarised every 10 s\)$/),
      expect.stringMatching(/^WARN refused 1 connection during a sign-in backoff \(too many unknown tokens from the address\) from 127\.0\.0\.5 \(more are summarised every 10 s\)$/),
      expect.stringMatching(/^WARN refused 2 sign-ins with an unknown token .* from 1 address in the last \d+ s \(127\.0\.0\.5\), e\.g\. "3 in a row; this address now waits 3 s"$/),
      expect.stringMatching(/^WARN refused 11 connections during a sign-in backoff \(too many unknown tokens from the address\) from 1 address in the last \d+ s \(127\.0\.0\.5\)$/),
    ]);
  });

  it('behind a trusted proxy, counts the budget per client address from X-Forwarded-For', async () => {
    server = await startTestServer(
      { rounds: 1, minAvailable: 3, limits: { maxUnauthenticatedPerAddress: 2 } },
      { trustedProxies: parseTrustedProxies('127.0.0.0/8').proxies },
    );
    const via = (client: string) => raw(server!, { headers: { 'X-Forwarded-For': `10.9.9.9, ${client}` } });
    const a = [via('203.0.113.7'), via('203.0.113.7')];
    const other = via('198.51.100.1');
    for (const p of [...a, other]) await p.opened;
    await until(() => server!.transport.unauthenticatedCount === 3, 2000, 'three waiting sockets');
    await via('203.0.113.7').opened;
    expect((await a[0].waitClose()).code).toBe(CLOSE.tryAgainLater);
    expect(other.closed).toBeUndefined();
    expect(a[1].closed).toBeUndefined();
    expect(server.logLines.find((l) => l.includes('unauthenticated connection'))).toMatch(/from 203\.0\.113\.7 \(more are summarised/);
  });

  it('refuses a WebSocket from a web origin that is not allowed (403, logged), and lets the own, listed and no-Origin clients in', async () => {
    server = await startTestServer(
      { rounds: 1, minAvailable: 5 },
      { allowedOrigins: ['https://partner.example.org'], publicUrl: 'https://fedgan.example.org' },
    );
    const refused = await new Promise<{ status: number; body: string }>((res, rej) => {
      const ws = new WebSocket(server!.wsUrl, { origin: 'https://evil.example' });
      ws.on('open', () => rej(new Error('the upgrade was accepted')));
      ws.on('error', () => {});
      ws.on('unexpected-response', (_req, r) => {
        let body = '';
        r.on('data', (d: Buffer) => (body += d));
        r.on('end', () => res({ status: r.statusCode!, body }));
      });
    });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('The web origin "https://evil.example" may not open this federation\'s WebSocket');
    await raw(server, { origin: server.url }).hello('h1'); // the served app (same host)
    await raw(server, { origin: 'https://fedgan.example.org' }).hello('h2'); // PUBLIC_URL
    await raw(server, { origin: 'https://partner.example.org' }).hello('h3'); // ALLOWED_ORIGINS
    await raw(server).hello('h4'); // no Origin: a Node hospital
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_refusals_total{reason="origin"}')).toBe(1);
    expect(server.logLines.filter((l) => l.includes('origin'))).toEqual([
      expect.stringMatching(/^WARN refused 1 WebSocket upgrade from a web origin that is not allowed \(ALLOWED_ORIGINS\) from 127\.0\.0\.1: "https:\/\/evil\.example"/),
    ]);
  });
});
