/**
 * Secure-aggregation overhead per round (shared/secagg): H hospitals, P parameters, the whole SecAgg
 * round in one process (no network): keys, Shamir shares (sealed per pair), fixed-point encoding and
 * masking at each hospital, the server's running sum and unmasking. Runs it without dropouts and with one
 * hospital dropping out after sharing its keys (the server then rebuilds its key and removes its pairwise
 * masks from every survivor's update). Reports per-hospital and server times and the bytes each hospital sends.
 *
 *     npm run bench:secagg -- [hospitals=10] [params=5000000]
 */
import { cpus } from 'node:os';
import { SecAggClient } from '../shared/secagg/client.ts';
import { SecAggCoordinator } from '../shared/secagg/coordinator.ts';
import { decodeSum, encodeUpdate, quantError, quantScale } from '../shared/secagg/quantize.ts';
import { roundThreshold, SECURE_AGGREGATION_DEFAULTS } from '../shared/secagg/config.ts';
import { Rng } from '../shared/rng.ts';
import type { WeightSet } from '../shared/weights.ts';

const H = Number(process.argv[2] ?? 10);
const P = Number(process.argv[3] ?? 5_000_000);
const cfg = SECURE_AGGREGATION_DEFAULTS;

const rng = new Rng(1);
const global: WeightSet = { fingerprint: 'bench', tensors: [{ name: 'g/kernel', shape: [P], data: Float32Array.from({ length: P }, () => rng.normal() * 0.05) }] };
/** One trained model reused by every hospital, nudged (the encoding cost does not depend on the values). */
const trained: WeightSet = { fingerprint: 'bench', tensors: [{ name: 'g/kernel', shape: [P], data: Float32Array.from(global.tensors[0].data, (v) => v + rng.normal() * 1e-3) }] };
const names = Array.from({ length: H }, (_, i) => `hospital-${String(i + 1).padStart(2, '0')}`);

const ms = (t0: number) => performance.now() - t0;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function run(dropAfterShares: number) {
  const scale = quantScale(cfg.clip, cfg.maxExamples, H);
  const co = new SecAggCoordinator({ round: 1, attempt: 1, sampled: names, threshold: (n) => roundThreshold(cfg, n, 2), length: P });
  const t: Record<string, number[]> = { keys: [], shares: [], receive: [], encode: [], mask: [], reveal: [] };
  const bytes = { keys: 0, shares: 0, masked: 0, reveal: 0 };
  let server = 0;
  const clients: SecAggClient[] = [];
  for (const h of names) {
    let t0 = performance.now();
    const c = await SecAggClient.create(h, 1, 1);
    const adv = c.advertise();
    t.keys.push(ms(t0));
    bytes.keys = JSON.stringify({ type: 'secagg-keys', round: 1, attempt: 1, ...adv }).length;
    t0 = performance.now();
    await co.addKeys(h, adv);
    server += ms(t0);
    clients.push(c);
  }
  let t0 = performance.now();
  const roster = co.closeKeys();
  server += ms(t0);
  for (const c of clients) {
    t0 = performance.now();
    const shares = await c.shareKeys(roster);
    t.shares.push(ms(t0));
    bytes.shares = JSON.stringify({ type: 'secagg-shares', round: 1, attempt: 1, shares }).length;
    t0 = performance.now();
    co.addShares(c.hospital, shares);
    server += ms(t0);
  }
  t0 = performance.now();
  const { members, forHospital } = co.closeShares();
  server += ms(t0);
  const dropped = names.slice(0, dropAfterShares);
  let examples = 0;
  for (const c of clients) {
    t0 = performance.now();
    await c.receiveShares(members, forHospital.get(c.hospital)!);
    t.receive.push(ms(t0));
    if (dropped.includes(c.hospital)) continue;
    t0 = performance.now();
    const enc = encodeUpdate(trained, global, 'average', 1000, { clip: cfg.clip, maxExamples: cfg.maxExamples, scale });
    t.encode.push(ms(t0));
    t0 = performance.now();
    const y = await c.mask(enc.words);
    t.mask.push(ms(t0));
    bytes.masked = y.byteLength;
    t0 = performance.now();
    co.addMasked(c.hospital, y);
    server += ms(t0);
    examples += enc.examples;
  }
  t0 = performance.now();
  const { survivors } = co.closeMasked();
  for (const c of clients.filter((x) => survivors.includes(x.hospital))) {
    const t1 = performance.now();
    const rev = c.reveal(survivors);
    t.reveal.push(ms(t1));
    bytes.reveal = JSON.stringify({ type: 'secagg-reveal', round: 1, attempt: 1, shares: rev }).length;
    co.addReveal(c.hospital, rev);
  }
  const { sum } = await co.unmask();
  const unmaskMs = ms(t0);
  t0 = performance.now();
  const result = decodeSum(sum, global, 'average', examples, scale);
  const decodeMs = ms(t0);
  // Check: every survivor sent the same update, so the result is that update within the bound.
  let worst = 0;
  for (let i = 0; i < P; i++) worst = Math.max(worst, Math.abs(result.tensors[0].data[i] - trained.tensors[0].data[i]));
  return { t, bytes, server, unmaskMs, decodeMs, worst, bound: quantError(scale, H, examples), survivors: survivors.length };
}

console.log(`secure aggregation, ${H} hospitals, ${(P / 1e6).toFixed(1)} M parameters, on ${cpus()[0]?.model ?? 'this CPU'} (${cpus().length} cores), Node ${process.version}, one process, no network`);
for (const drop of [0, 1]) {
  const r = await run(drop);
  const f = (x: number) => `${x.toFixed(0)} ms`;
  console.log(`\n${drop ? `${drop} hospital dropped out after sharing its keys` : 'no dropout'} (${r.survivors} updates summed):`);
  console.log(`  per hospital: keys ${f(mean(r.t.keys))}, sealing shares ${f(mean(r.t.shares))}, opening shares ${f(mean(r.t.receive))}, encoding ${f(mean(r.t.encode))}, masking ${f(mean(r.t.mask))}, unmasking answer ${f(mean(r.t.reveal))}`);
  console.log(`  server: adding ${r.survivors} masked updates + relaying ${f(r.server)}, unmasking ${f(r.unmaskMs)}, decoding the sum ${f(r.decodeMs)}`);
  console.log(`  bytes sent by a hospital: keys ${r.bytes.keys}, shares ${r.bytes.shares}, masked update ${(r.bytes.masked / 1e6).toFixed(1)} MB (a plain float32 update: ${((4 * P) / 1e6).toFixed(1)} MB), unmasking answer ${r.bytes.reveal}`);
  console.log(`  largest |result − FedAvg| ${r.worst.toExponential(2)} (bound ${r.bound.toExponential(2)} + float32 rounding)`);
}
