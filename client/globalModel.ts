import { decodeWeights, encodeWeights } from '../shared/codec/weightsCodec.ts';
import { parseGanConfig, type GanConfig } from '../shared/config/ganConfig.ts';
import { applyGlobalWeights, type BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { createGan, type Gan } from '../shared/gan/gan.ts';
import type { WeightSet } from '../shared/weights.ts';
import type { StoredLocalWeights } from './localWeights.ts';
import type { StoredModel, TileStore } from './tileStore.ts';

/**
 * The federation's model as this hospital uses it, in the worker: the latest global weights (kept in
 * IndexedDB for use offline) loaded into a GAN of their own, separate from the one a round trains. Under
 * FedBN the model is this hospital's personalised one: the global weights with its own batch-norm tensors.
 * The sample grid (samplePreview.ts), the export (syntheticExport.ts) and the quality check
 * (qualityCheck.ts) all use it, one job at a time.
 */
export class GlobalModel {
  private slot?: { key: string; gan: Gan };
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Pick<TileStore, 'getModel' | 'putModel'>,
    private readonly localWeights: Pick<StoredLocalWeights, 'load'>,
  ) {}

  /** Keep new global weights (after a round, or on connecting). `model` is the GAN config they belong to. */
  async accept(round: number, global: WeightSet, model: Record<string, unknown>): Promise<StoredModel> {
    const stored: StoredModel = { round, bytes: encodeWeights(global), fingerprint: global.fingerprint, config: model, savedAt: Date.now() };
    await this.store.putModel('global', stored);
    return stored;
  }

  /** The stored global model, if any. */
  stored(): Promise<StoredModel | undefined> {
    return this.store.getModel('global');
  }

  /** Run `job` with the GAN loaded with `stored` (this hospital's batch norm under FedBN), after earlier jobs. */
  withModel<T>(stored: StoredModel, batchNorm: BatchNormPolicy, job: (gan: Gan, cfg: GanConfig) => Promise<T>): Promise<T> {
    return this.serial(async () => {
      const cfg = parseGanConfig(stored.config, 'stored model config');
      return job(await this.load(stored, cfg, batchNorm), cfg);
    });
  }

  /** Run `job` with the stored global model loaded (the quality check and the export). */
  withGlobalModel<T>(batchNorm: BatchNormPolicy, job: (gan: Gan, stored: StoredModel, cfg: GanConfig) => Promise<T>): Promise<T> {
    return this.serial(async () => {
      const stored = await this.store.getModel('global');
      if (!stored) throw new Error('there is no federated model on this computer yet: join the federation and wait for its model to arrive');
      const cfg = parseGanConfig(stored.config, 'stored model config');
      return job(await this.load(stored, cfg, batchNorm), stored, cfg);
    });
  }

  /** Free the GAN (after Delete my data). */
  reset(): void {
    this.slot?.gan.dispose();
    this.slot = undefined;
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.tail.then(job, job);
    this.tail = run.catch(() => {});
    return run;
  }

  private async load(stored: StoredModel, cfg: GanConfig, batchNorm: BatchNormPolicy): Promise<Gan> {
    const key = JSON.stringify(cfg);
    if (this.slot?.key !== key) {
      this.slot?.gan.dispose();
      this.slot = undefined;
      this.slot = { key, gan: createGan(cfg) };
    }
    const gan = this.slot.gan;
    const global = decodeWeights(stored.bytes).weights;
    if (global.fingerprint !== gan.fingerprint) {
      throw new Error(`the federation's weights (${global.fingerprint}) do not fit the model its config describes (${gan.fingerprint})`);
    }
    const local = batchNorm === 'local' ? await this.localWeights.load(global.fingerprint) : undefined;
    gan.setWeights(applyGlobalWeights(global, local, batchNorm));
    return gan;
  }
}
