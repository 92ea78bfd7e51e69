import { decodeWeights, encodeWeights } from '../shared/codec/weightsCodec.ts';
import type { LocalWeightsStore } from '../shared/fed/hospitalTraining.ts';
import type { WeightSet } from '../shared/weights.ts';
import type { TileStore } from './tileStore.ts';

/**
 * This hospital's own weights after its last round, kept in IndexedDB (the `local` model of the tile
 * store) so that FedBN's local batch-norm tensors survive a reload. The shared hospital round reads and
 * writes them through this; the preview model (globalModel.ts) reads them to show this hospital's
 * personalised model. The last value is cached in memory.
 */
export class StoredLocalWeights implements LocalWeightsStore {
  private cached?: WeightSet;

  constructor(private readonly store: Pick<TileStore, 'getModel' | 'putModel'>) {}

  async load(fingerprint: string): Promise<WeightSet | undefined> {
    if (this.cached?.fingerprint === fingerprint) return this.cached;
    const stored = await this.store.getModel('local');
    if (!stored || stored.fingerprint !== fingerprint) return undefined;
    this.cached = decodeWeights(stored.bytes, { copy: true }).weights;
    return this.cached;
  }

  async save(weights: WeightSet, info: { round: number; model: Record<string, unknown> }): Promise<void> {
    const copy: WeightSet = { fingerprint: weights.fingerprint, tensors: weights.tensors.map((t) => ({ name: t.name, shape: [...t.shape], data: t.data.slice() })) };
    this.cached = copy;
    await this.store.putModel('local', { round: info.round, bytes: encodeWeights(copy), fingerprint: copy.fingerprint, config: info.model, savedAt: Date.now() });
  }

  /** Forget the cached copy (after Delete my data). */
  forget(): void {
    this.cached = undefined;
  }
}
