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
 * its CPU, encodes it as PNG (node/png.ts) and keeps the last `keep` in STATE_DIR/console/samples/
 * (round-000042.png). A FedBN global (`batchNorm: local`) has its generator's batch-norm statistics
 * recalibrated first (shared/gan/recalibrateBatchNorm.ts), as the evaluator does.
 *
 * Cost is bounded: a small grid (`perClass` tiles per class), rendered after the round is announced (a
 * timer turn later, never inside the round's aggregation or checkpoint write), one render at a time; a
 * model that arrives while one renders waits, and only the newest waiting one is rendered (older ones are
 * skipped). Weights that are not of the configured GAN (test models) are never rendered: one warning.
 */

export const SAMPLES_DIR = 'samples';
const FILE_RE = /^round-(\d{6,})\.png$/;

/** Renders one grid as PNG bytes (default: tfjs CPU; tests may inject). Resolves null when it cannot (another model). */
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
  private idle: Promise<void> = Promise.resolve();
  /** Skipped because a newer model came while one rendered (tests, status). */
  skipped = 0;

  constructor(private readonly opts: SampleGridOptions) {
    this.dir = join(opts.dir, SAMPLES_DIR);
    this.render = opts.render ?? renderWithTfjs;
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
        this.opts.log.info(`sample grid of round ${job.round} rendered in ${ms.toFixed(0)} ms (${this.opts.perClass} per class, tfjs CPU)`);
        this.opts.onRendered?.(job.round, ms);
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

/** The default renderer: the configured GAN on the tfjs backend in use, the CPU one in the server (the model is built once and reused). */
export const renderWithTfjs: GridRenderer = async (weights, model, batchNorm, perClass, seed) => {
  const tf = await import('@tensorflow/tfjs-core');
  tf.env().set('PROD', true);
  const { initBackend } = await import('../../shared/backend.ts');
  // The server's own backend (cpu, set when it built the initial weights); in a process that already
  // runs tfjs (tests with in-process hospitals) the one in use.
  if (!tf.engine().backendName) await initBackend(['cpu']);
  const { createGan } = await import('../../shared/gan/gan.ts');
  const { generateSampleGrid } = await import('../../shared/gan/sampleGrid.ts');
  const { recalibrateGeneratorBatchNorm } = await import('../../shared/gan/recalibrateBatchNorm.ts');
  const { encodePng } = await import('../../node/png.ts');
  const key = JSON.stringify(model);
  if (!cached || cached.key !== key) {
    cached?.gan.dispose();
    cached = { key, gan: createGan(model) };
  }
  const gan = cached.gan;
  if (gan.fingerprint !== weights.fingerprint) return null;
  gan.setWeights(weights);
  if (batchNorm === 'local') recalibrateGeneratorBatchNorm(gan);
  const grid = await generateSampleGrid(gan, perClass, seed);
  return new Uint8Array(encodePng(grid.width, grid.height, grid.rgba));
};
