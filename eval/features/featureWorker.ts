/**
 * A worker thread that runs one nsfwjs feature extractor on its own tfjs wasm backend (tfjs keeps
 * wasm single-threaded in Node, so threads are how the report uses more than one core).
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { loadNsfwjsExtractor, type NsfwjsNetwork } from '../../shared/features/nsfwjsModels.ts';
import type { FeatureExtractor } from '../../shared/features/types.ts';

export type WorkerRequest =
  | { type: 'init'; network: NsfwjsNetwork }
  | { type: 'extract'; id: number; tiles: Uint8Array[]; size: number; batchSize: number }
  | { type: 'close' };
export type WorkerReply =
  | { type: 'ready'; dim: number; name: string; description: string }
  | { type: 'features'; id: number; data: Float32Array }
  | { type: 'error'; id?: number; message: string };

let extractor: FeatureExtractor | null = null;
const port = parentPort!;

port.on('message', async (msg: WorkerRequest) => {
  try {
    if (msg.type === 'init') {
      tf.env().set('PROD', true);
      if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend failed to initialise in a worker');
      await tf.ready();
      extractor = await loadNsfwjsExtractor(msg.network);
      port.postMessage({ type: 'ready', dim: extractor.dim, name: extractor.name, description: extractor.description } satisfies WorkerReply);
    } else if (msg.type === 'extract') {
      if (!extractor) throw new Error('feature worker used before init');
      const f = await extractor.extract(msg.tiles, msg.size, { batchSize: msg.batchSize });
      const data = f.data instanceof Float32Array ? f.data : Float32Array.from(f.data);
      port.postMessage({ type: 'features', id: msg.id, data } satisfies WorkerReply, [data.buffer as ArrayBuffer]);
    } else {
      extractor?.dispose();
      extractor = null;
      port.close();
    }
  } catch (e) {
    port.postMessage({ type: 'error', id: 'id' in msg ? msg.id : undefined, message: e instanceof Error ? e.message : String(e) } satisfies WorkerReply);
  }
});
