/**
 * Feature extractors on the pretrained networks that ship inside the `nsfwjs` npm package
 * (InceptionV3 at 299 px, MobileNetV2 at 224 px). The weights are bundled in the package as
 * JavaScript modules holding the model JSON and base64 weight shards. We read those modules ourselves and
 * hand them to tf.loadLayersModel from memory, so loading fetches nothing, in Node and in the browser alike.
 * nsfwjs's own `load` is not used: it prints a notice about "hosting your own model" on every load (into
 * the simulation's and the report's output), would take any global named `model` (in a page, an element
 * with id="model") for the model JSON, and runs a warm-up prediction nobody here needs.
 *
 * The features are the global-average-pooled activations before the classifier head (`flatten_1`:
 * 2048-d for InceptionV3 — the usual FID features — and 1280-d for MobileNetV2). Those weights were
 * fine-tuned after ImageNet (for nsfwjs's own 5 classes), so scores computed on them are comparable
 * within this project only, not with published FIDs.
 *
 * Runs on whatever tfjs backend is active (wasm in Node, WebGPU/WebGL in the worker).
 */
import * as tf from '@tensorflow/tfjs';
import { features } from '../metrics/features.ts';
import { concatBytes, fromBase64 } from '../secagg/bytes.ts';
import { checkTiles, type FeatureExtractor } from './types.ts';

export type NsfwjsNetwork = 'inception-v3' | 'mobilenet-v2';

interface NetworkSpec {
  modelName: 'InceptionV3' | 'MobileNetV2';
  inputSize: number;
  layer: string;
  dim: number;
  description: string;
  definition: () => Promise<BundledModel>;
}

/** What nsfwjs's `nsfwjs/models/*` modules export: loaders of the model JSON and of its weight shards. */
interface BundledModel {
  name: string;
  modelJson: () => Promise<{ default: BundledModelJson }>;
  weightBundles: (() => Promise<{ default: string }>)[];
}

interface BundledModelJson {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

/**
 * The layers model of a bundled definition: the manifest's shards (base64, one module per path, in the
 * manifest's order) decoded and joined into one weight buffer, read by tf.loadLayersModel from memory.
 */
export async function loadBundledModel(definition: BundledModel): Promise<tf.LayersModel> {
  const json = (await definition.modelJson()).default;
  const paths = json.weightsManifest.flatMap((g) => g.paths);
  if (paths.length !== definition.weightBundles.length) {
    throw new Error(`${definition.name}: the manifest names ${paths.length} weight shards, the package has ${definition.weightBundles.length}`);
  }
  const shards = await Promise.all(definition.weightBundles.map(async (load, i) => fromBase64((await load()).default, `${definition.name} weight shard ${paths[i]}`)));
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
      weightData: concatBytes(...shards).buffer,
    }),
  );
}

const NETWORKS: Record<NsfwjsNetwork, NetworkSpec> = {
  'inception-v3': {
    modelName: 'InceptionV3',
    inputSize: 299,
    layer: 'flatten_1',
    dim: 2048,
    description: 'InceptionV3 from nsfwjs, fine-tuned weights: compare within this project only',
    definition: async () => (await import('nsfwjs/models/inception_v3')).InceptionV3Model,
  },
  'mobilenet-v2': {
    modelName: 'MobileNetV2',
    inputSize: 224,
    layer: 'flatten_1',
    dim: 1280,
    description: 'MobileNetV2 from nsfwjs, fine-tuned weights',
    definition: async () => (await import('nsfwjs/models/mobilenet_v2')).MobileNetV2Model,
  },
};

/** One of nsfwjs's networks, cut at its feature layer, with the preprocessing its features expect. */
export interface NsfwjsFeatureModel {
  network: NsfwjsNetwork;
  modelName: string;
  description: string;
  dim: number;
  inputSize: number;
  /** The network from its input to the feature layer. */
  model: tf.LayersModel;
  /** Tiles (size × size RGB bytes) → the network's input: scaled to [0, 1] and resized bilinearly to inputSize. */
  preprocess(tiles: readonly Uint8Array[], size: number): tf.Tensor4D;
  dispose(): void;
}

/** Load one of nsfwjs's bundled networks (on the active tfjs backend) and cut it at its feature layer. */
export async function loadNsfwjsFeatureModel(network: NsfwjsNetwork): Promise<NsfwjsFeatureModel> {
  const spec = NETWORKS[network];
  if (!spec) throw new Error(`unknown nsfwjs network '${network}' (choose ${Object.keys(NETWORKS).join(', ')})`);
  const full = await loadBundledModel(await spec.definition());
  const layer = full.getLayer(spec.layer);
  const shape = layer.outputShape as (number | null)[];
  if (shape.length !== 2 || shape[1] !== spec.dim) throw new Error(`${spec.modelName}: layer ${spec.layer} has shape [${shape}], expected [null, ${spec.dim}]`);
  return {
    network,
    modelName: spec.modelName,
    description: spec.description,
    dim: spec.dim,
    inputSize: spec.inputSize,
    model: tf.model({ inputs: full.inputs, outputs: layer.output as tf.SymbolicTensor }),
    preprocess(tiles, size) {
      return tf.tidy(() => {
        const flat = new Float32Array(tiles.length * size * size * 3);
        tiles.forEach((t, i) => {
          const o = i * size * size * 3;
          for (let j = 0; j < t.length; j++) flat[o + j] = t[j] / 255;
        });
        const x: tf.Tensor4D = tf.tensor4d(flat, [tiles.length, size, size, 3]);
        return size === spec.inputSize ? x : tf.image.resizeBilinear(x, [spec.inputSize, spec.inputSize], true);
      });
    },
    dispose() {
      full.dispose();
    },
  };
}

/**
 * Load one of nsfwjs's bundled networks as a feature extractor on the active tfjs backend. Tiles are
 * scaled to [0, 1] (as nsfwjs does) and resized bilinearly to the network's input size.
 */
export async function loadNsfwjsExtractor(network: NsfwjsNetwork): Promise<FeatureExtractor> {
  const fm = await loadNsfwjsFeatureModel(network);
  return {
    name: network,
    description: fm.description,
    dim: fm.dim,
    async extract(tiles, size, opts = {}) {
      checkTiles(tiles, size, fm.modelName);
      const batchSize = opts.batchSize ?? 16;
      const out = new Float32Array(tiles.length * fm.dim);
      for (let start = 0; start < tiles.length; start += batchSize) {
        const batch = tiles.slice(start, start + batchSize);
        const y = tf.tidy(() => fm.model.predict(fm.preprocess(batch, size)) as tf.Tensor);
        out.set(await y.data(), start * fm.dim);
        y.dispose();
        opts.onProgress?.(Math.min(tiles.length, start + batchSize), tiles.length);
      }
      return features(out, tiles.length, fm.dim, `${fm.modelName} features`);
    },
    dispose() {
      fm.dispose();
    },
  };
}
