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
 *
 *     npm run bench:server -- [--clients 100] [--params 5000000] [--json bench.json] [--aggregation-only]
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
import { serverCrc32 } from '../server/nativeCrc32.ts';
import { decodeUpdateWeights } from '../server/updateDecode.ts';
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
    const agg = new RoundAggregation(parseFedConfig({}), global);
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
    `rounds: 1\nfraction: 1\nminFit: ${CLIENTS}\nminAvailable: ${CLIENTS}\nminCompletion: ${CLIENTS}\nroundDeadlineSeconds: 600\nlimits:\n  maxConnections: ${CLIENTS + 16}\n  heartbeatSeconds: 60\n`,
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
          createSocket: (u) => new WebSocket(u, { perMessageDeflate: false, maxPayload: 1 << 30 }),
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

const machine = `${cpus().length}× ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 1e9).toFixed(0)} GB, Node ${process.version}`;
console.log(`federation server benchmark on ${machine}`);
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
if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ machine, aggregation: agg, round: r }, null, 2));
