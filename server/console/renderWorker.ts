import { parentPort } from 'node:worker_threads';
import { renderGrid, type RenderJob } from './samples.ts';

/**
 * The sample-grid renderer's worker thread (server/console/samples.ts workerRenderer): the tfjs work of a
 * grid (minutes of CPU for a FedBN recalibration on a busy machine) never blocks the server's event loop,
 * so heartbeats, uploads and the round's timers go on while it renders. One job at a time.
 */
let backend: Promise<unknown> | undefined;

parentPort!.on('message', async (job: RenderJob & { id: number }) => {
  try {
    backend ??= (async () => {
      const { initNodeBackend } = await import('../../node/nodeBackend.ts');
      return initNodeBackend();
    })();
    await backend;
    const png = await renderGrid(job);
    parentPort!.postMessage({ id: job.id, png });
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: e instanceof Error ? e.message : String(e) });
  }
});
