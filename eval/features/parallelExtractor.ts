/**
 * An nsfwjs feature extractor spread over worker threads, each with its own wasm backend and copy of
 * the network; batches go to whichever worker is free, and the features come back in tile order.
 * Node only (eval/, bench/).
 */
import { Worker } from 'node:worker_threads';
import type { NsfwjsNetwork } from '../../shared/features/nsfwjsModels.ts';
import { features } from '../../shared/metrics/features.ts';
import { checkTiles, type FeatureExtractor } from '../../shared/features/types.ts';
import type { WorkerReply, WorkerRequest } from './featureWorker.ts';

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (d: Float32Array) => void; reject: (e: Error) => void }>;
}

function startWorker(network: NsfwjsNetwork): Promise<{ slot: Slot; ready: Extract<WorkerReply, { type: 'ready' }> }> {
  // Workers do not inherit tsx's loader: register it inside the worker, then load the TypeScript module.
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./featureWorker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  const worker = new Worker(boot, { eval: true });
  const slot: Slot = { worker, pending: new Map() };
  return new Promise((resolve, reject) => {
    let started = false;
    worker.on('message', (m: WorkerReply) => {
      if (m.type === 'ready') {
        started = true;
        resolve({ slot, ready: m });
      } else if (m.type === 'features') {
        slot.pending.get(m.id)?.resolve(m.data);
        slot.pending.delete(m.id);
      } else if (m.id !== undefined && slot.pending.has(m.id)) {
        slot.pending.get(m.id)!.reject(new Error(m.message));
        slot.pending.delete(m.id);
      } else if (!started) reject(new Error(`feature worker failed to start: ${m.message}`));
    });
    worker.on('error', (e) => {
      if (!started) reject(e);
      for (const p of slot.pending.values()) p.reject(e);
      slot.pending.clear();
    });
    worker.postMessage({ type: 'init', network } satisfies WorkerRequest);
  });
}

export async function createParallelNsfwjsExtractor(network: NsfwjsNetwork, workers: number): Promise<FeatureExtractor> {
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`feature workers must be a positive integer, got ${workers}`);
  const started = await Promise.all(Array.from({ length: workers }, () => startWorker(network)));
  const slots = started.map((s) => s.slot);
  const { dim, name, description } = started[0].ready;
  let nextId = 0;
  const run = (slot: Slot, tiles: Uint8Array[], size: number, batchSize: number) =>
    new Promise<Float32Array>((resolve, reject) => {
      const id = nextId++;
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ type: 'extract', id, tiles, size, batchSize } satisfies WorkerRequest);
    });
  return {
    name,
    description,
    dim,
    async extract(tiles, size, opts = {}) {
      checkTiles(tiles, size, name);
      const batchSize = opts.batchSize ?? 16;
      const out = new Float32Array(tiles.length * dim);
      let next = 0;
      let done = 0;
      // Each worker takes the next batch when it finishes one.
      await Promise.all(
        slots.map(async (slot) => {
          while (next < tiles.length) {
            const start = next;
            next += batchSize;
            const batch = tiles.slice(start, start + batchSize);
            out.set(await run(slot, batch, size, batchSize), start * dim);
            done += batch.length;
            opts.onProgress?.(done, tiles.length);
          }
        }),
      );
      return features(out, tiles.length, dim, `${name} features`);
    },
    dispose() {
      for (const s of slots) {
        s.worker.postMessage({ type: 'close' } satisfies WorkerRequest);
        void s.worker.terminate();
      }
    },
  };
}
