import * as tf from '@tensorflow/tfjs-core';
import { decodeWeights, encodeWeights } from '../shared/codec/weightsCodec.ts';
import { parseGanConfig, type GanConfig } from '../shared/config/ganConfig.ts';
import { datasetFromTiles, type Dataset } from '../shared/data/dataset.ts';
import { applyGlobalWeights, type BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { createGan, generate, type Gan } from '../shared/gan/gan.ts';
import { trainLocal } from '../shared/gan/localTraining.ts';
import type { StepLosses } from '../shared/gan/step.ts';
import { createTrainer, type GanTrainer } from '../shared/gan/trainer.ts';
import { tileGrid, toRgbBytes } from '../shared/image/grid.ts';
import type { RoundConfig } from '../shared/protocol/messages.ts';
import type { TrainFn, TrainResult } from '../shared/protocol/federationClient.ts';
import type { WeightSet } from '../shared/weights.ts';
import { buildExportZip, type ModelCard, type SyntheticClass } from './exportZip.ts';
import { encodePngRgb } from './png.ts';
import type { StoredModel, TileStore } from './tileStore.ts';

/**
 * The hospital's models in the worker: local training for a round (the federation client's TrainFn),
 * sample grids from the global generator, and synthetic images for export. Two GAN instances so the
 * preview/export model never disturbs a round being trained.
 */

/** Fixed latent seed of the sample grid, so rounds can be compared image by image. */
export const SAMPLE_SEED = 1234;
export const SAMPLES_PER_CLASS = 8;
const EXPORT_SEED = 20240601;
const EXPORT_BATCH = 32;
/** Training steps dispatched to the device but not yet finished (see train()). */
const MAX_IN_FLIGHT = 2;

export interface TrainingProgress {
  round: number;
  attempt: number;
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  fraction: number;
}

export interface LocalModelEvents {
  onTrainingProgress(p: TrainingProgress): void;
  /** A loss reading during training; x is the position in rounds (round − 1 + fraction). */
  onLoss(round: number, x: number, dLoss: number, gLoss: number): void;
  onSamples(s: { round: number; classes: string[]; perClass: number; size: number; rgba: Uint8ClampedArray; width: number; height: number }): void;
}

interface ModelSlot {
  key: string;
  gan: Gan;
  trainer?: GanTrainer;
}

/** Round config → GAN config, with the round's learning rates. */
export function ganConfigForRound(rc: RoundConfig): GanConfig {
  const cfg = parseGanConfig(rc.model, `round ${rc.round} model config`);
  return {
    ...cfg,
    optimizerG: { ...cfg.optimizerG, learningRate: rc.learningRate.generator },
    optimizerD: { ...cfg.optimizerD, learningRate: rc.learningRate.discriminator },
  };
}

/** Runs async jobs one after another (the preview model is shared by samples and export). */
function serial() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(job: () => Promise<T>): Promise<T> => {
    const run = tail.then(job, job);
    tail = run.catch(() => {});
    return run;
  };
}

export class LocalModel {
  private training?: ModelSlot;
  private preview?: ModelSlot;
  private dataset?: { key: string; ds: Dataset };
  private tilesVersion = 0;
  private localWeights?: WeightSet;
  private readonly previewQueue = serial();

  constructor(
    private readonly store: TileStore,
    private readonly events: LocalModelEvents,
  ) {}

  /** Tiles changed (import, delete): rebuild the training set before the next round. */
  tilesChanged(): void {
    this.tilesVersion++;
  }

  private slot(which: 'training' | 'preview', cfg: GanConfig): ModelSlot {
    const key = JSON.stringify(cfg);
    const cur = this[which];
    if (cur && cur.key === key) return cur;
    if (cur) {
      cur.trainer?.dispose();
      cur.gan.dispose();
    }
    const gan = createGan(cfg);
    const slot: ModelSlot = { key, gan, ...(which === 'training' ? { trainer: createTrainer(gan) } : {}) };
    this[which] = slot;
    return slot;
  }

  private async ensureDataset(cfg: GanConfig): Promise<Dataset> {
    const key = `${cfg.classes.join(',')}|${cfg.imageSize}|${this.tilesVersion}`;
    if (this.dataset?.key === key) return this.dataset.ds;
    this.dataset?.ds.dispose();
    this.dataset = undefined;
    const tiles = await this.store.loadTiles(cfg.classes, cfg.imageSize);
    if (tiles.length === 0) throw new Error(`no tiles of ${cfg.imageSize}×${cfg.imageSize} px for classes ${cfg.classes.join(', ')} on this computer: import tiles first`);
    const ds = datasetFromTiles(tiles.map((t) => ({ pixels: t.pixels, label: cfg.classes.indexOf(t.label) })), cfg.imageSize, cfg.classes.length);
    this.dataset = { key, ds };
    return ds;
  }

  private async loadLocalWeights(fingerprint: string): Promise<WeightSet | undefined> {
    if (this.localWeights?.fingerprint === fingerprint) return this.localWeights;
    const stored = await this.store.getModel('local');
    if (!stored || stored.fingerprint !== fingerprint) return undefined;
    this.localWeights = decodeWeights(stored.bytes, { copy: true }).weights;
    return this.localWeights;
  }

  /** The federation client's TrainFn: one round of local training from the global weights. */
  readonly train: TrainFn = async (global, rc, progress, signal): Promise<TrainResult> => {
    const cfg = ganConfigForRound(rc);
    const slot = this.slot('training', cfg);
    const gan = slot.gan;
    const trainer = slot.trainer!;
    const local = await this.loadLocalWeights(global.fingerprint);
    gan.setWeights(applyGlobalWeights(global, local, rc.batchNorm as BatchNormPolicy));
    trainer.resetOptimizers();
    const ds = await this.ensureDataset(cfg);
    if (ds.count < rc.examples.min) throw new Error(`this hospital has ${ds.count} tiles; the federation asks for at least ${rc.examples.min}`);
    if (signal.aborted) throw new Error('aborted');

    const epochs = rc.localEpochs;
    const stepsPerEpoch = Math.max(1, Math.floor(ds.count / Math.min(cfg.batchSize, ds.count)));
    const totalSteps = epochs * stepsPerEpoch;
    const report = (done: number) => {
      const epoch = Math.min(epochs - 1, Math.floor(Math.max(0, done - 1) / stepsPerEpoch));
      const step = done === 0 ? 0 : done - epoch * stepsPerEpoch;
      const fraction = done / totalSteps;
      progress(fraction, `epoch ${epoch + 1}/${epochs}, step ${step}/${stepsPerEpoch}`);
      this.events.onTrainingProgress({ round: rc.round, attempt: rc.attempt, epoch, epochs, step, stepsPerEpoch, fraction });
    };
    // Every step's two losses are read back asynchronously, and the loop waits before dispatching a
    // step while MAX_IN_FLIGHT steps are still unread: the device stays busy, but progress, the live
    // chart and cancellation follow the steps the device has really finished.
    const inFlight: Promise<void>[] = [];
    let dispatched = 0;
    let lastLossAt = 0;
    const events = this.events;
    const watched: GanTrainer = {
      gan,
      get step() {
        const inner = trainer.step;
        return (batch: Parameters<typeof inner>[0]): StepLosses => {
          const r = inner(batch);
          const k = ++dispatched;
          const both = tf.stack([r.dLoss, r.gLoss]);
          inFlight.push(
            both.data().then(
              (v) => {
                both.dispose();
                report(k);
                const now = Date.now();
                if ((now - lastLossAt >= 200 || k === totalSteps) && Number.isFinite(v[0]) && Number.isFinite(v[1])) {
                  lastLossAt = now;
                  events.onLoss(rc.round, rc.round - 1 + k / totalSteps, v[0], v[1]);
                }
              },
              () => both.dispose(),
            ),
          );
          return r;
        };
      },
      resetOptimizers: () => trainer.resetOptimizers(),
      dispose: () => {},
    };
    report(0);
    const res = await trainLocal(watched, ds, {
      epochs,
      batchSize: cfg.batchSize,
      seed: cfg.seed + rc.round * 7919 + rc.attempt,
      shouldStop: () => signal.aborted,
      beforeStep: async () => {
        while (inFlight.length >= MAX_IN_FLIGHT) await inFlight.shift();
      },
    });
    await Promise.all(inFlight);
    if (signal.aborted) throw new Error('aborted');
    const weights = await gan.getWeightsAsync();
    this.localWeights = { fingerprint: weights.fingerprint, tensors: weights.tensors.map((t) => ({ ...t, data: t.data.slice() })) };
    await this.store.putModel('local', { round: rc.round, bytes: encodeWeights(this.localWeights), fingerprint: weights.fingerprint, config: rc.model, savedAt: Date.now() });
    return { weights, examples: Math.min(res.examples, rc.examples.max), dLoss: res.dLoss, gLoss: res.gLoss };
  };

  /**
   * New global weights (after a round, or on connecting): keep them for export, and draw the sample grid.
   * `model` is the federation's GAN config; its fingerprint must match the weights.
   */
  async acceptGlobal(round: number, global: WeightSet, model: Record<string, unknown>, batchNorm: BatchNormPolicy): Promise<void> {
    const stored: StoredModel = { round, bytes: encodeWeights(global), fingerprint: global.fingerprint, config: model, savedAt: Date.now() };
    await this.store.putModel('global', stored);
    await this.drawSamples(stored, batchNorm);
  }

  /** Draw the sample grid from a stored global model (also used after a reload). */
  drawSamples(stored: StoredModel, batchNorm: BatchNormPolicy): Promise<void> {
    return this.previewQueue(async () => {
      const cfg = parseGanConfig(stored.config, 'stored model config');
      const gan = await this.previewGan(stored, cfg, batchNorm);
      const n = SAMPLES_PER_CLASS;
      const labels = cfg.classes.flatMap((_, c) => new Array<number>(n).fill(c));
      const t = generate(gan, labels, SAMPLE_SEED);
      const data = (await t.data()) as Float32Array;
      t.dispose();
      const grid = tileGrid(toRgbBytes(data, labels.length, cfg.imageSize), cfg.imageSize, cfg.classes.length, n, 1);
      this.events.onSamples({ round: stored.round, classes: [...cfg.classes], perClass: n, size: cfg.imageSize, ...grid });
    });
  }

  private async previewGan(stored: StoredModel, cfg: GanConfig, batchNorm: BatchNormPolicy): Promise<Gan> {
    const gan = this.slot('preview', cfg).gan;
    const global = decodeWeights(stored.bytes).weights;
    if (global.fingerprint !== gan.fingerprint) {
      throw new Error(`the federation's weights (${global.fingerprint}) do not fit the model its config describes (${gan.fingerprint})`);
    }
    gan.setWeights(applyGlobalWeights(global, await this.loadLocalWeights(global.fingerprint), batchNorm));
    return gan;
  }

  /** Generate `perClass[c]` synthetic tiles per class from the stored global model and pack the export ZIP. */
  exportSynthetic(
    perClass: Record<string, number>,
    federation: { server: string; hospital?: string; rounds?: number; batchNorm: BatchNormPolicy },
    onProgress: (done: number, total: number, stage: string) => void,
  ): Promise<{ bytes: Uint8Array; counts: Record<string, number>; round: number; card: ModelCard }> {
    return this.previewQueue(async () => {
      const stored = await this.store.getModel('global');
      if (!stored) throw new Error('there is no federated model on this computer yet: join the federation and wait for its model to arrive');
      const cfg = parseGanConfig(stored.config, 'stored model config');
      const gan = await this.previewGan(stored, cfg, federation.batchNorm);
      const counts: Record<string, number> = {};
      for (const c of cfg.classes) {
        const n = perClass[c] ?? 0;
        if (!Number.isInteger(n) || n < 0 || n > 100_000) throw new Error(`the count for ${c} must be a whole number from 0 to 100000 (got ${n})`);
        counts[c] = n;
      }
      const unknown = Object.keys(perClass).filter((k) => !cfg.classes.includes(k));
      if (unknown.length) throw new Error(`unknown class(es) ${unknown.join(', ')}: the model generates ${cfg.classes.join(', ')}`);
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      if (total === 0) throw new Error('choose at least one image to generate');
      let done = 0;
      onProgress(0, total, 'generating');
      const classes: SyntheticClass[] = [];
      let batchIndex = 0;
      for (const [ci, label] of cfg.classes.entries()) {
        const pngs: Uint8Array[] = [];
        for (let start = 0; start < counts[label]; start += EXPORT_BATCH) {
          const n = Math.min(EXPORT_BATCH, counts[label] - start);
          const t = generate(gan, new Array<number>(n).fill(ci), EXPORT_SEED + batchIndex++);
          const data = (await t.data()) as Float32Array;
          t.dispose();
          for (const rgb of toRgbBytes(data, n, cfg.imageSize)) pngs.push(encodePngRgb(rgb, cfg.imageSize, cfg.imageSize));
          done += n;
          onProgress(done, total, 'generating');
          await new Promise((r) => setTimeout(r, 0));
        }
        classes.push({ label, pngs });
      }
      onProgress(done, total, 'packing the ZIP');
      const card: ModelCard = {
        kind: 'fedgan-crc synthetic H&E tiles',
        date: new Date().toISOString(),
        round: stored.round,
        federation: { server: federation.server, ...(federation.hospital ? { hospital: federation.hospital } : {}), fingerprint: stored.fingerprint, ...(federation.rounds ? { rounds: federation.rounds } : {}) },
        config: stored.config,
        counts,
        imageSize: cfg.imageSize,
        seed: EXPORT_SEED,
        intendedUse: 'Synthetic images for research and for training classifiers. Not real patient data and not for diagnosis.',
      };
      return { bytes: buildExportZip(classes, card), counts, round: stored.round, card };
    });
  }

  /** Run `job` with the preview model loaded with the stored global weights (quality checks). */
  withGlobalModel<T>(batchNorm: BatchNormPolicy, job: (gan: Gan, stored: StoredModel) => Promise<T>): Promise<T> {
    return this.previewQueue(async () => {
      const stored = await this.store.getModel('global');
      if (!stored) throw new Error('there is no federated model on this computer yet: join the federation first');
      const cfg = parseGanConfig(stored.config, 'stored model config');
      return job(await this.previewGan(stored, cfg, batchNorm), stored);
    });
  }

  /** Forget everything in memory (after Delete my data). */
  reset(): void {
    for (const s of [this.training, this.preview]) {
      s?.trainer?.dispose();
      s?.gan.dispose();
    }
    this.training = this.preview = undefined;
    this.dataset?.ds.dispose();
    this.dataset = undefined;
    this.localWeights = undefined;
    this.tilesVersion++;
  }
}
