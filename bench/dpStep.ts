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
 *   --cases acgan:64:64,wgan-gp:64:64[:vit]  --steps 2  --warmup 1  --d-only  --out out/dp-bench.json
 *
 * Each case first checks, on the backend in use, that the per-example gradient norms equal single-tile
 * gradients (checkExactness). Each case also times the discriminator update alone (`--d-only`: only that), since on a CPU the
 * generator's update dominates the whole step. Prints one line per case and writes the rows (with the
 * backend and device) as JSON.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GanType } from '../shared/config/ganConfig.ts';
import { createGan } from '../shared/gan/gan.ts';
import { noAugment } from '../shared/gan/augment.ts';
import { saturatingDpLoss, wganGpDpLoss } from '../shared/gan/dpSteps.ts';
import { createTrainer } from '../shared/gan/trainer.ts';
import { dpUpdate, perExampleGradients, perExampleNorms } from '../shared/privacy/dpSgd.ts';
import { ganConfigFor, type BenchCase } from './ganBench.ts';

export interface DpBenchRow extends BenchCase {
  /** ms per whole training step (D and G updates) without and with DP, and DP / plain. */
  plainMs: number;
  dpMs: number;
  ratio: number;
  /**
   * ms per discriminator update alone, on the same per-example loss: its gradient as one mean (the layers'
   * ordinary path, fast path included) against DP-SGD's per-example gradients, clipping and noise.
   */
  plainDMs: number;
  dpDMs: number;
  dRatio: number;
  /** Largest relative error of the per-example gradient norms against single-tile gradients (checkExactness). */
  exactness: number;
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

/** The discriminator update alone, plain (gradient of the mean loss) or DP-SGD, on fixed reals and fakes. */
async function timeDiscriminator(c: BenchCase, dp: boolean, steps: number, warmup: number): Promise<number> {
  const gan = createGan(ganConfigFor(c));
  const { cfg, D } = gan;
  const vars = D.params.trainableVariables();
  const opt = tf.train.adam(1e-4);
  const s = c.size;
  const x = {
    reals: tf.randomUniform([c.batch, s, s, 3], -1, 1, 'float32', 3) as tf.Tensor4D,
    labels: tf.tidy(() => tf.cast(tf.mod(tf.range(0, c.batch, 1, 'int32'), 2), 'int32')) as tf.Tensor1D,
    fakes: tf.randomUniform([c.batch, s, s, 3], -1, 1, 'float32', 4) as tf.Tensor4D,
    fakeLabels: tf.tidy(() => tf.cast(tf.mod(tf.range(1, c.batch + 1, 1, 'int32'), 2), 'int32')) as tf.Tensor1D,
  };
  const eps = tf.randomUniform([c.batch, 1, 1, 1], 0, 1, 'float32', 5);
  const loss = () => (cfg.gan === 'wgan-gp' ? wganGpDpLoss(cfg, D, x, eps, noAugment) : saturatingDpLoss(cfg, D, x, noAugment));
  let seed = 1;
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const value = dp
        ? dpUpdate(opt, vars, c.batch, c.batch, loss, DP, () => seed++, cfg.gan !== 'wgan-gp')
        : tf.tidy(() => {
            const { value: v, grads } = tf.variableGrads(() => tf.mean(loss()) as tf.Scalar, vars);
            opt.applyGradients(vars.map((v) => ({ name: v.name, tensor: grads[v.name] })));
            return v;
          });
      const d = await value.data();
      value.dispose();
      if (!Number.isFinite(d[0])) throw new Error(`${c.gan} ${dp ? 'DP' : 'plain'} discriminator: loss is not finite`);
    }
  };
  try {
    await run(warmup);
    const t0 = performance.now();
    await run(steps);
    return (performance.now() - t0) / steps;
  } finally {
    opt.dispose();
    tf.dispose([x.reals, x.labels, x.fakes, x.fakeLabels, eps]);
    gan.dispose();
  }
}

/**
 * On the backend in use (WebGPU with its fast path, wasm, cpu): the one-pass per-example gradients of 4
 * tiles at the case's size against 4 single-tile gradients. Returns the largest relative error of the
 * per-example norms; throws above 1e-3 (float32 on a GPU), so a timing never hides wrong numbers.
 */
async function checkExactness(c: BenchCase): Promise<number> {
  const b = 4;
  // Without dropout: its masks would differ between the batch and the single tiles.
  const base = ganConfigFor({ ...c, batch: b });
  const gan = createGan({ ...base, discriminator: { ...base.discriminator, dropout: 0 } });
  const { cfg, D } = gan;
  const vars = D.params.trainableVariables();
  const s = c.size;
  const x = {
    reals: tf.randomUniform([b, s, s, 3], -1, 1, 'float32', 6) as tf.Tensor4D,
    labels: tf.tensor1d([0, 1, 1, 0], 'int32'),
    fakes: tf.randomUniform([b, s, s, 3], -1, 1, 'float32', 7) as tf.Tensor4D,
    fakeLabels: tf.tensor1d([1, 0, 1, 0], 'int32'),
  };
  const eps = tf.randomUniform([b, 1, 1, 1], 0, 1, 'float32', 8);
  const lossOf = (y: typeof x, e: tf.Tensor) => (cfg.gan === 'wgan-gp' ? wganGpDpLoss(cfg, D, y, e, noAugment) : saturatingDpLoss(cfg, D, y, noAugment));
  try {
    const got = tf.tidy(() => perExampleNorms(perExampleGradients(vars, b, () => lossOf(x, eps), cfg.gan !== 'wgan-gp').grads));
    const norms = await got.data();
    got.dispose();
    let worst = 0;
    for (let i = 0; i < b; i++) {
      const n = tf.tidy(() => {
        const one = <T extends tf.Tensor>(t: T) => tf.slice(t, [i], [1]) as T;
        const { grads } = tf.variableGrads(() => tf.sum(lossOf({ reals: one(x.reals), labels: one(x.labels), fakes: one(x.fakes), fakeLabels: one(x.fakeLabels) }, one(eps))) as tf.Scalar, vars);
        // Summed two at a time (an AddN over every variable exceeds WebGPU's buffer limit).
        return tf.sqrt(Object.values(grads).map((g) => tf.sum(tf.square(g))).reduce((a, g) => tf.add(a, g)));
      });
      const want = (await n.data())[0];
      n.dispose();
      worst = Math.max(worst, Math.abs(norms[i] - want) / want);
    }
    if (!(worst < 1e-3)) throw new Error(`${label(c)}: per-example gradient norms differ from single-tile gradients by ${worst} on ${tf.getBackend()}`);
    return worst;
  } finally {
    tf.dispose([x.reals, x.labels, x.fakes, x.fakeLabels, eps]);
    gan.dispose();
  }
}

/** Plain then DP, case by case (host-independent: Node or the browser page). */
export async function runDpBench(cases: BenchCase[], opts: { steps: number; warmup: number; dOnly?: boolean; log?: (l: string) => void }): Promise<DpBenchRow[]> {
  const rows: DpBenchRow[] = [];
  for (const c of cases) {
    const exactness = await checkExactness(c);
    opts.log?.(`${label(c)}: per-example gradient norms match single-tile gradients on ${tf.getBackend()} (largest relative error ${exactness.toExponential(1)})`);
    const plainDMs = await timeDiscriminator(c, false, opts.steps, opts.warmup);
    const dpDMs = await timeDiscriminator(c, true, opts.steps, opts.warmup);
    opts.log?.(`${label(c)}: discriminator update plain ${round(plainDMs)} ms, DP ${round(dpDMs)} ms`);
    const plainMs = opts.dOnly ? NaN : await timeSteps(c, false, opts.steps, opts.warmup);
    const dpMs = opts.dOnly ? NaN : await timeSteps(c, true, opts.steps, opts.warmup);
    const row = { ...c, plainMs: round(plainMs), dpMs: round(dpMs), ratio: round(dpMs / plainMs), plainDMs: round(plainDMs), dpDMs: round(dpDMs), dRatio: round(dpDMs / plainDMs), exactness, steps: opts.steps };
    opts.log?.(`${label(c)}: whole step plain ${row.plainMs} ms, DP ${row.dpMs} ms`);
    rows.push(row);
  }
  return rows;
}

function label(c: BenchCase): string {
  return `${c.gan}${c.disc ? `/${c.disc}` : ''} ${c.size}px batch ${c.batch}`;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

interface Args {
  cases: BenchCase[];
  steps: number;
  warmup: number;
  browser: boolean;
  /** Time the discriminator update only (the whole step's generator dominates on a CPU). */
  dOnly: boolean;
  out: string;
}

export function parseDpBenchArgs(argv: string[]): Args {
  const args: Args = { cases: [{ gan: 'acgan', size: 64, batch: 64 }, { gan: 'wgan-gp', size: 64, batch: 64 }], steps: 2, warmup: 1, browser: false, dOnly: false, out: 'out/dp-bench.json' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--browser') args.browser = true;
    else if (a === '--d-only') args.dOnly = true;
    else if (a === '--steps') args.steps = whole(a, value());
    else if (a === '--warmup') args.warmup = whole(a, value(), 0);
    else if (a === '--out') args.out = value();
    else if (a === '--cases') args.cases = value().split(',').map(parseCase);
    else throw new Error(`unknown option ${a} (known: --cases gan:size:batch[:disc],… --steps n --warmup n --d-only --browser --out file)`);
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
        { cases: args.cases, steps: args.steps, warmup: args.warmup, dOnly: args.dOnly },
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
    rows = await runDpBench(args.cases, { steps: args.steps, warmup: args.warmup, dOnly: args.dOnly, log: (l) => console.log(l) });
  }
  const path = (await nodeImport('node:path')) as unknown as typeof import('node:path');
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify({ backend, device, machine, date: new Date().toISOString(), dp: DP, rows }, null, 2));
  console.log(`\nDP cost on ${backend}, ${device === machine ? machine : `${device} (machine: ${machine})`}, ${new Date().toISOString()}:`);
  for (const r of rows) {
    const step = args.dOnly ? '' : `; whole step ${r.plainMs} → ${r.dpMs} ms (${r.ratio}×)`;
    console.log(`  ${label(r)}: discriminator update ${r.plainDMs} → ${r.dpDMs} ms (${r.dRatio}×)${step}`);
  }
  console.log(`wrote ${args.out}`);
}

async function browserRun(a: { cases: BenchCase[]; steps: number; warmup: number; dOnly: boolean }): Promise<{ device: string; rows: DpBenchRow[] }> {
  await import('@tensorflow/tfjs-backend-webgpu');
  const { initBackend } = await import('../shared/backend.ts');
  const choice = await initBackend(['webgpu']);
  if (choice.backend !== 'webgpu') throw new Error(`the webgpu backend did not initialise: ${JSON.stringify(choice.attempts)}`);
  const adapter = await (navigator as unknown as { gpu: GPU }).gpu.requestAdapter();
  const device = adapter ? `${adapter.info.vendor} ${adapter.info.architecture} ${adapter.info.description}`.trim() : 'unknown adapter';
  const rows = await runDpBench(a.cases, { steps: a.steps, warmup: a.warmup, dOnly: a.dOnly, log: (l) => console.log(l) });
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
