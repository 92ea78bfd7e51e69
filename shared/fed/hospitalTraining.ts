import type { GanConfig } from '../config/ganConfig.ts';
import type { Dataset } from '../data/dataset.ts';
import { architectureKey, createGan, type Gan } from '../gan/gan.ts';
import { trainLocal, type LocalProgress } from '../gan/localTraining.ts';
import { createTrainer, type GanTrainer } from '../gan/trainer.ts';
import type { WeightSet } from '../weights.ts';
import { applyGlobalWeights, type BatchNormPolicy } from './batchNormPolicy.ts';

export interface HospitalRoundOptions {
  /** The GAN config of the round (the server sends it; the model is rebuilt if the architecture changes). */
  model: GanConfig;
  epochs: number;
  batchNorm: BatchNormPolicy;
  /** Mixed into the shuffling seed so rounds differ. */
  round: number;
  onProgress?: (p: LocalProgress) => void;
  signal?: AbortSignal;
}

export interface HospitalRoundResult {
  weights: WeightSet;
  examples: number;
  dLoss: number;
  gLoss: number;
  steps: number;
  seconds: number;
}

/**
 * One hospital's side of a federated round, the same in the browser worker and in the Node simulation:
 * start from the global weights (keeping local batch-norm weights under FedBN), train `epochs` passes over
 * the local tiles with fresh optimizers, and return the updated weights with the example count.
 */
export class HospitalTraining {
  private gan: Gan | null = null;
  private trainer: GanTrainer | null = null;
  private key = '';
  /** This hospital's weights after its last round: the source of local batch-norm weights (FedBN). */
  private local: WeightSet | null = null;

  constructor(
    private dataset: Dataset,
    readonly id: string,
    private readonly seed: number,
  ) {}

  /** Replace the local data (e.g. after the hospital imported more tiles). */
  setDataset(d: Dataset): void {
    this.dataset = d;
  }

  get model(): Gan | null {
    return this.gan;
  }

  async train(global: WeightSet, opts: HospitalRoundOptions): Promise<HospitalRoundResult> {
    if (opts.model.imageSize !== this.dataset.size) {
      throw new Error(`round asks for ${opts.model.imageSize} px tiles but this hospital's tiles are ${this.dataset.size} px`);
    }
    this.ensureModel(opts.model);
    const gan = this.gan!;
    const trainer = this.trainer!;
    const local = this.local && this.local.fingerprint === global.fingerprint ? this.local : undefined;
    gan.setWeights(applyGlobalWeights(global, local, opts.batchNorm));
    trainer.resetOptimizers();
    const r = await trainLocal(trainer, this.dataset, {
      epochs: opts.epochs,
      batchSize: opts.model.batchSize,
      seed: this.seed * 1009 + opts.round,
      onProgress: opts.onProgress,
      shouldStop: () => opts.signal?.aborted === true,
    });
    const weights = await gan.getWeightsAsync();
    this.local = weights;
    return { weights, examples: r.examples, dLoss: r.dLoss, gLoss: r.gLoss, steps: r.steps, seconds: r.seconds };
  }

  private ensureModel(cfg: GanConfig): void {
    const key = architectureKey(cfg) + JSON.stringify([cfg.optimizerD, cfg.optimizerG, cfg.nCritic, cfg.gpLambda]);
    if (this.gan && key === this.key) return;
    this.dispose();
    this.gan = createGan(cfg);
    this.trainer = createTrainer(this.gan, this.seed);
    this.key = key;
  }

  dispose(): void {
    this.trainer?.dispose();
    this.gan?.dispose();
    this.trainer = null;
    this.gan = null;
  }
}
