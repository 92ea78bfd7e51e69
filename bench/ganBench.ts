import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { parseGanConfig, type GanType } from '../shared/config/ganConfig.ts';
import { createGan } from '../shared/gan/gan.ts';
import { createTrainer } from '../shared/gan/trainer.ts';
import { divideCounts, installGpuCounters, type GpuCounts } from '../shared/kernels/webgpu/gpuCounters.ts';
import { enableFastWebGPU, type FastWebGPU, type FastWebGPUOptions } from '../shared/kernels/webgpu/index.ts';
import { installGpuTimeline, type KernelTime } from './gpuTimeline.ts';
import { installKernelDispatches } from './kernelDispatches.ts';
import { clearSeenShapes, clearTunings, seenShapes, tuneConvolutions, type TuneResult } from '../shared/kernels/webgpu/convTuner.ts';

/**
 * The GAN training-step benchmark, host-independent: it runs in headless Chromium (bench/ganPage.ts)
 * and in Node with Dawn (bench/ganNode.ts). One "step" is one discriminator update and one generator
 * update (WGAN-GP runs with nCritic 1 so its step is comparable), on the project's own models at the
 * baseline-like size (generator.baseChannels 128, discriminator.baseChannels 32, latent 100, 2 classes),
 * with one fixed batch that stays on the GPU.
 */
/** 'stock' is tfjs as shipped; any other variant enables the fast path with its options. */
export interface Variant {
  name: string;
  /** Fast-path options; `tune` also times the convolution tile configurations after the warm-up (convTuner.ts). */
  fast?: FastWebGPUOptions & { tune?: boolean };
}
export const STOCK: Variant = { name: 'stock' };
export const FAST: Variant = { name: 'fast', fast: {} };

export interface BenchCase {
  gan: GanType;
  size: number;
  batch: number;
  /** Discriminator backbone (default cnn; vit: patch 8, dim 96, depth 4, heads 4). */
  disc?: 'cnn' | 'vit';
}

export interface BenchOptions {
  steps: number;
  warmup: number;
  /** Also count GPU calls per step and time kernels (a separate, untimed window). */
  profile?: boolean;
  /** Steps in the counting window. */
  countSteps?: number;
  /** Host hooks for a V8 CPU profile around the profiled window. */
  cpuProfile?: { start(): Promise<void>; stop(label: string): Promise<void> };
  log?: (line: string) => void;
  /** Called after each measured row (the runners save partial results, so a run cut short keeps them). */
  onRow?: (row: BenchRow, rows: BenchRow[]) => void;
}

export interface BenchRow extends BenchCase {
  variant: string;
  steps: number;
  msPerStep: number;
  /** Host time to record one step (until trainer.step returns), without waiting for the GPU. */
  hostMsPerStep: number;
  imgsPerSec: number;
  /** Per-step GPU call counts (profile mode). */
  counts?: GpuCounts;
  /** GPU time per program over one step (profile mode, where timestamps are available). */
  kernels?: KernelTime[];
  gpuMsPerStep?: number;
  /** Dispatches per step by outermost tfjs kernel and program, `Kernel:Program` (profile mode). */
  kernelDispatches?: Record<string, number>;
  /** Convolution tile configurations timed and chosen (variants with `tune`). */
  tuned?: TuneResult[];
}

export function ganConfigFor(c: BenchCase) {
  return parseGanConfig({
    gan: c.gan,
    imageSize: c.size,
    latentDim: 100,
    batchSize: c.batch,
    nCritic: 1,
    generator: { baseChannels: 128 },
    discriminator: { type: c.disc ?? 'cnn', baseChannels: 32 },
    seed: 7,
  });
}

function webgpu(): WebGPUBackend {
  if (tf.getBackend() !== 'webgpu') throw new Error(`the GAN benchmark needs the webgpu backend, not ${tf.getBackend()}`);
  return tf.backend() as WebGPUBackend;
}

/** Time one case with one variant; the fast path is enabled only for the duration of the case. */
export async function benchCase(c: BenchCase, variant: Variant, opts: BenchOptions): Promise<BenchRow> {
  const log = opts.log ?? (() => {});
  let fast: FastWebGPU | null = null;
  const { tune, ...fastOptions } = variant.fast ?? {};
  if (variant.fast) fast = enableFastWebGPU({ seed: 1234, ...fastOptions });
  // Each variant starts from the heuristic's tiles; a tuning variant times the shapes of its own case only.
  clearTunings();
  clearSeenShapes();
  const gan = createGan(ganConfigFor(c));
  const trainer = createTrainer(gan);
  const images = tf.tidy(() => tf.sub(tf.mul(tf.randomUniform([c.batch, c.size, c.size, 3], 0, 1, 'float32', 3), 2), 1)) as tf.Tensor4D;
  const labels = tf.tidy(() => tf.cast(tf.mod(tf.range(0, c.batch, 1, 'int32'), 2), 'int32')) as tf.Tensor1D;
  const batch = { images, labels };
  let hostMs = 0;
  const runSteps = async (n: number) => {
    let last: tf.Scalar[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const { dLoss, gLoss } = trainer.step(batch);
      hostMs += performance.now() - t;
      tf.dispose(last);
      last = [dLoss, gLoss];
    }
    const v = await Promise.all(last.map((t) => t.data()));
    tf.dispose(last);
    for (const x of v) if (!Number.isFinite(x[0])) throw new Error(`${c.gan} ${variant.name}: loss is ${x[0]}`);
  };
  try {
    await runSteps(opts.warmup);
    let tuned: TuneResult[] | undefined;
    if (tune) {
      // The shapes the warm-up met, each timed with every tile configuration; then warm up again with the choices.
      tuned = await tuneConvolutions(seenShapes());
      for (const t of tuned) log(`tuned ${t.shape}: ${t.chosen} (${Object.entries(t.times).map(([k, v]) => `${k} ${v.toFixed(3)} ms`).join(', ')})`);
      await runSteps(Math.max(1, opts.warmup));
    }
    hostMs = 0;
    const t0 = performance.now();
    await runSteps(opts.steps);
    const ms = (performance.now() - t0) / opts.steps;
    const row: BenchRow = { ...c, variant: variant.name, steps: opts.steps, msPerStep: round(ms, 2), hostMsPerStep: round(hostMs / opts.steps, 2), imgsPerSec: round((c.batch * 1000) / ms, 1), ...(tuned ? { tuned } : {}) };
    log(`${c.gan}${c.disc && c.disc !== 'cnn' ? `/${c.disc}` : ''} ${c.size}px b${c.batch} ${variant.name}: ${row.msPerStep} ms/step (host ${row.hostMsPerStep} ms), ${row.imgsPerSec} img/s`);
    if (opts.profile) {
      const n = opts.countSteps ?? 2;
      const counters = installGpuCounters(webgpu().device);
      await opts.cpuProfile?.start();
      await runSteps(n);
      await opts.cpuProfile?.stop(`${c.gan}-${c.size}-${c.batch}-${variant.name}`);
      counters.uninstall();
      row.counts = divideCounts(counters.snapshot(), n);
      // A separate window: the attribution wrappers would otherwise show in the CPU profile.
      const byKernel = installKernelDispatches(webgpu());
      try {
        await runSteps(1);
      } finally {
        byKernel.uninstall();
      }
      row.kernelDispatches = Object.fromEntries([...byKernel.snapshot()].sort((a, b) => b[1] - a[1]));
      const timeline = installGpuTimeline(webgpu());
      if (timeline) {
        try {
          await runSteps(1);
          row.kernels = await timeline.collect();
          row.gpuMsPerStep = round(row.kernels.reduce((s, k) => s + k.ms, 0), 2);
        } finally {
          timeline.uninstall();
        }
      }
    }
    return row;
  } finally {
    tf.dispose([images, labels]);
    trainer.dispose();
    gan.dispose();
    fast?.disable();
  }
}

export async function runBench(cases: BenchCase[], variants: Variant[], opts: BenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const c of cases) {
    for (const v of variants) {
      rows.push(await benchCase(c, v, opts));
      opts.onRow?.(rows[rows.length - 1], rows);
    }
  }
  return rows;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
