/**
 * Privacy of participation and loose edges (issue 15, finding 5), through a real server:
 * /api/status shows aggregate progress to anyone and everything only to the operator; every HTTP response
 * says `Referrer-Policy: no-referrer`; client strings cannot forge log lines.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { federationInfoFromStatus } from '../client/federationInfo.ts';
import { parseTrustedProxies } from './admission.ts';
import { publicStatus, OperatorAuth } from './http.ts';
import { memoryLogger } from './log.ts';
import { Metrics } from './metrics.ts';
import { sha256Hex, TokenStore } from './auth.ts';
import { getMetrics, RawPeer, startTestServer, TEST_OPERATOR_TOKEN, tokenOf, type TestServer } from './testing/federation.ts';

const NAMES = ['northside-general', 'st-lucia-clinic', 'idle-hospital'];
let server: TestServer | undefined;
const peers: RawPeer[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  await server?.cleanup();
  server = undefined;
});

async function join(s: TestServer, hospital: string, extra: Record<string, unknown> = {}): Promise<RawPeer> {
  const p = new RawPeer(s.wsUrl);
  peers.push(p);
  await p.hello(hospital, extra);
  return p;
}

const statusOf = (s: TestServer, headers: Record<string, string> = {}) => fetch(`${s.url}/api/status`, { headers });

describe('/api/status', () => {
  it('without the operator token: aggregate progress only, no hospital name anywhere, no CORS wildcard; the web app still reads it', async () => {
    server = await startTestServer({ rounds: 2, minAvailable: 2, minFit: 2, minCompletion: 2 }, { hospitals: NAMES });
    await join(server, NAMES[0]);
    const b = await join(server, NAMES[1]);
    await b.waitBinary('round');
    const r = await statusOf(server);
    expect(r.status).toBe(200);
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
    const text = await r.text();
    for (const name of NAMES) expect(text).not.toContain(name);
    const s = JSON.parse(text);
    expect(s).toMatchObject({ view: 'public', round: 0, rounds: 2, phase: 'training', attempt: 1, hospitals: { connected: 2, sampled: 2, received: 0, reconnecting: 0 } });
    expect(s).not.toHaveProperty('connected');
    expect(s).not.toHaveProperty('sampled');
    expect(s).not.toHaveProperty('progress');
    // The web app's reading of it (classes, image size, history) works on the public view.
    expect(federationInfoFromStatus(s)).toMatchObject({ imageSize: 16, rounds: 2, round: 0, phase: 'training' });
  });

  it('with the operator token (Authorization: Bearer): everything, hospital names included', async () => {
    server = await startTestServer({ rounds: 2, minAvailable: 2, minFit: 2, minCompletion: 2 }, { hospitals: NAMES });
    await join(server, NAMES[0]);
    await join(server, NAMES[1]);
    const r = await statusOf(server, { Authorization: `Bearer ${TEST_OPERATOR_TOKEN}` });
    expect(r.status).toBe(200);
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
    const s = await r.json();
    expect(s).toMatchObject({ view: 'operator', connected: [NAMES[0], NAMES[1]].sort(), sampled: [NAMES[0], NAMES[1]].sort() });
  });

  it('a wrong operator token: 401, counted, logged in summary, and the address backs off (429) after a few', async () => {
    server = await startTestServer({}, { hospitals: NAMES });
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await statusOf(server, { Authorization: `Bearer not-the-operator-token-${i}` });
      codes.push(r.status);
      if (r.status === 401) expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
      if (r.status === 429) expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await r.text()).not.toContain(NAMES[0]);
    }
    // Three free tries, the fourth sets a 1 s wait: the fifth and sixth are throttled.
    expect(codes).toEqual([401, 401, 401, 401, 429, 429]);
    // Even the right token waits out the backoff.
    expect((await statusOf(server, { Authorization: `Bearer ${TEST_OPERATOR_TOKEN}` })).status).toBe(429);
    const m = await getMetrics(`${server.url}/metrics`);
    expect(m.get('fedgan_refusals_total{reason="operator-unauthorized"}')).toBe(4);
    expect(m.get('fedgan_refusals_total{reason="operator-throttled"}')).toBe(3);
    // One line for the first wrong token and one for the first throttled request, not one per attempt.
    const lines = server.logLines.filter((l) => l.includes('operator'));
    expect(lines).toEqual([
      expect.stringMatching(/^WARN operator sign-in \(\/api\/status, the console\): refused 1 wrong operator token .* from 127\.0\.0\.1 \(more are summarised every 60 s\)$/),
      expect.stringMatching(/^WARN operator sign-in \(\/api\/status, the console\): refused 1 request with an operator token during a backoff .* from 127\.0\.0\.1/),
    ]);
  });

  it('compares the token whole: a prefix, a longer token or another scheme is refused', () => {
    const auth = new OperatorAuth({ token: 'the-operator-secret-123', limits: { authFailuresBeforeBackoff: 100, authBackoffSeconds: 1, authBackoffMaxSeconds: 1 } });
    expect(auth.check('Bearer the-operator-secret-123', '10.0.0.1')).toEqual({ ok: true });
    expect(auth.check('bearer  the-operator-secret-123 ', '10.0.0.1')).toEqual({ ok: true });
    for (const h of ['Bearer the-operator-secret-12', 'Bearer the-operator-secret-1234', 'Basic the-operator-secret-123', 'the-operator-secret-123', 'Bearer ']) {
      expect(auth.check(h, '10.0.0.1')).toMatchObject({ ok: false, code: 401 });
    }
  });

  it('behind TRUSTED_PROXIES, counts wrong tokens under the client address the proxy names, not the proxy', () => {
    const { proxies } = parseTrustedProxies('10.1.0.0/16');
    const auth = new OperatorAuth({ token: 'the-operator-secret-123', trustedProxies: proxies, limits: { authFailuresBeforeBackoff: 1, authBackoffSeconds: 60, authBackoffMaxSeconds: 60 } });
    expect(auth.check('Bearer wrong-wrong-wrong-1', '10.1.2.3', '203.0.113.9')).toMatchObject({ code: 401 });
    expect(auth.check('Bearer wrong-wrong-wrong-2', '10.1.2.3', '203.0.113.9')).toMatchObject({ code: 401 });
    expect(auth.check('Bearer wrong-wrong-wrong-3', '10.1.2.3', '203.0.113.9')).toMatchObject({ code: 429 });
    // The operator behind the same ingress is not locked out by the attacker.
    expect(auth.check('Bearer the-operator-secret-123', '10.1.2.3', '198.51.100.7')).toEqual({ ok: true });
  });

  it('summarises a burst of wrong tokens in one line per window', () => {
    let t = 1_000_000;
    const log = memoryLogger();
    const metrics = new Metrics();
    const auth = new OperatorAuth({ token: 'the-operator-secret-123', log, metrics, now: () => t, summaryWindowMs: 10_000 });
    for (let i = 0; i < 50; i++) {
      auth.check(`Bearer guess-${i}-xxxxxxxxxxxx`, `10.0.0.${i % 5}`);
      t += 100;
    }
    // The first of each kind at once (wrong token; request during a backoff), the other 48 counted.
    expect(log.lines).toHaveLength(2);
    t += 10_000;
    auth.check('Bearer another-guess-xxxxxxxx', '10.0.1.1');
    expect(log.lines.slice(2)).toEqual([
      expect.stringMatching(/refused \d+ wrong operator tokens .* from 5 addresses in the last \d+ s/),
      expect.stringMatching(/refused \d+ requests with an operator token during a backoff .* from 5 addresses/),
    ]);
    expect(metrics.refusals.get({ reason: 'operator-unauthorized' }) + metrics.refusals.get({ reason: 'operator-throttled' })).toBe(51);
    auth.close();
  });

  it('publicStatus is built field by field: a field added to the full status stays private', () => {
    const full = {
      round: 1, rounds: 2, phase: 'waiting', attempt: null, connected: ['a-hospital'], sampled: [], received: [], deadline: null,
      progress: { 'a-hospital': 0.5 }, fingerprint: 'f', parameters: 3, config: {}, retry: { failedAttempts: 0, nextAttemptAt: null, stopped: false },
      history: [
        { round: 1, participants: 1, hospitals: ['a-hospital'], examples: 4, examplesMedian: 4, dLoss: 1, gLoss: 1, seconds: 1, attempts: 1, completedAt: 'x', perHospital: { 'a-hospital': 4 } },
      ],
      checkpoint: { writeFailures: 1, pending: { round: 2, failures: 1, lastError: 'EROFS: /state/a-hospital', nextRetryAt: null } },
      quality: { everyRounds: 5, features: 'tiny', best: null, latest: null },
      someNewField: { perHospital: { 'a-hospital': 1 } },
    };
    const p = publicStatus(full as never);
    expect(JSON.stringify(p)).not.toContain('a-hospital');
    expect(p.history[0]).toEqual({ round: 1, participants: 1, examples: 4, dLoss: 1, gLoss: 1, seconds: 1, attempts: 1, completedAt: 'x' });
    expect(p.checkpoint).toEqual({ writeFailures: 1, pending: { round: 2, failures: 1, nextRetryAt: null } });
  });
});

describe('operator entries of the tokens file', () => {
  const OPS = 'the-operators-own-token-42';
  it('parse apart from hospitals: an operator token never signs in as a hospital, and a file needs a hospital', () => {
    const store = TokenStore.parse(`- hospital: north\n  token: north-token-0123456789\n- operator: ops\n  sha256: ${sha256Hex(OPS)}\n`, 'tokens.yaml');
    expect(store.hospitals).toEqual(['north']);
    expect(store.authenticate(OPS)).toBeUndefined();
    expect(store.operatorSha256).toEqual([sha256Hex(OPS)]);
    expect(() => TokenStore.parse(`- operator: ops\n  token: ${OPS}\n`, 'only-ops.yaml')).toThrow('invalid only-ops.yaml: (root): must list at least one hospital');
    expect(() => TokenStore.parse(`- operator: ops\n  hospital: x\n  token: ${OPS}\n`, 't.yaml')).toThrow('needs exactly one of "hospital" or "operator"');
    expect(() => TokenStore.parse(`- hospital: x\n  token: ${OPS}\n- operator: ops\n  token: ${OPS}\n`, 't.yaml')).toThrow('1: duplicate token');
  });

  it('open the full /api/status like OPERATOR_TOKEN', async () => {
    const tokens = new TokenStore(NAMES.map((h) => ({ hospital: h, sha256: sha256Hex(tokenOf(h)) })), [sha256Hex(OPS)]);
    server = await startTestServer({}, { hospitals: NAMES, tokens, operatorToken: undefined });
    await join(server, NAMES[0]);
    expect(await (await statusOf(server, { Authorization: `Bearer ${OPS}` })).json()).toMatchObject({ view: 'operator', connected: [NAMES[0]] });
    expect((await statusOf(server, { Authorization: `Bearer ${TEST_OPERATOR_TOKEN}` })).status).toBe(401);
    expect(await (await statusOf(server)).json()).toMatchObject({ view: 'public', hospitals: { connected: 1 } });
  });
});

describe('Referrer-Policy', () => {
  it('is no-referrer on every HTTP response, the WebSocket upgrade refusals included', async () => {
    server = await startTestServer({}, { hospitals: NAMES });
    const paths = ['/', '/index.html', '/healthz', '/readyz', '/metrics', '/api/status', '/ws', '/assets/missing.js', '/%E0%A4%A'];
    for (const p of paths) {
      const r = await fetch(server.url + p);
      expect([p, r.headers.get('referrer-policy')]).toEqual([p, 'no-referrer']);
    }
    const post = await fetch(server.url + '/api/status', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('referrer-policy')).toBe('no-referrer');
    const denied = await statusOf(server, { Authorization: 'Bearer wrong-wrong-wrong-wrong' });
    expect(denied.headers.get('referrer-policy')).toBe('no-referrer');
    // A WebSocket upgrade on another path is refused by the transport with a raw response.
    const port = Number(new URL(server.url).port);
    const head = await new Promise<string>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () =>
        sock.write(`GET /elsewhere HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`),
      );
      let got = '';
      sock.on('data', (d) => (got += d.toString()));
      sock.on('end', () => resolve(got));
      sock.on('error', reject);
    });
    expect(head).toMatch(/^HTTP\/1\.1 404/);
    expect(head).toMatch(/\r\nReferrer-Policy: no-referrer\r\n/);
  });
});

describe('client strings in the log', () => {
  it('hello.agent and decline.reason are quoted and escaped: a newline cannot start a forged line', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 2, minFit: 2, minCompletion: 2 }, { hospitals: NAMES });
    const forged = '\n2026-01-01T00:00:00.000Z ERROR  round 1 complete: FORGED';
    await join(server, NAMES[0], { agent: `evil/1.0${forged}` });
    const b = await join(server, NAMES[1]);
    await b.waitBinary('round');
    b.send({ type: 'decline', round: 1, attempt: 1, reason: `no GPU${forged}\r\u001b[2K\u2028${'x'.repeat(400)}` });
    await b.waitText((m) => m.type === 'round-failed' || m.type === 'round-closed');
    const lines = server.logLines;
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).not.toMatch(/[\n\r\u001b\u2028]/);
    const agent = lines.find((l) => l.includes('evil/1.0'))!;
    expect(agent).toContain('agent "evil/1.0\\n2026-01-01T00:00:00.000Z ERROR  round 1 complete: FORGED"');
    const decline = lines.find((l) => l.includes('declined round 1'))!;
    expect(decline).toContain('"no GPU\\n2026-01-01T00:00:00.000Z ERROR  round 1 complete: FORGED\\r\\u001b[2K\\u2028');
    expect(decline).toMatch(/…\(\d+ more characters\)$/);
    expect(decline.length).toBeLessThan(400);
  });
});
