/**
 * The operator console's server side (docs/console-api.md) on a real server on loopback, with Node
 * hospitals (the shared client library over `ws`) and tiny hand-made weights: who may use it, the overview
 * and its live socket, pause/resume/stop, more rounds, round settings, hospitals added/revoked/rotated, the
 * audit log (and its tamper detection at start-up), the checkpoint download.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { decodeCheckpoint } from '../../shared/checkpoint.ts';
import { upgradeProtocols } from '../../shared/protocol/upgradeAuth.ts';
import type { TrainFn } from '../../shared/protocol/participation.ts';
import { StateDirError } from '../state.ts';
import { constantTrainer, getMetrics, nodeClient, startTestServer, TEST_OPERATOR_TOKEN, tinyWeights, tokenOf, until, type TestServer } from '../testing/federation.ts';
import { FederationClient } from '../../shared/protocol/federationClient.ts';
import { verifyAuditLog, type AuditEvent } from './auditLog.ts';

let server: TestServer | undefined;
const clients: FederationClient[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  await server?.cleanup();
  server = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const AUTH = { Authorization: `Bearer ${TEST_OPERATOR_TOKEN}` };

async function api(s: TestServer, method: string, path: string, body?: unknown, headers: Record<string, string> = AUTH): Promise<{ status: number; json: any; headers: Headers }> {
  const r = await fetch(`${s.url}/api/console/${path}`, {
    method,
    headers: { ...headers, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json, headers: r.headers };
}

function join_(s: TestServer, hospital: string, train: TrainFn, opts: Parameters<typeof nodeClient>[3] = {}): FederationClient {
  const c = nodeClient(s, hospital, train, opts);
  clients.push(c);
  void c.run().catch(() => {});
  return c;
}

/** A trainer that waits until `release()` (to hold a round in flight), then returns `value`. */
function gatedTrainer(value: number, examples: number) {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const started: number[] = [];
  const train: TrainFn = async (_g, cfg, progress) => {
    started.push(cfg.round);
    progress(0.5);
    await gate;
    return { weights: tinyWeights(value), examples, dLoss: 1, gLoss: 2 };
  };
  return { train, release: () => open(), started };
}

const tempState = () => {
  const d = mkdtempSync(join(tmpdir(), 'fedgan-console-'));
  dirs.push(d);
  return d;
};

describe('who may use the console', () => {
  it('refuses a missing or wrong operator token (401) and a hospital token (403, saying so)', async () => {
    server = await startTestServer({ rounds: 1 }, { hospitals: ['h1', 'h2'] });
    const missing = await api(server, 'GET', 'overview', undefined, {});
    expect(missing.status).toBe(401);
    expect(missing.json.error).toMatch(/operator token/);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="fedgan operator"');
    const wrong = await api(server, 'GET', 'overview', undefined, { Authorization: 'Bearer not-the-operator-token-000' });
    expect([wrong.status, wrong.json.error]).toEqual([401, 'wrong operator token']);
    const hospital = await api(server, 'GET', 'overview', undefined, { Authorization: `Bearer ${tokenOf('h1')}` });
    expect(hospital.status).toBe(403);
    expect(hospital.json.error).toBe('this is the token of the hospital "h1", not the operator\'s: the console and the full status need the operator token');
    // Control needs it too: nothing changed.
    expect((await api(server, 'POST', 'pause', undefined, { Authorization: `Bearer ${tokenOf('h2')}` })).status).toBe(403);
    expect(server.federation.control.paused).toBe(false);
    // Four failed sign-ins from this address: it now waits (429) even with the right token.
    const throttled = await api(server, 'GET', 'overview');
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('without OPERATOR_TOKEN or an operator entry: a token is created on the first start, logged once, only its hash kept', async () => {
    const stateDir = tempState();
    server = await startTestServer({ rounds: 1 }, { hospitals: ['h1', 'h2'], stateDir, operatorToken: undefined });
    const created = server.logLines.filter((l) => l.includes('operator token created'));
    expect(created).toHaveLength(1);
    const token = /#token=([A-Za-z0-9_-]{32})$/.exec(created[0])![1];
    expect(created[0]).toContain(`open the operator console at http://localhost:${server.port}/console#token=${token}`);
    expect(readFileSync(join(stateDir, 'console', 'console.json'), 'utf8')).not.toContain(token);
    expect((await api(server, 'GET', 'overview', undefined, { Authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await api(server, 'GET', 'overview')).status).toBe(401); // the test servers' usual OPERATOR_TOKEN is not set here
    await server.close();
    server = await startTestServer({ rounds: 1 }, { hospitals: ['h1', 'h2'], stateDir, operatorToken: undefined });
    expect(server.logLines.filter((l) => l.includes('operator token'))).toEqual([]);
    expect((await api(server, 'GET', 'overview', undefined, { Authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await api(server, 'GET', 'audit?type=operator-token-created', undefined, { Authorization: `Bearer ${token}` })).json.events).toHaveLength(1);
  });

  it('the live socket: the operator key gets the overview; no key 401, a hospital key 403', async () => {
    server = await startTestServer({ rounds: 1 }, { hospitals: ['h1', 'h2'] });
    const liveUrl = server.url.replace(/^http/, 'ws') + '/api/console/live';
    const refused = (protocols: string[]) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(liveUrl, protocols);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => {});
      });
    expect(await refused(['fedgan-console'])).toBe(401);
    expect(await refused(['fedgan-console', upgradeProtocols(tokenOf('h1'))[1]])).toBe(403);
    const ws = new WebSocket(liveUrl, ['fedgan-console', upgradeProtocols(TEST_OPERATOR_TOKEN)[1]]);
    const messages: any[] = [];
    ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
    await new Promise((r) => ws.once('open', r));
    expect(ws.protocol).toBe('fedgan-console');
    await until(() => messages.length > 0, 5000, 'the first overview');
    expect(messages[0]).toMatchObject({ type: 'overview', federation: { phase: 'waiting', round: 0, totalRounds: 1 } });
    // A hospital joins: pushed, with what its software said of itself.
    const h1 = join_(server, 'h1', constantTrainer(1, 10), { agent: 'fedgan-web/0.1 (wasm)' });
    await until(() => messages.some((m) => m.hospitals?.find((h: any) => h.name === 'h1')?.online), 5000, 'h1 online pushed');
    const row = () => messages.at(-1).hospitals.find((h: any) => h.name === 'h1');
    expect(row()).toMatchObject({ online: true, agent: 'fedgan-web/0.1 (wasm)' });
    expect(messages.at(-1).hospitals.find((h: any) => h.name === 'h2')).toMatchObject({ online: false, agent: null });
    // Gone: no agent (it said it of the connection that closed).
    h1.stop();
    await until(() => row().online === false, 5000, 'h1 offline pushed');
    expect(row().agent).toBeNull();
    ws.close();
  });
});

describe('control', () => {
  it('pauses a running federation (the round in flight ends, no next one) and resumes it', async () => {
    server = await startTestServer({ rounds: 3, minAvailable: 2, minFit: 2, minCompletion: 2 }, { hospitals: ['h1', 'h2'] });
    const a = gatedTrainer(1, 10);
    const b = gatedTrainer(3, 10);
    join_(server, 'h1', a.train);
    join_(server, 'h2', b.train);
    await until(() => a.started.length === 1 && b.started.length === 1, 5000, 'round 1 started');
    const paused = await api(server, 'POST', 'pause');
    expect(paused.status).toBe(200);
    expect(paused.json.overview.federation).toMatchObject({ paused: true, phase: 'training', roundInFlight: 1 });
    a.release();
    b.release();
    await until(() => server!.federation.state.round === 1, 5000, 'round 1 complete');
    // Paused: round 2 does not start.
    await new Promise((r) => setTimeout(r, 300));
    const ov = (await api(server, 'GET', 'overview')).json;
    expect(ov.federation).toMatchObject({ phase: 'waiting', paused: true, round: 1, attempt: null });
    expect(a.started).toEqual([1]);
    const resumed = await api(server, 'POST', 'resume');
    expect(resumed.json.overview.federation.paused).toBe(false);
    await until(() => server!.federation.phase === 'finished', 5000, 'finished after resume');
    expect(a.started).toEqual([1, 2, 3]);
    const types = (await api(server, 'GET', 'audit?type=operator-pause')).json.events.map((e: AuditEvent) => e.type);
    expect(types).toEqual(['operator-pause']);
    const metrics = await getMetrics(`${server.url}/metrics`);
    expect([metrics.get('fedgan_operator_actions_total{action="pause"}'), metrics.get('fedgan_operator_actions_total{action="resume"}')]).toEqual([1, 1]);
  });

  it('stop ends the round in flight at once; resume runs it again', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 2, minFit: 2, minCompletion: 2 }, { hospitals: ['h1', 'h2'] });
    const a = gatedTrainer(1, 10);
    const b = gatedTrainer(3, 10);
    join_(server, 'h1', a.train);
    join_(server, 'h2', b.train);
    await until(() => a.started.length === 1 && b.started.length === 1, 5000, 'round 1 started');
    const stopped = await api(server, 'POST', 'stop');
    expect(stopped.json.overview.federation).toMatchObject({ stopped: true, phase: 'waiting', attempt: null, round: 0 });
    const h1 = stopped.json.overview.hospitals.find((h: any) => h.name === 'h1');
    expect(h1.failures[0]).toMatchObject({ round: 1, attempt: 1, reason: 'stopped' });
    a.release();
    b.release();
    await new Promise((r) => setTimeout(r, 300));
    expect(server.federation.state.round).toBe(0);
    await api(server, 'POST', 'resume');
    await until(() => server!.federation.phase === 'finished', 5000, 'finished after resume');
    expect(server.federation.state.history[0]).toMatchObject({ round: 1, attempts: 2 });
  });

  it('extends the rounds of a finished federation; refuses fewer than completed', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 1, minFit: 1, minCompletion: 1 }, { hospitals: ['h1'] });
    const seen: number[] = [];
    join_(server, 'h1', async (_g, cfg) => (seen.push(cfg.round), { weights: tinyWeights(1), examples: 5, dLoss: 1, gLoss: 1 }));
    await until(() => server!.federation.phase === 'finished', 5000, 'finished');
    const bad = await api(server, 'POST', 'rounds', { totalRounds: 0 });
    expect([bad.status, bad.json.error]).toEqual([400, 'totalRounds must be a whole number of at least 1 (rounds completed)']);
    expect((await api(server, 'POST', 'rounds', { totalRounds: 2.5 })).status).toBe(400);
    const ok = await api(server, 'POST', 'rounds', { totalRounds: 3 });
    expect(ok.status).toBe(200);
    expect(ok.json.overview.federation).toMatchObject({ totalRounds: 3, round: 1 });
    // The client left after `finished`: it joins again and trains rounds 2 and 3.
    join_(server, 'h1', async (_g, cfg) => (seen.push(cfg.round), { weights: tinyWeights(1), examples: 5, dLoss: 1, gLoss: 1 }));
    await until(() => server!.federation.state.round === 3, 5000, 'round 3');
    expect(seen).toEqual([1, 2, 3]);
    const ev = (await api(server, 'GET', 'audit?type=operator-rounds')).json.events;
    expect(ev[0].details).toMatchObject({ from: 1, to: 3 });
  });

  it('round settings: validated by the FED_CONFIG schema, model changes refused with the reason, effective at the next round, kept after a restart', async () => {
    const stateDir = tempState();
    server = await startTestServer({ rounds: 3, minAvailable: 2, minFit: 2, minCompletion: 2, localSteps: 7 }, { hospitals: ['h1', 'h2'], stateDir });
    const bad = await api(server, 'PATCH', 'settings', { fraction: 1.5 });
    expect(bad.status).toBe(400);
    expect(bad.json.problems).toEqual([{ path: 'fraction', message: 'must be at most 1' }]);
    const cross = await api(server, 'PATCH', 'settings', { minCompletion: 2, minFit: 1 });
    expect(cross.json.problems).toEqual([{ path: 'minCompletion', message: 'must be at most minFit (1)' }]);
    const model = await api(server, 'PATCH', 'settings', { model: { imageSize: 32 } });
    expect(model.status).toBe(400);
    expect(model.json.problems[0].path).toBe('model');
    expect(model.json.problems[0].message).toMatch(/^cannot change while the federation runs: would break the model/);
    expect((await api(server, 'PATCH', 'settings', { batchNorm: 'local' })).json.problems[0].message).toMatch(/would break the model/);
    expect((await api(server, 'PATCH', 'settings', { minAvailable: 3, minFit: 3 })).json.problems[0]).toMatchObject({ path: 'minAvailable' });

    const a = gatedTrainer(1, 10);
    const b = gatedTrainer(3, 10);
    const steps: number[] = [];
    const wrap = (t: TrainFn): TrainFn => async (g, cfg, p, s) => (steps.push(cfg.localSteps), t(g, cfg, p, s));
    join_(server, 'h1', wrap(a.train));
    join_(server, 'h2', wrap(b.train));
    await until(() => a.started.length === 1, 5000, 'round 1 started');
    const ok = await api(server, 'PATCH', 'settings', { localSteps: 11, aggregator: { type: 'median' } });
    expect(ok.status).toBe(200);
    expect(ok.json.appliesFrom).toBe(2);
    expect(ok.json.overview.settings.effective.localSteps).toBe(7);
    expect(ok.json.overview.settings.pending).toMatchObject({ localSteps: 11, aggregator: { type: 'median', beta: 0.1 } });
    await api(server, 'POST', 'pause');
    a.release();
    b.release();
    await until(() => server!.federation.state.round === 1, 5000, 'round 1 complete');
    expect(steps).toEqual([7, 7]);
    expect(server.federation.config.effective).toMatchObject({ localSteps: 11, aggregator: { type: 'median' } });
    // A restart keeps the settings and the pause.
    await server.close();
    server = await startTestServer({ rounds: 3, minAvailable: 2, minFit: 2, minCompletion: 2, localSteps: 7 }, { hospitals: ['h1', 'h2'], stateDir });
    expect(server.federation.config.effective).toMatchObject({ localSteps: 11, aggregator: { type: 'median' } });
    expect(server.federation.control.paused).toBe(true);
  });
});

describe('hospitals', () => {
  it('adds a hospital (token shown once, only its hash stored) that joins and completes a round', async () => {
    const stateDir = tempState();
    server = await startTestServer({ rounds: 1, minAvailable: 2, minFit: 2, minCompletion: 2 }, { hospitals: ['h1'], stateDir });
    const added = await api(server, 'POST', 'hospitals', { name: 'clinic-c' });
    expect(added.status).toBe(201);
    expect(added.json.name).toBe('clinic-c');
    expect(added.json.joinLink).toBe(`http://${new URL(server.url).host}/#token=${added.json.token}`);
    expect(readFileSync(join(stateDir, 'console', 'console.json'), 'utf8')).not.toContain(added.json.token);
    expect((await api(server, 'POST', 'hospitals', { name: 'clinic-c' })).status).toBe(409);
    expect((await api(server, 'POST', 'hospitals', { name: 'bad name!' })).status).toBe(400);
    join_(server, 'h1', constantTrainer(1, 10));
    const c = nodeClient(server, 'clinic-c', constantTrainer(3, 10), { token: added.json.token });
    clients.push(c);
    expect((await c.run()).rounds).toBe(1);
    expect(server.federation.state.history[0].hospitals).toEqual(['clinic-c', 'h1']);
    const list = (await api(server, 'GET', 'hospitals')).json.hospitals;
    expect(list.map((h: any) => [h.name, h.source])).toEqual([
      ['clinic-c', 'console'],
      ['h1', 'tokens-file'],
    ]);
  });

  it('revokes a hospital mid-round: its connection closes at once, its token stops working, the round goes on without it', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 3, minFit: 3, minCompletion: 2, limits: { reconnectGraceSeconds: 60 } }, { hospitals: ['h1', 'h2', 'h3'] });
    const a = gatedTrainer(1, 10);
    const b = gatedTrainer(3, 10);
    const gone = gatedTrainer(100, 10);
    join_(server, 'h1', a.train);
    join_(server, 'h2', b.train);
    const revokedClient = join_(server, 'h3', gone.train);
    const refused = new Promise<unknown>((resolve) => revokedClient.on((e) => e.type === 'state' && (e as { state: string }).state === 'failed' && resolve(e)));
    await until(() => gone.started.length === 1, 5000, 'round 1 started');
    const t0 = Date.now();
    const r = await api(server, 'POST', 'hospitals/h3/revoke');
    expect(r.status).toBe(200);
    await refused;
    const h3 = r.json.overview.hospitals.find((h: any) => h.name === 'h3');
    expect(h3).toMatchObject({ revoked: true, online: false });
    a.release();
    b.release();
    await until(() => server!.federation.state.round === 1, 5000, 'round 1 complete without h3');
    expect(Date.now() - t0).toBeLessThan(5000); // not the 60 s reconnect grace
    expect(server.federation.state.history[0].hospitals).toEqual(['h1', 'h2']);
    expect(server.federation.hospitalActivity('h3')?.failures[0]).toMatchObject({ round: 1, reason: 'revoked' });
    // Its token is refused from now on.
    const again = nodeClient(server, 'h3', constantTrainer(1, 1));
    clients.push(again);
    await expect(again.run()).rejects.toThrow(/unknown token/);
    expect((await api(server, 'POST', 'hospitals/h3/revoke')).status).toBe(409);
    expect((await api(server, 'POST', 'hospitals/nobody/revoke')).status).toBe(404);
    const audit = (await api(server, 'GET', 'audit?hospital=h3')).json.events.map((e: AuditEvent) => e.type);
    expect(audit).toEqual(['hospital-joined', 'hospital-revoked', 'hospital-left']);
  });

  it('a revocation that leaves too few updates fails the attempt at once, as for a hospital that disappears', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 2, minFit: 2, minCompletion: 2 }, { hospitals: ['h1', 'h2'] });
    const a = gatedTrainer(1, 10);
    const b = gatedTrainer(3, 10);
    join_(server, 'h1', a.train);
    join_(server, 'h2', b.train);
    await until(() => a.started.length === 1 && b.started.length === 1, 5000, 'round 1 started');
    await api(server, 'POST', 'hospitals/h2/revoke');
    await until(() => server!.federation.phase === 'waiting', 5000, 'attempt failed');
    const failed = (await api(server, 'GET', 'audit?type=round-failed')).json.events;
    expect(failed[0].details).toMatchObject({ round: 1, attempt: 1, received: 0, needed: 2, reason: 'unreachable', failures: { h1: 'aborted', h2: 'revoked' } });
  });

  it('rotates a token: the old one stops working, the new one joins; survives a restart', async () => {
    const stateDir = tempState();
    server = await startTestServer({ rounds: 1, minAvailable: 1, minFit: 1, minCompletion: 1 }, { hospitals: ['h1'], stateDir });
    const r = await api(server, 'POST', 'hospitals/h1/rotate');
    expect(r.status).toBe(200);
    expect(r.json.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    await server.close();
    server = await startTestServer({ rounds: 1, minAvailable: 1, minFit: 1, minCompletion: 1 }, { hospitals: ['h1'], stateDir });
    const old = nodeClient(server, 'h1', constantTrainer(1, 1));
    clients.push(old);
    await expect(old.run()).rejects.toThrow(/unknown token/);
    const fresh = nodeClient(server, 'h1', constantTrainer(1, 1), { token: r.json.token });
    clients.push(fresh);
    expect((await fresh.run()).rounds).toBe(1);
  });
});

describe('persistence and the page', () => {
  it('a revocation of a tokens-file hospital survives a restart (the file still lists it)', async () => {
    const stateDir = tempState();
    server = await startTestServer({ rounds: 1, minAvailable: 1, minFit: 1, minCompletion: 1 }, { hospitals: ['h1', 'h2'], stateDir });
    expect((await api(server, 'POST', 'hospitals/h2/revoke')).status).toBe(200);
    await server.close();
    server = await startTestServer({ rounds: 1, minAvailable: 1, minFit: 1, minCompletion: 1 }, { hospitals: ['h1', 'h2'], stateDir });
    expect(server.logLines).toContain(`INFO h2: revoked in the console on ${JSON.parse(readFileSync(join(stateDir, 'console', 'console.json'), 'utf8')).hospitals.h2.revokedAt}; its token is refused`);
    const h2 = nodeClient(server, 'h2', constantTrainer(1, 1));
    clients.push(h2);
    await expect(h2.run()).rejects.toThrow(/unknown token/);
    const row = (await api(server, 'GET', 'hospitals')).json.hospitals.find((h: any) => h.name === 'h2');
    expect(row).toMatchObject({ source: 'tokens-file', revoked: true });
  });

  it('serves the console page at /console from dist/console/index.html, and says so when it is not built', async () => {
    const dist = tempState();
    server = await startTestServer({ rounds: 1 }, { hospitals: ['h1', 'h2'], staticDir: dist });
    writeFileSync(join(dist, 'index.html'), '<!doctype html><title>hospital app</title>');
    const missing = await fetch(`${server.url}/console`);
    expect([missing.status, await missing.text()]).toEqual([404, 'not found (the operator console is not built: run npm run build)\n']);
    mkdirSync(join(dist, 'console'));
    writeFileSync(join(dist, 'console', 'index.html'), '<!doctype html><title>operator console</title>');
    for (const p of ['/console', '/console/', '/console/hospitals']) {
      const r = await fetch(server.url + p);
      expect([p, r.status, await r.text()]).toEqual([p, 200, '<!doctype html><title>operator console</title>']);
    }
    expect(await (await fetch(server.url + '/')).text()).toBe('<!doctype html><title>hospital app</title>');
  });
});

describe('the global model', () => {
  it('serves the current checkpoint for download, as the server wrote it', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 1, minFit: 1, minCompletion: 1 }, { hospitals: ['h1'] });
    join_(server, 'h1', constantTrainer(2, 4));
    await until(() => server!.federation.phase === 'finished', 5000, 'finished');
    const r = await fetch(`${server.url}/api/console/checkpoint`, { headers: AUTH });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-disposition')).toBe('attachment; filename="round-000001.fgw"');
    const bytes = new Uint8Array(await r.arrayBuffer());
    expect(Buffer.from(bytes).equals(readFileSync(join(server.stateDir, 'checkpoints', 'round-000001.fgw')))).toBe(true);
    const d = decodeCheckpoint(bytes, { copy: true });
    expect(d.meta.round).toBe(1);
    expect([...d.weights.tensors[0].data]).toEqual([2, 2, 2, 2, 2, 2]);
    expect((await fetch(`${server.url}/api/console/checkpoint`)).status).toBe(401);
  });
});

describe('audit log', () => {
  it('records operator actions, joins and rounds, hash-chained; filters and exports', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 1, minFit: 1, minCompletion: 1 }, { hospitals: ['h1'] });
    join_(server, 'h1', constantTrainer(2, 4));
    await until(() => server!.federation.phase === 'finished', 5000, 'finished');
    // The hospital leaves once told the federation is finished.
    await until(() => server!.audit.size === 4, 5000, 'hospital-left');
    await api(server, 'POST', 'pause');
    const all = (await api(server, 'GET', 'audit')).json.events as AuditEvent[];
    expect(all.map((e) => e.type)).toEqual(['server-started', 'hospital-joined', 'round-aggregated', 'hospital-left', 'operator-pause']);
    expect(all[2]).toMatchObject({ actor: 'server', details: { round: 1, hospitals: ['h1'], examples: 4 } });
    expect(all[4]).toMatchObject({ actor: 'operator', details: { address: '127.0.0.1' } });
    const later = (await api(server, 'GET', `audit?since=${encodeURIComponent(all[2].at)}`)).json.events as AuditEvent[];
    expect(later.map((e) => e.seq)).toEqual(all.filter((e) => e.at >= all[2].at).map((e) => e.seq));
    expect((await api(server, 'GET', 'audit?since=yesterday')).status).toBe(400);
    const raw = await fetch(`${server.url}/api/console/audit.jsonl`, { headers: AUTH });
    expect(raw.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const text = await raw.text();
    const v = verifyAuditLog(text);
    expect(v.ok && v.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    const h1 = (await api(server, 'GET', 'audit?hospital=h1')).json.events as AuditEvent[];
    expect(h1.map((e) => e.type)).toEqual(['hospital-joined', 'hospital-left']);
  });

  it('refuses to start on a modified, deleted or truncated line, naming it', async () => {
    const stateDir = tempState();
    server = await startTestServer({ rounds: 1 }, { hospitals: ['h1', 'h2'], stateDir });
    await api(server, 'POST', 'pause');
    await api(server, 'POST', 'resume');
    await server.close();
    server = undefined;
    const file = join(stateDir, 'console', 'audit.jsonl');
    const good = readFileSync(file, 'utf8');
    const lines = good.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    const start = () => startTestServer({ rounds: 1 }, { hospitals: ['h1', 'h2'], stateDir });
    // The untouched log starts.
    server = await start();
    await server.close();
    server = undefined;
    const now = readFileSync(file, 'utf8');

    // A modified line: the pause attributed to another address.
    writeFileSync(file, now.replace('"operator-pause","actor":"operator","details":{"address":"127.0.0.1"}', '"operator-pause","actor":"operator","details":{"address":"10.9.9.9"}'));
    await expect(start()).rejects.toThrow(StateDirError);
    await expect(start()).rejects.toThrow(/audit log .* was tampered with: line 2: its content does not match its hash \(the line was modified\)/);
    // A deleted line.
    const all = now.trimEnd().split('\n');
    writeFileSync(file, [all[0], ...all.slice(2)].join('\n') + '\n');
    await expect(start()).rejects.toThrow(/line 2: sequence number 3 where 2 was expected/);
    // Lines cut off the end: the head record says more.
    writeFileSync(file, all.slice(0, 2).join('\n') + '\n');
    await expect(start()).rejects.toThrow(/the log ends at line 2 but audit.head.json records 4 lines/);
    // Restored: it starts again, and appends after the last line.
    writeFileSync(file, now);
    server = await start();
    const v = verifyAuditLog(readFileSync(file, 'utf8'));
    expect(v.ok && v.events.length).toBe(5);
  });
});

describe('audit log, unit', () => {
  it('keeps the newest events in memory for queries, counts every line, and the chain continues across the cut', async () => {
    const { AuditLog } = await import('./auditLog.ts');
    const dir = tempState();
    let t = Date.UTC(2026, 0, 1);
    const log = AuditLog.open(dir, { now: () => (t += 1000), keepInMemory: 10 });
    for (let i = 1; i <= 40; i++) log.append({ type: i % 2 ? 'hospital-joined' : 'hospital-left', actor: 'h1', hospital: 'h1' });
    await log.flush();
    expect(log.size).toBe(40);
    const kept = log.query({});
    expect(kept.length).toBeLessThanOrEqual(12);
    expect(kept.at(-1)!.seq).toBe(40);
    expect(log.query({ type: 'hospital-joined', limit: 3 }).map((e) => e.seq)).toEqual([35, 37, 39]);
    // The head record follows the last append (writes coalesced), and the file verifies as a whole.
    expect(JSON.parse(readFileSync(join(dir, 'audit.head.json'), 'utf8'))).toEqual({ seq: 40, hash: log.head });
    const reopened = AuditLog.open(dir);
    expect([reopened.size, reopened.head]).toEqual([40, log.head]);
    expect(reopened.append({ type: 'server-started', actor: 'server' }).seq).toBe(41);
    await reopened.flush();
  });
});
