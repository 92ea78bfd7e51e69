/**
 * Federation server benchmark (`npm run bench:server`):
 *
 * 1. Aggregation throughput: the server's per-update path (frame parse → weights decode with fingerprint,
 *    shape and CRC checks → finite check → the round strategy's add: example, layout and loss checks, streaming
 *    FedAvg) on in-memory frames, in GB/s of update
 *    bytes.
 * 2. A round on loopback: the real server (server/main.ts, spawned, so its RSS is its own) with a
 *    5-million-parameter model and 100 Node clients (shared/protocol/federationClient.ts over `ws`) in this process.
 *    Reports connect and round times, the in-round aggregation throughput from /metrics, and the server's
 *    RSS: baseline (ready, idle), peak sampled every 5 ms during the round, against baseline + 4× model.
 * 3. A flood (server/flood.test.ts at bench scale): the real server, spawned, with a small model; 300
 *    WebSockets that never say hello, reopened as soon as they drop, first from 10 other addresses
 *    (127.0.0.2–11), then from the hospitals' own address (127.0.0.1). During each: join attempts one after
 *    another with the upgrade credential (accepted x of y, with their latency), in the second also without
 *    it (older clients), then a round of two hospitals. Reports the server's RSS before, during (peak,
 *    sampled every 50 ms) and after the flood.
 *
 *     npm run bench:server -- [--clients 100] [--params 5000000] [--json bench.json] [--aggregation-only] [--flood-only]
 *       [--flood-sockets 300] [--flood-joins 20]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { encodeWeights } from '../shared/codec/weightsCodec.ts';
import { parseFedConfig } from '../shared/config/fedConfig.ts';
import { RoundAggregation } from '../shared/fed/strategy.ts';
import { FederationClient } from '../shared/protocol/federationClient.ts';
import { decodeFrame, encodeFrame } from '../shared/protocol/frames.ts';
import { upgradeProtocols } from '../shared/protocol/upgradeAuth.ts';
import { serverCrc32 } from '../server/nativeCrc32.ts';
import { decodeUpdateWeights } from '../server/updateDecode.ts';
import { loopbackAddresses, startFlood } from '../server/testing/flood.ts';
import { benchWeights } from './serverModel.ts';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}
const CLIENTS = Number(arg('clients', '100'));
const PARAMS = Number(arg('params', '5000000'));
const JSON_OUT = arg('json', '');
const ROOT = new URL('..', import.meta.url).pathname;
const MB = 1e6;
const fmtDelta = (b: number) => `${b >= 0 ? '+' : '−'}${(Math.abs(b) / MB).toFixed(0)} MB`;

// ---------------------------------------------------------------------------------------------------------
// 1. Aggregation throughput (in process)
// ---------------------------------------------------------------------------------------------------------

function aggregationThroughput(updates = 20, repeats = 3): { gbPerSecond: number; msPerUpdate: number; gbPerCpuSecond: number; cpuMsPerUpdate: number; updateBytes: number } {
  const global = benchWeights(PARAMS, 0);
  const frames = Array.from({ length: 4 }, (_, k) =>
    encodeFrame({ type: 'update', round: 1, attempt: 1, examples: 10 + k, dLoss: 1, gLoss: 1 }, encodeWeights(benchWeights(PARAMS, k + 1))),
  );
  const bytes = frames[0].byteLength;
  let best = Infinity;
  let bestCpu = Infinity;
  for (let r = 0; r < repeats + 1; r++) {
    // No norm bound: the synthetic updates are far from the global weights (every value + 1).
    const agg = new RoundAggregation(parseFedConfig({ maxUpdateNorm: null }), global);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let u = 0; u < updates; u++) {
      // The same steps as RoundMachine.onUpdate (server/roundMachine.ts).
      const { header, payload } = decodeFrame(frames[u % frames.length]);
      const weights = decodeUpdateWeights(payload, global);
      agg.add(`h${u}`, { weights, examples: header.examples as number, dLoss: 1, gLoss: 1 }, { finiteChecked: true });
    }
    agg.result();
    const dt = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    if (r > 0) {
      // the first run warms up the JIT
      best = Math.min(best, dt);
      bestCpu = Math.min(bestCpu, (c.user + c.system) / 1e6);
    }
  }
  return {
    gbPerSecond: (updates * bytes) / best / 1e9,
    msPerUpdate: (best * 1000) / updates,
    // CPU time of this process (one thread does the work): what the wall figure is on an otherwise idle core.
    gbPerCpuSecond: (updates * bytes) / bestCpu / 1e9,
    cpuMsPerUpdate: (bestCpu * 1000) / updates,
    updateBytes: bytes,
  };
}

// ---------------------------------------------------------------------------------------------------------
// 2. A round with CLIENTS Node clients on loopback
// ---------------------------------------------------------------------------------------------------------

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function metrics(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return new Map(
    text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))] as [string, number]),
  );
}

async function round() {
  const dir = mkdtempSync(join(tmpdir(), 'fedgan-bench-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const hospitals = Array.from({ length: CLIENTS }, (_, i) => `bench-${String(i).padStart(3, '0')}`);
  const token = (h: string) => `${h}-token-0123456789abcdef`;
  writeFileSync(join(dir, 'tokens.yaml'), hospitals.map((h) => `- hospital: ${h}\n  token: ${token(h)}\n`).join(''));
  writeFileSync(
    join(dir, 'fed.yaml'),
    // heartbeatSeconds: the 100 clients share this process and the 2 cores with the server; on a machine
    // loaded by other work they can miss the default 15 s pong while 2 GB of round frames go out.
    // maxUnauthenticated(PerAddress): all the clients connect at once from one address (127.0.0.1).
    `rounds: 1\nmaxUpdateNorm: null\nfraction: 1\nminFit: ${CLIENTS}\nminAvailable: ${CLIENTS}\nminCompletion: ${CLIENTS}\nroundDeadlineSeconds: 600\nlimits:\n  maxConnections: ${CLIENTS + 16}\n` +
      `  maxUnauthenticated: ${CLIENTS}\n  maxUnauthenticatedPerAddress: ${CLIENTS}\n  heartbeatSeconds: 60\n`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/serverProcess.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', STATE_DIR: join(dir, 'state'), TOKENS_FILE: join(dir, 'tokens.yaml'), FED_CONFIG: join(dir, 'fed.yaml'), BENCH_PARAMS: String(PARAMS) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const live = process.env.BENCH_DEBUG === 'live'; // stream the server's log as it comes
  child.stdout!.on('data', (d) => ((log += d), live && process.stdout.write(d)));
  child.stderr!.on('data', (d) => ((log += d), live && process.stderr.write(d)));
  try {
    while (!/ready: model/.test(log)) {
      if (child.exitCode !== null) throw new Error(`server exited: ${log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 1000)); // let startup garbage settle
    const baseline = rssBytes(child.pid!);
    const modelBytes = encodeWeights(benchWeights(PARAMS, 0)).byteLength;

    // All clients return the same update object (values = 1 + pattern): its content does not matter here,
    // each client still encodes and uploads its own copy.
    const update = benchWeights(PARAMS, 1);
    let peak = baseline;
    const timeline: [number, number][] = [];
    const sampler = setInterval(() => {
      const v = rssBytes(child.pid!);
      peak = Math.max(peak, v);
      if (process.env.BENCH_DEBUG) timeline.push([Date.now(), v]);
    }, 5);
    const t0 = performance.now();
    let tRoundStart = 0;
    const clients = hospitals.map(
      (h) =>
        new FederationClient({
          url: `ws://127.0.0.1:${port}/ws`,
          token: token(h),
          clientId: h,
          createSocket: (u, protocols) => new WebSocket(u, protocols, { perMessageDeflate: false, maxPayload: 1 << 30 }),
          crc32: serverCrc32, // Node clients use the native CRC-32 too (as a Node host of the client should)
          train: async (global, cfg) => {
            tRoundStart ||= performance.now();
            if (global.tensors.length !== update.tensors.length || cfg.round !== 1) throw new Error('unexpected round');
            return { weights: update, examples: 100, dLoss: 0.5, gLoss: 1.5 };
          },
        }),
    );
    const results = await Promise.all(clients.map((c) => c.run()));
    const tEnd = performance.now();
    clearInterval(sampler);
    const afterRound = rssBytes(child.pid!);
    if (process.env.BENCH_DEBUG) {
      // The whole timeline, as the highest RSS (MB over baseline) per 100 ms.
      const buckets = new Map<number, number>();
      for (const [t, v] of timeline) buckets.set(Math.floor(t / 100), Math.max(buckets.get(Math.floor(t / 100)) ?? 0, v));
      console.log(`RSS over baseline per 100 ms: ${[...buckets.values()].map((v) => ((v - baseline) / MB).toFixed(0)).join(' ')}`);
    }
    const m = await metrics(url);
    const status = (await (await fetch(`${url}/api/status`)).json()) as { history: { participants: number; seconds: number; attempts: number }[] };
    if (!results.every((r) => r.rounds === 1) || status.history[0]?.participants !== CLIENTS) throw new Error(`round incomplete: ${JSON.stringify(status.history)}`);
    const aggSeconds = m.get('fedgan_aggregation_seconds_total') ?? NaN;
    const aggBytes = m.get('fedgan_aggregation_bytes_total') ?? NaN;
    return {
      clients: CLIENTS,
      params: PARAMS,
      modelBytes,
      connectSeconds: (tRoundStart - t0) / 1000,
      roundSeconds: (tEnd - tRoundStart) / 1000,
      serverRoundSeconds: status.history[0].seconds,
      attempts: status.history[0].attempts,
      totalSeconds: (tEnd - t0) / 1000,
      bytesIn: m.get('fedgan_bytes_received_total'),
      bytesOut: m.get('fedgan_bytes_sent_total'),
      inRoundAggregationGBs: aggBytes / aggSeconds / 1e9,
      aggregationSeconds: aggSeconds,
      rss: { baseline, peak, afterRound, peakOverBaseline: peak - baseline, budget: 4 * modelBytes, withinBudget: peak - baseline <= 4 * modelBytes },
    };
  } finally {
    if (process.env.BENCH_DEBUG && !live) console.log(log);
    if (process.env.BENCH_DEBUG) (globalThis as { timeline?: unknown }).timeline = undefined;
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// 3. A flood of hello-less sockets
// ---------------------------------------------------------------------------------------------------------

const FLOOD_SOCKETS = Number(arg('flood-sockets', '300'));
const FLOOD_JOINS = Number(arg('flood-joins', '20'));

interface JoinFigures {
  accepted: number;
  tried: number;
  /** Seconds from opening the socket to the welcome, of the accepted joins. */
  secondsMedian: number;
  secondsMax: number;
  /** Refusals seen by the join attempts, by close code. */
  refusals: Record<string, number>;
}

interface FloodPhase {
  from: string;
  /** Joins that present the upgrade credential (this project's clients). */
  joins: JoinFigures;
  /** Joins without it (older clients), measured in the phase from the hospitals' own address. */
  joinsWithoutCredential?: JoinFigures;
  /** The round of two hospitals (with their credential) during the flood. */
  roundSeconds: number;
  floodSocketsOpened: number;
  rssPeakDuring: number;
}

/** One join attempt: open (offering `protocols`), hello, welcome (accepted) or a close (refused) within 15 s. */
function tryJoin(wsUrl: string, token: string, clientId: string, protocols: string[]): Promise<{ ok: boolean; seconds: number; code?: string }> {
  const t0 = performance.now();
  return new Promise((res) => {
    const ws = new WebSocket(wsUrl, protocols, { perMessageDeflate: false });
    const done = (ok: boolean, code?: string) => {
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      res({ ok, seconds: (performance.now() - t0) / 1000, code });
    };
    const timer = setTimeout(() => done(false, 'no answer in 15 s'), 15_000);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', protocols: [2], token, clientId })));
    ws.on('message', (d: Buffer) => {
      if ((JSON.parse(d.toString()) as { type: string }).type === 'welcome') done(true);
    });
    ws.on('close', (code: number) => done(false, String(code)));
    ws.on('error', (e) => done(false, e.message));
  });
}

async function joinFigures(n: number, join: (i: number) => Promise<{ ok: boolean; seconds: number; code?: string }>): Promise<JoinFigures> {
  const joins = [];
  for (let i = 0; i < n; i++) joins.push(await join(i));
  const ok = joins.filter((j) => j.ok).map((j) => j.seconds).sort((a, b) => a - b);
  const refusals: Record<string, number> = {};
  for (const j of joins) if (!j.ok) refusals[j.code!] = (refusals[j.code!] ?? 0) + 1;
  return {
    accepted: ok.length,
    tried: joins.length,
    secondsMedian: ok.length ? ok[Math.floor(ok.length / 2)] : NaN,
    secondsMax: ok.length ? ok[ok.length - 1] : NaN,
    refusals,
  };
}

async function floodBench() {
  const dir = mkdtempSync(join(tmpdir(), 'fedgan-bench-flood-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const wsUrl = `ws://127.0.0.1:${port}/ws`;
  const token = (h: string) => `${h}-token-0123456789abcdef`;
  const hospitals = ['h1', 'h2', 'probe'];
  writeFileSync(join(dir, 'tokens.yaml'), hospitals.map((h) => `- hospital: ${h}\n  token: ${token(h)}\n`).join(''));
  // The defaults of limits (64 waiting sockets in all, 8 per address, hello within 10 s). Two rounds: one per phase.
  writeFileSync(join(dir, 'fed.yaml'), 'rounds: 2\nfraction: 1\nminFit: 2\nminAvailable: 2\nminCompletion: 2\nroundDeadlineSeconds: 300\nmaxUpdateNorm: null\n');
  const params = 100_000;
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/serverProcess.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', STATE_DIR: join(dir, 'state'), TOKENS_FILE: join(dir, 'tokens.yaml'), FED_CONFIG: join(dir, 'fed.yaml'), BENCH_PARAMS: String(params) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const phases: FloodPhase[] = [];
  try {
    while (!/ready: model/.test(log)) {
      if (child.exitCode !== null) throw new Error(`server exited: ${log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const before = rssBytes(child.pid!);
    const update = benchWeights(params, 1);

    /** Two hospitals (the client library, with their credential) join and finish round `round`; resolves with its seconds. */
    const roundOfTwo = async (round: number): Promise<number> => {
      const tr = performance.now();
      const clients: FederationClient[] = [];
      await Promise.all(
        ['h1', 'h2'].map(
          (h) =>
            new Promise<void>((res, rej) => {
              const c = new FederationClient({
                url: wsUrl,
                token: token(h),
                clientId: h,
                createSocket: (u, protocols) => new WebSocket(u, protocols, { perMessageDeflate: false }),
                reconnect: { initialMs: 100, maxMs: 1000 },
                train: async () => ({ weights: update, examples: 10, dLoss: 0.5, gLoss: 1.5 }),
                onEvent: (e) => {
                  if (e.type === 'round-complete' && e.message.round === round) res();
                  if (e.type === 'state' && e.state === 'failed') rej(new Error(`${h} failed during the flood`));
                },
              });
              clients.push(c);
              c.run().catch(rej);
            }),
        ),
      );
      for (const c of clients) c.stop();
      return (performance.now() - tr) / 1000;
    };

    for (const [from, addresses] of [
      ['10 other addresses (127.0.0.2–11)', loopbackAddresses(10)],
      ["the hospitals' own address (127.0.0.1)", ['127.0.0.1']],
    ] as [string, string[]][]) {
      let peak = rssBytes(child.pid!);
      const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(child.pid!))), 50);
      const flood = startFlood(wsUrl, { sockets: FLOOD_SOCKETS, addresses });
      const t0 = performance.now();
      while (flood.opened < FLOOD_SOCKETS && performance.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 20));
      const joins = await joinFigures(FLOOD_JOINS, (i) => tryJoin(wsUrl, token('probe'), `probe-${i}`, upgradeProtocols(token('probe'))));
      const joinsWithoutCredential = addresses.includes('127.0.0.1') ? await joinFigures(FLOOD_JOINS, (i) => tryJoin(wsUrl, token('probe'), `old-${i}`, [])) : undefined;
      // The join attempts have left (else the round could sample one of them).
      while ((await metrics(url)).get('fedgan_connected_hospitals') !== 0) await new Promise((r) => setTimeout(r, 50));
      const roundSeconds = await roundOfTwo(phases.length + 1);
      const opened = flood.opened;
      await flood.stop();
      clearInterval(sampler);
      phases.push({ from, joins, ...(joinsWithoutCredential ? { joinsWithoutCredential } : {}), roundSeconds, floodSocketsOpened: opened, rssPeakDuring: peak });
      await new Promise((r) => setTimeout(r, 2000)); // the server cuts off what is left of the flood
    }
    const after = rssBytes(child.pid!);
    const m = await metrics(url);
    return {
      sockets: FLOOD_SOCKETS,
      phases,
      rss: { before, during: Math.max(...phases.map((p) => p.rssPeakDuring)), after },
      closedToMakeRoom: m.get('fedgan_refusals_total{reason="unauthenticated-budget"}') ?? 0,
      serverFull: m.get('fedgan_refusals_total{reason="server-full"}') ?? 0,
      summaryLogLines: log.split('\n').filter((l) => /unauthenticated connection/.test(l)).length,
    };
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

function joinText(what: string, j: JoinFigures): string {
  const refused = Object.entries(j.refusals).map(([k, n]) => `${n}× ${k}`).join(', ');
  return (
    `${what} accepted ${j.accepted} of ${j.tried}` +
    (j.accepted ? ` (open → welcome median ${j.secondsMedian.toFixed(2)} s, max ${j.secondsMax.toFixed(2)} s)` : '') +
    (refused ? `; refused: ${refused}` : '')
  );
}

function reportFlood(f: Awaited<ReturnType<typeof floodBench>>): void {
  for (const p of f.phases) {
    console.log(
      `flood of ${f.sockets} hello-less sockets from ${p.from} (${p.floodSocketsOpened} opened in all): ` +
        joinText('joins with the upgrade credential', p.joins) +
        (p.joinsWithoutCredential ? `; ${joinText('joins without it (older clients)', p.joinsWithoutCredential)}` : '') +
        `; a round of 2 hospitals during it: ${p.roundSeconds.toFixed(2)} s`,
    );
  }
  console.log(
    `flood: server RSS before ${(f.rss.before / MB).toFixed(0)} MB, peak during ${(f.rss.during / MB).toFixed(0)} MB (${fmtDelta(f.rss.during - f.rss.before)}), ` +
      `after ${(f.rss.after / MB).toFixed(0)} MB; ${f.closedToMakeRoom} unauthenticated sockets closed to make room, ${f.serverFull} refused as server full; ` +
      `${f.summaryLogLines} log lines about them`,
  );
}

const machine = `${cpus().length}× ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 1e9).toFixed(0)} GB, Node ${process.version}`;
console.log(`federation server benchmark on ${machine}`);
if (process.argv.includes('--flood-only')) {
  const f = await floodBench();
  reportFlood(f);
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ machine, flood: f }, null, 2));
  process.exit(0);
}
const agg = aggregationThroughput();
console.log(
  `aggregation (frame parse + decode/CRC/fingerprint/shapes + finite check + FedAvg add), ${(PARAMS / 1e6).toFixed(1)}M-param updates of ${(agg.updateBytes / MB).toFixed(1)} MB: ` +
    `${agg.gbPerSecond.toFixed(2)} GB/s wall (${agg.msPerUpdate.toFixed(1)} ms per update); ${agg.gbPerCpuSecond.toFixed(2)} GB/s per CPU-second (${agg.cpuMsPerUpdate.toFixed(1)} ms CPU per update)`,
);
if (process.argv.includes('--aggregation-only')) {
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ machine, aggregation: agg }, null, 2));
  process.exit(0);
}
const r = await round();
console.log(
  `round: ${r.clients} clients × ${(r.params / 1e6).toFixed(1)}M params (${(r.modelBytes / MB).toFixed(1)} MB): connect + first round frame ${r.connectSeconds.toFixed(2)} s, ` +
    `round ${r.roundSeconds.toFixed(2)} s (server: ${r.serverRoundSeconds.toFixed(2)} s${r.attempts > 1 ? `, completed at attempt ${r.attempts}` : ''}), ${(r.bytesOut! / 1e9).toFixed(2)} GB out, ${(r.bytesIn! / 1e9).toFixed(2)} GB in; ` +
    `in-round aggregation ${r.inRoundAggregationGBs.toFixed(2)} GB/s (${r.aggregationSeconds.toFixed(2)} s)`,
);
console.log(
  `server RSS: baseline ${(r.rss.baseline / MB).toFixed(0)} MB; when the round completed ${(r.rss.afterRound / MB).toFixed(0)} MB (${fmtDelta(r.rss.afterRound - r.rss.baseline)}); ` +
    `peak during the round (sampled every 5 ms) ${(r.rss.peak / MB).toFixed(0)} MB (${fmtDelta(r.rss.peakOverBaseline)} = ${(r.rss.peakOverBaseline / r.modelBytes).toFixed(2)}× model; ` +
    `goal ≤ 4× model = ${(r.rss.budget / MB).toFixed(0)} MB: ${r.rss.withinBudget ? 'met' : 'NOT met'})`,
);
const f = await floodBench();
reportFlood(f);
if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ machine, aggregation: agg, round: r, flood: f }, null, 2));
