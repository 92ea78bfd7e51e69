import { mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { GanConfig } from '../../shared/config/ganConfig.ts';
import type { BatchNormPolicy } from '../../shared/fed/batchNormPolicy.ts';
import type { WeightSet } from '../../shared/weights.ts';
import { writeFileAtomic } from '../atomicFile.ts';
import type { Logger } from '../log.ts';

/**
 * The global model, seen: after each new global model the server renders one sample grid (one row per
 * class, shared/gan/sampleGrid.ts, fixed latents so successive grids compare tile by tile) with tfjs on
 * its CPU, in a worker thread (workerRenderer), encodes it as PNG (node/png.ts) and keeps the last `keep`
 * in STATE_DIR/console/samples/ (round-000042.png). A FedBN global (`batchNorm: local`) has its
 * generator's batch-norm statistics recalibrated first (shared/gan/recalibrateBatchNorm.ts, as the
 * evaluator does, with fewer samples: PREVIEW_RECALIBRATION).
 *
 * Cost is bounded: a small grid (`perClass` tiles per class), rendered after the round is announced (a
 * timer turn later, never inside the round's aggregation or checkpoint write) and off the event loop, one
 * render at a time; a model that arrives while one renders waits, and only the newest waiting one is
 * rendered (older ones are skipped). Weights that are not of the configured GAN (test models) are never
 * rendered: one warning.
 */

export const SAMPLES_DIR = 'samples';
const FILE_RE = /^round-(\d{6,})\.png$/;

/** Renders one grid as PNG bytes (default: workerRenderer; tests may inject). Resolves null when it cannot (another model). */
export type GridRenderer = (weights: WeightSet, model: GanConfig, batchNorm: BatchNormPolicy, perClass: number, seed: number) => Promise<Uint8Array | null>;

export interface SampleGridOptions {
  /** STATE_DIR/console */
  dir: string;
  /** Grids kept (the newest); 0 turns rendering off. */
  keep: number;
  /** Tiles per class (one row per class). */
  perClass: number;
  /** Seed of the fixed latents. */
  seed?: number;
  model: GanConfig;
  batchNorm: BatchNormPolicy;
  log: Logger;
  render?: GridRenderer;
  /** Called after a grid is written. */
  onRendered?: (round: number, ms: number) => void;
}

export const SAMPLE_SEED = 1234;

export class SampleGrids {
  readonly dir: string;
  private busy = false;
  private waiting?: { round: number; weights: WeightSet };
  private disabled = false;
  private closed = false;
  private readonly render: GridRenderer;
  private readonly closeRenderer: () => void;
  private readonly where: string;
  private idle: Promise<void> = Promise.resolve();
  /** Skipped because a newer model came while one rendered (tests, status). */
  skipped = 0;
  private listeners: ((round: number, ms: number) => void)[] = [];

  /** Called after each grid is written (the console pushes the overview, the metrics record the time). */
  onRendered(fn: (round: number, ms: number) => void): void {
    this.listeners.push(fn);
  }

  constructor(private readonly opts: SampleGridOptions) {
    this.dir = join(opts.dir, SAMPLES_DIR);
    const own = opts.render ? undefined : workerRenderer();
    this.render = opts.render ?? own!;
    this.closeRenderer = own ? () => own.close() : () => {};
    this.where = own ? 'tfjs in a worker thread' : 'tfjs';
    if (opts.keep > 0) mkdirSync(this.dir, { recursive: true });
  }

  get enabled(): boolean {
    return this.opts.keep > 0 && !this.disabled;
  }

  /** Rounds with a grid on disk, newest first. */
  list(): number[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names
      .map((n) => FILE_RE.exec(n))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => Number(m[1]))
      .sort((a, b) => b - a);
  }

  file(round: number): string {
    return join(this.dir, `round-${String(round).padStart(6, '0')}.png`);
  }

  /** A new global model: render its grid soon (coalesced with any model still waiting). */
  schedule(round: number, weights: WeightSet): void {
    if (!this.enabled || this.closed) return;
    if (this.waiting) this.skipped++;
    this.waiting = { round, weights };
    if (!this.busy) this.kick();
  }

  /** Resolves once nothing is rendering or waiting (tests). */
  async settled(): Promise<void> {
    while (this.busy || this.waiting) await this.idle;
  }

  close(): void {
    this.closed = true;
    this.waiting = undefined;
    this.closeRenderer();
  }

  private kick(): void {
    this.busy = true;
    this.idle = new Promise<void>((res) => {
      // A timer turn later: the round's announcement and the next round's start go first.
      setTimeout(() => void this.drain().finally(res), 0).unref?.();
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting && !this.closed) {
        const job = this.waiting;
        this.waiting = undefined;
        const t0 = performance.now();
        let png: Uint8Array | null;
        try {
          png = await this.render(job.weights, this.opts.model, this.opts.batchNorm, this.opts.perClass, this.opts.seed ?? SAMPLE_SEED);
        } catch (e) {
          this.opts.log.warn(`sample grid of round ${job.round} could not be rendered: ${(e as Error).message}`);
          continue;
        }
        if (png === null) {
          this.disabled = true;
          this.opts.log.warn(`sample grids are off: the global weights (${job.weights.fingerprint}) are not those of the configured GAN`);
          return;
        }
        if (this.closed) return;
        await writeFileAtomic(this.file(job.round), png);
        this.prune();
        const ms = performance.now() - t0;
        this.opts.log.info(`sample grid of round ${job.round} rendered in ${ms.toFixed(0)} ms (${this.opts.perClass} per class, ${this.where})`);
        this.opts.onRendered?.(job.round, ms);
        for (const fn of this.listeners) fn(job.round, ms);
        // Let other work run between renders.
        await new Promise((r) => setImmediate(r));
      }
    } catch (e) {
      this.opts.log.warn(`sample grids: ${(e as Error).message}`);
    } finally {
      this.busy = false;
    }
  }

  private prune(): void {
    for (const round of this.list().slice(this.opts.keep)) {
      try {
        unlinkSync(this.file(round));
      } catch {
        // already gone
      }
    }
  }
}

let cached: { key: string; gan: import('../../shared/gan/gan.ts').Gan } | undefined;

/** One grid to render: the global weights (plain arrays, copied), the model, its batch-norm policy, the grid's size and seed. */
export interface RenderJob {
  weights: WeightSet;
  model: GanConfig;
  batchNorm: BatchNormPolicy;
  perClass: number;
  seed: number;
}

/**
 * The batch-norm recalibration of a FedBN preview: smaller than the evaluator's (shared/gan/recalibrateBatchNorm.ts
 * RECALIBRATION_DEFAULTS, 8 × 64), which takes minutes of CPU for the default model; 4 × 32 generated samples
 * still give every layer's statistics.
 */
export const PREVIEW_RECALIBRATION = { batches: 4, batchSize: 32 } as const;

/**
 * Render one grid with tfjs on the backend in use (the GAN is built once and reused): PNG bytes, or null
 * when the weights are not those of the configured GAN.
 */
export async function renderGrid(job: RenderJob): Promise<Uint8Array | null> {
  const { createGan } = await import('../../shared/gan/gan.ts');
  const { generateSampleGrid } = await import('../../shared/gan/sampleGrid.ts');
  const { recalibrateGeneratorBatchNorm } = await import('../../shared/gan/recalibrateBatchNorm.ts');
  const { encodePng } = await import('../../node/png.ts');
  const key = JSON.stringify(job.model);
  if (!cached || cached.key !== key) {
    cached?.gan.dispose();
    cached = { key, gan: createGan(job.model) };
  }
  const gan = cached.gan;
  if (gan.fingerprint !== job.weights.fingerprint) return null;
  gan.setWeights(job.weights);
  if (job.batchNorm === 'local') recalibrateGeneratorBatchNorm(gan, PREVIEW_RECALIBRATION);
  const grid = await generateSampleGrid(gan, job.perClass, job.seed);
  return new Uint8Array(encodePng(grid.width, grid.height, grid.rgba));
}

/** How long one render may take in the worker before it is stopped (and the worker started afresh). */
export const RENDER_TIMEOUT_MS = 10 * 60_000;

/**
 * The default renderer: renderGrid in a worker thread (server/console/renderWorker.ts, tfjs on wasm, else
 * cpu), so the server's event loop never waits for it. The weights are copied to it (a few MB). The worker
 * starts with the first grid and is stopped by closeRenderWorker (server shutdown).
 */
export function workerRenderer(): GridRenderer & { close(): void } {
  let worker: import('node:worker_threads').Worker | undefined;
  let nextId = 1;
  const waiting = new Map<number, { resolve: (v: Uint8Array | null) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  const fail = (e: Error) => {
    for (const w of waiting.values()) (clearTimeout(w.timer), w.reject(e));
    waiting.clear();
    worker = undefined;
  };
  const start = async () => {
    const { Worker } = await import('node:worker_threads');
    // A JavaScript entry that registers tsx in the worker's thread, then loads renderWorker.ts.
    const w = new Worker(new URL('./renderWorker.mjs', import.meta.url));
    w.unref();
    w.on('message', (m: { id: number; png?: Uint8Array | null; error?: string }) => {
      const job = waiting.get(m.id);
      if (!job) return;
      waiting.delete(m.id);
      clearTimeout(job.timer);
      if (m.error !== undefined) job.reject(new Error(m.error));
      else job.resolve(m.png ? new Uint8Array(m.png) : null);
    });
    w.on('error', (e) => fail(e));
    w.on('exit', (code) => fail(new Error(`the render worker stopped (exit code ${code})`)));
    return w;
  };
  const render = (async (weights, model, batchNorm, perClass, seed) => {
    worker ??= await start();
    const w = worker;
    const id = nextId++;
    // Copies, never views: a view of the checkpoint would clone all of it once per tensor.
    const copy: WeightSet = { fingerprint: weights.fingerprint, tensors: weights.tensors.map((t) => ({ name: t.name, shape: [...t.shape], data: t.data.slice() })) };
    return new Promise<Uint8Array | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`no grid within ${RENDER_TIMEOUT_MS / 1000} s: the render worker is restarted`));
        void w.terminate();
      }, RENDER_TIMEOUT_MS);
      timer.unref();
      waiting.set(id, { resolve, reject, timer });
      w.postMessage({ id, weights: copy, model, batchNorm, perClass, seed } satisfies RenderJob & { id: number });
    });
  }) as GridRenderer & { close(): void };
  render.close = () => {
    const w = worker;
    worker = undefined;
    fail(new Error('the server is shutting down'));
    void w?.terminate();
  };
  return render;
}

/**
 * Render on this thread (the backend in use; the CPU one in a server that has not started tfjs otherwise).
 * Blocks the event loop while it renders: for tests and tools, not for a running server.
 */
export const renderInThread: GridRenderer = async (weights, model, batchNorm, perClass, seed) => {
  const tf = await import('@tensorflow/tfjs-core');
  tf.env().set('PROD', true);
  const { initBackend } = await import('../../shared/backend.ts');
  if (!tf.engine().backendName) await initBackend(['cpu']);
  return renderGrid({ weights, model, batchNorm, perClass, seed });
};
