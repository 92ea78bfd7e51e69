/**
 * `npm run bench:dp` — the cost of differential privacy: one training step (one discriminator update and
 * one generator update; WGAN-GP with nCritic 1) with DP-SGD on the discriminator (per-example gradients,
 * clipping, noise: shared/privacy/dpSgd.ts) against the same step without, on the same model and batch,
 * and their ratio. Models as bench/ganBench.ts builds them (generator 128 channels, CNN discriminator 32,
 * latent 100, 2 classes).
 *
 *   npm run bench:dp                                   Node: wasm (TFJS_BACKEND=cpu for the cpu backend;
 *                                                      DAWN_NODE=… for WebGPU through Dawn, fast path on)
 *   npm run bench:dp -- --browser                      headless Chromium on WebGPU (SwiftShader without a
 *                                                      GPU), the project's fast path on
 *   --cases acgan:64:64,wgan-gp:64:64[:vit]  --steps 2  --warmup 1  --out dp-bench.json
 *
 * Prints one line per case and writes the rows (with the backend and device) as JSON.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GanType } from '../shared/config/ganConfig.ts';
import { createGan } from '../shared/gan/gan.ts';
import { createTrainer } from '../shared/gan/trainer.ts';
import { ganConfigFor, type BenchCase } from './ganBench.ts';

export interface DpBenchRow extends BenchCase {
  /** ms per step without and with DP, and DP / plain. */
  plainMs: number;
  dpMs: number;
  ratio: number;
  steps: number;
}

const DP = { noiseMultiplier: 1, clipNorm: 1, noiseSeed: 12345 };

async function timeSteps(c: BenchCase, dp: boolean, steps: number, warmup: number): Promise<number> {
  const gan = createGan(ganConfigFor(c));
  const trainer = createTrainer(gan, 7, dp ? { dp: DP } : {});
  const images = tf.tidy(() => tf.randomUniform([c.batch, c.size, c.size, 3], -1, 1, 'float32', 3)) as tf.Tensor4D;
  const labels = tf.tidy(() => tf.cast(tf.mod(tf.range(0, c.batch, 1, 'int32'), 2), 'int32')) as tf.Tensor1D;
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const { dLoss, gLoss } = trainer.step({ images, labels });
      const [d, g] = await Promise.all([dLoss.data(), gLoss.data()]);
      tf.dispose([dLoss, gLoss]);
      if (!Number.isFinite(d[0]) || !Number.isFinite(g[0])) throw new Error(`${c.gan} ${dp ? 'DP' : 'plain'}: loss is not finite`);
    }
  };
  try {
    await run(warmup);
    const t0 = performance.now();
    await run(steps);
    return (performance.now() - t0) / steps;
  } finally {
    trainer.dispose();
    tf.dispose([images, labels]);
    gan.dispose();
  }
}

/** Plain then DP, case by case (host-independent: Node or the browser page). */
export async function runDpBench(cases: BenchCase[], opts: { steps: number; warmup: number; log?: (l: string) => void }): Promise<DpBenchRow[]> {
  const rows: DpBenchRow[] = [];
  for (const c of cases) {
    const plainMs = await timeSteps(c, false, opts.steps, opts.warmup);
    const dpMs = await timeSteps(c, true, opts.steps, opts.warmup);
    const row = { ...c, plainMs: round(plainMs), dpMs: round(dpMs), ratio: round(dpMs / plainMs), steps: opts.steps };
    opts.log?.(`${c.gan}${c.disc ? `/${c.disc}` : ''} ${c.size}px batch ${c.batch}: plain ${row.plainMs} ms/step, DP ${row.dpMs} ms/step, DP/plain ${row.ratio}×`);
    rows.push(row);
  }
  return rows;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

interface Args {
  cases: BenchCase[];
  steps: number;
  warmup: number;
  browser: boolean;
  out: string;
}

export function parseDpBenchArgs(argv: string[]): Args {
  const args: Args = { cases: [{ gan: 'acgan', size: 64, batch: 64 }, { gan: 'wgan-gp', size: 64, batch: 64 }], steps: 2, warmup: 1, browser: false, out: 'dp-bench.json' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--browser') args.browser = true;
    else if (a === '--steps') args.steps = whole(a, value());
    else if (a === '--warmup') args.warmup = whole(a, value(), 0);
    else if (a === '--out') args.out = value();
    else if (a === '--cases') args.cases = value().split(',').map(parseCase);
    else throw new Error(`unknown option ${a} (known: --cases gan:size:batch[:disc],… --steps n --warmup n --browser --out file)`);
  }
  return args;
}

function whole(name: string, v: string, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be a whole number ≥ ${min}, got "${v}"`);
  return n;
}

function parseCase(s: string): BenchCase {
  const [gan, size, batch, disc, ...rest] = s.split(':');
  if (!['acgan', 'cgan', 'wgan-gp'].includes(gan) || !(+size > 0) || !(+batch > 0) || (disc !== undefined && disc !== 'cnn' && disc !== 'vit') || rest.length) {
    throw new Error(`--cases entry "${s}" must be gan:size:batch[:disc] with gan acgan, cgan or wgan-gp and disc cnn or vit, e.g. acgan:64:64`);
  }
  return { gan: gan as GanType, size: +size, batch: +batch, ...(disc && disc !== 'cnn' ? { disc: disc as 'vit' } : {}) };
}

/** Node-only modules, imported by a computed name so that the browser bundle of this file leaves them out. */
const nodeImport = (m: string): Promise<Record<string, unknown>> => import(/* @vite-ignore */ m);

async function mainNode(): Promise<void> {
  const args = parseDpBenchArgs(process.argv.slice(2));
  const fs = (await nodeImport('node:fs')) as typeof import('node:fs');
  const os = (await nodeImport('node:os')) as typeof import('node:os');
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}`;
  let backend: string;
  let device: string;
  let rows: DpBenchRow[];
  if (args.browser) {
    const url = (await nodeImport('node:url')) as typeof import('node:url');
    const page = (await nodeImport('./chromiumPage.ts')) as typeof import('./chromiumPage.ts');
    const bundle = await page.bundleForBrowser(url.fileURLToPath(import.meta.url));
    const { page: p, close } = await page.openWebGPUPage(bundle, { onConsole: (l) => console.log(`  ${l}`) });
    try {
      ({ device, rows } = await p.evaluate(
        (a) => (globalThis as unknown as { __dpBench: { run(x: typeof a): Promise<{ device: string; rows: DpBenchRow[] }> } }).__dpBench.run(a),
        { cases: args.cases, steps: args.steps, warmup: args.warmup },
      ));
    } finally {
      await close();
    }
    backend = 'webgpu (headless Chromium, fast path on)';
  } else {
    const { initNodeBackend } = (await nodeImport('../node/nodeBackend.ts')) as typeof import('../node/nodeBackend.ts');
    const choice = await initNodeBackend();
    backend = `${choice.backend} (Node)`;
    device = process.env.DAWN_NODE ? 'Dawn adapter' : machine;
    rows = await runDpBench(args.cases, { steps: args.steps, warmup: args.warmup, log: (l) => console.log(l) });
  }
  fs.writeFileSync(args.out, JSON.stringify({ backend, device, machine, date: new Date().toISOString(), dp: DP, rows }, null, 2));
  console.log(`\nDP step cost on ${backend}, ${device} (machine: ${machine}):`);
  for (const r of rows) console.log(`  ${r.gan}${r.disc ? `/${r.disc}` : ''} ${r.size}px b${r.batch}: ${r.plainMs} → ${r.dpMs} ms/step (${r.ratio}×)`);
  console.log(`wrote ${args.out}`);
}

async function browserRun(a: { cases: BenchCase[]; steps: number; warmup: number }): Promise<{ device: string; rows: DpBenchRow[] }> {
  await import('@tensorflow/tfjs-backend-webgpu');
  const { initBackend } = await import('../shared/backend.ts');
  const choice = await initBackend(['webgpu']);
  if (choice.backend !== 'webgpu') throw new Error(`the webgpu backend did not initialise: ${JSON.stringify(choice.attempts)}`);
  const adapter = await (navigator as unknown as { gpu: GPU }).gpu.requestAdapter();
  const device = adapter ? `${adapter.info.vendor} ${adapter.info.architecture} ${adapter.info.description}`.trim() : 'unknown adapter';
  const rows = await runDpBench(a.cases, { steps: a.steps, warmup: a.warmup, log: (l) => console.log(l) });
  return { device, rows };
}

const inBrowser = typeof (globalThis as { window?: unknown }).window !== 'undefined' && typeof (globalThis as { document?: unknown }).document !== 'undefined';
if (inBrowser) {
  tf.env().set('PROD', true);
  Object.assign(globalThis, { __dpBench: { run: browserRun }, __pageReady: true });
} else if (typeof process !== 'undefined' && process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  mainNode().then(
    () => process.exit(0),
    (e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    },
  );
}
