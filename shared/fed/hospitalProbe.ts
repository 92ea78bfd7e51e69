/**
 * A hospital's side of quality tracking (qualitySchedule.ts): on a round that asks for it (RoundConfig
 * `quality`), the hospital scores the model it received with the fixed-sample probe of
 * shared/metrics/qualityProbe.ts against a fixed reference of its own tiles, and reports
 * `{ kid, kidStd, n, features }` with its update. The browser worker, the Node hospitals and any other host
 * get it through HospitalTraining (hospitalTraining.ts); only the feature network's loader differs.
 *
 * - The reference is a fixed, seeded, class-balanced subset of the hospital's tiles: per class, the first
 *   `perClass` of the class's tiles in a shuffle seeded by the request's seed (referenceIndices). The same
 *   tiles every round as long as the hospital's tiles do not change; its features are computed once.
 * - The feature network is loaded once per name and kept (MobileNetV2 is ~10 MB of weights).
 * - The model probed is the one the caller loaded: HospitalTraining loads the received global with, under
 *   FedBN, this hospital's own batch-norm tensors (the personalised model it would export).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dataset } from '../data/dataset.ts';
import { createTinyExtractor } from '../features/tiny.ts';
import type { FeatureExtractor } from '../features/types.ts';
import type { Gan } from '../gan/gan.ts';
import { toRgbBytes } from '../image/grid.ts';
import { probeQuality, probeReference, type ProbeReference } from '../metrics/qualityProbe.ts';
import { probeReportSchema, type ProbeReport } from '../protocol/messages.ts';
import { describeIssues } from '../protocol/validation.ts';
import { Rng } from '../rng.ts';
import type { QualityRequest } from './qualitySchedule.ts';

/** Loads the feature network a round names (`quality.features`); throws for a name the host cannot load. */
export type ExtractorLoader = (features: string) => Promise<FeatureExtractor> | FeatureExtractor;

/**
 * The feature networks every host can load from shared/: `tiny` (tests) and `mobilenet-v2` (nsfwjs's
 * bundled weights on the active tfjs backend, loaded on first use). Node hosts may pass a faster loader for
 * the same network (features equal up to float rounding).
 */
export async function loadProbeExtractor(features: string): Promise<FeatureExtractor> {
  if (features === 'tiny') return createTinyExtractor(64);
  if (features === 'mobilenet-v2') {
    const { loadNsfwjsExtractor } = await import('../features/nsfwjsModels.ts');
    return loadNsfwjsExtractor('mobilenet-v2');
  }
  throw new Error(`unknown quality-probe feature network "${features}" (this build knows mobilenet-v2 and tiny)`);
}

/**
 * The fixed reference subset: for each class, the first min(perClass, tiles of the class) tile indices of
 * that class in an order shuffled with `seed` (the class's own stream). Sorted ascending.
 */
export function referenceIndices(labels: ArrayLike<number>, numClasses: number, perClass: number, seed: number): number[] {
  if (!Number.isInteger(perClass) || perClass < 1) throw new RangeError(`perClass must be a positive integer, got ${perClass}`);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) throw new RangeError(`tile ${i} has label ${c}, expected 0..${numClasses - 1}`);
    byClass[c].push(i);
  }
  const rng = new Rng(seed).fork('quality-reference');
  return byClass.flatMap((idx, c) => rng.fork(c).shuffle(idx).slice(0, perClass)).sort((a, b) => a - b);
}

/** The tiles of `data` at `indices`, as RGB bytes (the dataset holds them in [-1, 1]). */
export async function datasetTiles(data: Dataset, indices: readonly number[]): Promise<Uint8Array[]> {
  if (indices.length === 0) return [];
  const picked = tf.tidy(() => tf.gather(data.images, tf.tensor1d(indices as number[], 'int32')));
  try {
    return toRgbBytes((await picked.data()) as Float32Array, indices.length, data.size);
  } finally {
    picked.dispose();
  }
}

interface CachedReference {
  reference: ProbeReference;
  n: number;
}

/** A hospital's probes across rounds: its feature networks and references, each made once. */
export class HospitalProbe {
  private readonly extractors = new Map<string, Promise<FeatureExtractor>>();
  private readonly references = new WeakMap<Dataset, Map<string, Promise<CachedReference>>>();

  constructor(private readonly loader: ExtractorLoader = loadProbeExtractor) {}

  /** The feature network `name`, loaded once (a failed load is retried next time). */
  extractor(name: string): Promise<FeatureExtractor> {
    let p = this.extractors.get(name);
    if (!p) {
      p = Promise.resolve().then(() => this.loader(name));
      this.extractors.set(name, p);
      p.catch(() => this.extractors.delete(name));
    }
    return p;
  }

  /**
   * Score `gan` (as loaded by the caller) against this hospital's reference on `data`, as `request` says.
   * Throws when the hospital has fewer than 4 tiles, when the network cannot be loaded or when the figure
   * is out of the protocol's bounds.
   */
  async probe(gan: Gan, data: Dataset, numClasses: number, request: QualityRequest): Promise<ProbeReport> {
    const extractor = await this.extractor(request.features);
    if (extractor.name !== request.features) throw new Error(`the loader for ${request.features} features returned a ${extractor.name} network`);
    const { reference, n } = await this.reference(data, numClasses, request, extractor);
    const p = await probeQuality(gan, reference, extractor, { perClass: request.perClass, seed: request.seed, subsets: request.subsets });
    const report: ProbeReport = { kid: p.kid, kidStd: p.kidStd, n, features: p.features };
    const checked = probeReportSchema.safeParse(report);
    if (!checked.success) throw new Error(`the quality probe gave figures the protocol refuses: ${describeIssues(checked.error.issues)}`);
    return report;
  }

  private reference(data: Dataset, numClasses: number, request: QualityRequest, extractor: FeatureExtractor): Promise<CachedReference> {
    let perData = this.references.get(data);
    if (!perData) this.references.set(data, (perData = new Map()));
    const key = `${extractor.name}|${request.perClass}|${request.seed}|${data.size}`;
    let p = perData.get(key);
    if (!p) {
      p = (async () => {
        const labels = (await data.labels.data()) as Int32Array;
        const indices = referenceIndices(labels, numClasses, request.perClass, request.seed);
        if (indices.length < 4) throw new Error(`the quality probe needs at least 4 of this hospital's tiles, it has ${indices.length}`);
        const tiles = await datasetTiles(data, indices);
        return { reference: await probeReference(extractor, tiles, data.size), n: tiles.length };
      })();
      perData.set(key, p);
      const map = perData;
      p.catch(() => map.delete(key));
    }
    return p;
  }

  /** Free the feature networks. */
  async dispose(): Promise<void> {
    const all = [...this.extractors.values()];
    this.extractors.clear();
    for (const p of all) (await p.catch(() => null))?.dispose();
  }
}
