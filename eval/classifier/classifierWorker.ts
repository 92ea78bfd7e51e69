/**
 * A worker thread that trains downstream classifiers on its own tfjs backend (wasm with this
 * project's training kernels): tfjs runs wasm single-threaded in Node, so the 3 regimes × seeds are
 * spread over threads to use more than one core.
 */
import { parentPort } from 'node:worker_threads';
import { initNodeBackend } from '../../node/nodeBackend.ts';
import { runCnnJob, type CnnJobData, type CnnJobScores, type CnnJobSettings, type Regime } from './cnnJob.ts';

export type ClassifierRequest =
  | { type: 'init'; data: CnnJobData; settings: CnnJobSettings }
  | { type: 'job'; id: number; regime: Regime; seed: number; realSubset?: number[] }
  | { type: 'close' };
export type ClassifierReply =
  | { type: 'ready'; backend: string }
  | { type: 'epoch'; id: number; epoch: number; loss: number }
  | { type: 'scores'; id: number; scores: CnnJobScores }
  | { type: 'error'; id?: number; message: string };

const port = parentPort!;
let state: { data: CnnJobData; settings: CnnJobSettings } | null = null;

port.on('message', async (msg: ClassifierRequest) => {
  try {
    if (msg.type === 'init') {
      // Never WebGPU here: with a GPU the pool is not used (see classifierPool.ts).
      const choice = await initNodeBackend({ TFJS_BACKEND: process.env.TFJS_BACKEND === 'cpu' ? 'cpu' : 'wasm' });
      state = { data: msg.data, settings: msg.settings };
      port.postMessage({ type: 'ready', backend: choice.backend } satisfies ClassifierReply);
    } else if (msg.type === 'job') {
      if (!state) throw new Error('classifier worker used before init');
      const onEpoch = (epoch: number, loss: number) => port.postMessage({ type: 'epoch', id: msg.id, epoch, loss } satisfies ClassifierReply);
      const scores = await runCnnJob(state.data, state.settings, msg.regime, msg.seed, onEpoch, msg.realSubset);
      const buffers = [scores.test.buffer, ...(scores.synthetic ? [scores.synthetic.buffer] : [])] as ArrayBuffer[];
      port.postMessage({ type: 'scores', id: msg.id, scores } satisfies ClassifierReply, buffers);
    } else {
      state = null;
      port.close();
    }
  } catch (e) {
    port.postMessage({ type: 'error', id: 'id' in msg ? msg.id : undefined, message: e instanceof Error ? e.message : String(e) } satisfies ClassifierReply);
  }
});
