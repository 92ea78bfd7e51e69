/**
 * nsfwjs feature extractors on ONNX Runtime's native CPU kernels (the `onnxruntime-node` package,
 * whose CPU binaries ship inside the npm tarball). The network is loaded from nsfwjs's bundled
 * weights with tfjs as usual, converted to an ONNX graph in memory (onnx/fromLayers.ts) and run by an
 * ONNX Runtime session; preprocessing stays in tfjs so the input is exactly what the tfjs extractor
 * feeds its network. The features agree with the tfjs wasm extractor's to float32 rounding (tested).
 *
 * Why: InceptionV3 at 299 px is 5.7 G multiply-adds per tile, and XNNPACK on wasm SIMD (128-bit,
 * no FMA) tops out near 19 GFLOP/s per core; ONNX Runtime's AVX2/FMA kernels do the same arithmetic
 * about 4× faster per core (docs/performance.md). Node only.
 */
import type * as Ort from 'onnxruntime-node';
import { loadNsfwjsFeatureModel, type NsfwjsNetwork } from '../../shared/features/nsfwjsModels.ts';
import { checkTiles, type FeatureExtractor } from '../../shared/features/types.ts';
import { features } from '../../shared/metrics/features.ts';
import { layersModelToOnnx } from './onnx/fromLayers.ts';
import { encodeModel } from './onnx/protobuf.ts';

type OrtModule = typeof Ort;
let ortModule: Promise<OrtModule> | undefined;

/** Load onnxruntime-node once; the error names the package and the reason when it cannot be used here. */
export function loadOnnxRuntime(): Promise<OrtModule> {
  ortModule ??= import('onnxruntime-node').then(
    (m) => ((m as { default?: OrtModule }).default ?? m) as OrtModule,
    (e: unknown) => {
      ortModule = undefined;
      throw new Error(`ONNX Runtime is not available (optional package onnxruntime-node: ${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
    },
  );
  return ortModule;
}

export interface OnnxExtractorOptions {
  /** Threads ONNX Runtime uses for one batch (default 2). */
  threads?: number;
}

/** Human-readable name of the engine, e.g. "ONNX Runtime 1.30.0 (CPU, 2 threads)". */
export function onnxEngineLabel(ort: OrtModule, threads: number): string {
  const version = (ort.env as { versions?: { node?: string; common?: string } }).versions;
  return `ONNX Runtime${version?.node ?? version?.common ? ` ${version.node ?? version.common}` : ''} (CPU, ${threads} thread${threads > 1 ? 's' : ''})`;
}

/**
 * Load one of nsfwjs's networks and run it on ONNX Runtime. Needs a tfjs backend in this thread for
 * loading the weights and for the preprocessing (wasm in the CLIs).
 */
export async function createOnnxNsfwjsExtractor(network: NsfwjsNetwork, opts: OnnxExtractorOptions = {}): Promise<FeatureExtractor & { engine: string }> {
  const threads = opts.threads ?? 2;
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`ONNX Runtime threads must be a positive integer, got ${threads}`);
  const ort = await loadOnnxRuntime();
  const fm = await loadNsfwjsFeatureModel(network);
  let session: Ort.InferenceSession;
  try {
    const bytes = encodeModel(layersModelToOnnx(fm.model));
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
    });
  } catch (e) {
    fm.dispose();
    throw new Error(`${fm.modelName}: could not build the ONNX Runtime session: ${e instanceof Error ? e.message : String(e)}`);
  }
  // The weights now live in the session; the preprocessing does not need the tfjs model.
  fm.dispose();
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  const { inputSize, dim, modelName } = fm;

  const prepare = async (tiles: readonly Uint8Array[], size: number) => {
    const x = fm.preprocess(tiles, size);
    const data = (await x.data()) as Float32Array;
    x.dispose();
    return new ort.Tensor('float32', data, [tiles.length, inputSize, inputSize, 3]);
  };

  return {
    name: network,
    description: fm.description,
    dim,
    engine: onnxEngineLabel(ort, threads),
    async extract(tiles, size, eopts = {}) {
      checkTiles(tiles, size, modelName);
      const batchSize = eopts.batchSize ?? 16;
      const out = new Float32Array(tiles.length * dim);
      // Preprocess the next batch on the JS thread while ONNX Runtime runs the current one on its own threads.
      let next = tiles.length > 0 ? prepare(tiles.slice(0, batchSize), size) : undefined;
      for (let start = 0; start < tiles.length; start += batchSize) {
        const input = await next!;
        const running = session.run({ [inputName]: input });
        const following = start + batchSize < tiles.length ? tiles.slice(start + batchSize, start + 2 * batchSize) : undefined;
        next = following ? prepare(following, size) : undefined;
        next?.catch(() => undefined); // a failure is reported when the batch is awaited, not as an unhandled rejection
        const y = (await running)[outputName];
        const n = Math.min(batchSize, tiles.length - start);
        if (y.dims.length !== 2 || y.dims[0] !== n || y.dims[1] !== dim) throw new Error(`${modelName}: ONNX Runtime returned shape [${y.dims}], expected [${n}, ${dim}]`);
        out.set(y.data as Float32Array, start * dim);
        y.dispose();
        eopts.onProgress?.(start + n, tiles.length);
      }
      return features(out, tiles.length, dim, `${modelName} features`);
    },
    dispose() {
      void session.release();
    },
  };
}
