/**
 * Downstream-classifier jobs (regime × seed) spread over worker threads, each with its own wasm
 * backend and its own copy of the tiles; a job goes to whichever thread is free. Node only (eval/).
 */
import { Worker } from 'node:worker_threads';
import type { CnnJobData, CnnJobScores, CnnJobSettings, Regime } from './cnnJob.ts';
import type { ClassifierReply, ClassifierRequest } from './classifierWorker.ts';

export interface CnnJobRunner {
  /**
   * Train one regime with one seed and score the test tiles (and, real only, the synthetic tiles).
   * `realSubset`: only these real tiles (one hospital's) take part (cnnJob.ts trainingSet).
   */
  run(regime: Regime, seed: number, onEpoch?: (epoch: number, loss: number) => void, realSubset?: readonly number[]): Promise<CnnJobScores>;
  /** How many jobs may usefully run at once. */
  readonly concurrency: number;
  close(): void;
}

interface Pending {
  resolve: (s: CnnJobScores) => void;
  reject: (e: Error) => void;
  onEpoch?: (epoch: number, loss: number) => void;
}

function startWorker(data: CnnJobData, settings: CnnJobSettings): Promise<{ worker: Worker; pending: Map<number, Pending> }> {
  // Workers do not inherit tsx's loader: register it inside the worker, then load the TypeScript module.
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./classifierWorker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  const worker = new Worker(boot, { eval: true });
  const pending = new Map<number, Pending>();
  return new Promise((resolve, reject) => {
    let started = false;
    worker.on('message', (m: ClassifierReply) => {
      if (m.type === 'ready') {
        started = true;
        resolve({ worker, pending });
      } else if (m.type === 'epoch') {
        pending.get(m.id)?.onEpoch?.(m.epoch, m.loss);
      } else if (m.type === 'scores') {
        pending.get(m.id)?.resolve(m.scores);
        pending.delete(m.id);
      } else if (m.id !== undefined && pending.has(m.id)) {
        pending.get(m.id)!.reject(new Error(m.message));
        pending.delete(m.id);
      } else if (!started) reject(new Error(`classifier worker failed to start: ${m.message}`));
    });
    worker.on('error', (e) => {
      if (!started) reject(e);
      for (const p of pending.values()) p.reject(e);
      pending.clear();
    });
    worker.postMessage({ type: 'init', data, settings } satisfies ClassifierRequest);
  });
}

export async function createClassifierPool(workers: number, data: CnnJobData, settings: CnnJobSettings): Promise<CnnJobRunner> {
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`classifier workers must be a positive integer, got ${workers}`);
  const slots = await Promise.all(Array.from({ length: workers }, () => startWorker(data, settings)));
  const idle = [...slots];
  const waiting: ((slot: (typeof slots)[number]) => void)[] = [];
  let nextId = 0;
  const acquire = () => new Promise<(typeof slots)[number]>((resolve) => (idle.length ? resolve(idle.pop()!) : waiting.push(resolve)));
  const release = (slot: (typeof slots)[number]) => (waiting.length ? waiting.shift()!(slot) : idle.push(slot));
  return {
    concurrency: workers,
    async run(regime, seed, onEpoch, realSubset) {
      const slot = await acquire();
      try {
        return await new Promise<CnnJobScores>((resolve, reject) => {
          const id = nextId++;
          slot.pending.set(id, { resolve, reject, onEpoch });
          slot.worker.postMessage({ type: 'job', id, regime, seed, realSubset: realSubset ? [...realSubset] : undefined } satisfies ClassifierRequest);
        });
      } finally {
        release(slot);
      }
    },
    close() {
      for (const s of slots) {
        s.worker.postMessage({ type: 'close' } satisfies ClassifierRequest);
        void s.worker.terminate();
      }
    },
  };
}
