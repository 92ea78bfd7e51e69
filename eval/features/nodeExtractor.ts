/**
 * The nsfwjs feature extractor for Node's CLIs (evaluate, compare, bench:evaluate), on the fastest
 * engine this machine has:
 * - `onnx`: ONNX Runtime's native CPU kernels (optional package onnxruntime-node), one session with
 *   `threads` intra-op threads;
 * - `wasm`: tfjs's wasm backend, in `threads` worker threads (tfjs keeps wasm single-threaded in Node);
 * - `auto` (default): onnx, or wasm with the reason reported when ONNX Runtime cannot be loaded here.
 * Both engines give the same features to float32 rounding.
 */
import { loadNsfwjsExtractor, type NsfwjsNetwork } from '../../shared/features/nsfwjsModels.ts';
import type { FeatureExtractor } from '../../shared/features/types.ts';
import { createOnnxNsfwjsExtractor } from './onnxExtractor.ts';
import { createParallelNsfwjsExtractor } from './parallelExtractor.ts';

export const FEATURE_ENGINES = ['auto', 'onnx', 'wasm'] as const;
export type FeatureEngine = (typeof FEATURE_ENGINES)[number];

export function isFeatureEngine(value: string): value is FeatureEngine {
  return (FEATURE_ENGINES as readonly string[]).includes(value);
}

export type EngineExtractor = FeatureExtractor & {
  /** What runs the network, for logs and reports, e.g. "ONNX Runtime 1.30.0 (CPU, 2 threads)". */
  readonly engine: string;
};

export interface NodeExtractorOptions {
  engine?: FeatureEngine;
  /** Threads (onnx) or worker threads (wasm); default 2. */
  threads?: number;
  /** Told why `auto` fell back to wasm. */
  onFallback?: (reason: string) => void;
}

export async function createNodeNsfwjsExtractor(network: NsfwjsNetwork, opts: NodeExtractorOptions = {}): Promise<EngineExtractor> {
  const engine = opts.engine ?? 'auto';
  const threads = opts.threads ?? 2;
  if (!isFeatureEngine(engine)) throw new Error(`unknown feature engine '${engine}' (choose ${FEATURE_ENGINES.join(', ')})`);
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`feature threads must be a positive integer, got ${threads}`);
  if (engine !== 'wasm') {
    try {
      return await createOnnxNsfwjsExtractor(network, { threads });
    } catch (e) {
      if (engine === 'onnx') throw e;
      opts.onFallback?.(`${e instanceof Error ? e.message : String(e)}; using tfjs wasm instead`);
    }
  }
  const extractor = threads > 1 ? await createParallelNsfwjsExtractor(network, threads) : await loadNsfwjsExtractor(network);
  return Object.assign(extractor, { engine: threads > 1 ? `tfjs wasm × ${threads} worker threads` : 'tfjs wasm (1 thread)' });
}
