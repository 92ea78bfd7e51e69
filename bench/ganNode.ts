/**
 * The GAN benchmark in Node, on WebGPU through Dawn (`DAWN_NODE` = path of `dawn.node` from the npm
 * package `webgpu`). Runs from the repository (`DAWN_NODE=… npm run bench`) and as one bundled file on
 * the GPU machine (bench/ganBundle.ts writes it). Writes bench.json and, with --profile, V8 CPU profiles.
 */
import { createRequire } from 'node:module';
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FULL_CASES, formatReport, parseBenchArgs } from './ganCli.ts';
import type { CpuProfile } from './cpuProfileSummary.ts';
import type { BenchRow } from './ganBench.ts';

export async function runNodeBench(argv: string[]): Promise<void> {
  const dawnPath = process.env.DAWN_NODE;
  if (!dawnPath) throw new Error('DAWN_NODE must name the dawn.node file (npm package webgpu) for the Node benchmark');
  const args = parseBenchArgs(argv, { cases: FULL_CASES, steps: 10, warmup: 3 });
  const require = createRequire(import.meta.url);
  const dawn = require(dawnPath) as { globals: Record<string, unknown>; create(flags: string[]): { requestAdapter(o?: unknown): Promise<GPUAdapter | null> } };
  const g = globalThis as Record<string, unknown>;
  Object.assign(g, dawn.globals);
  g.window ??= globalThis; // tfjs-backend-webgpu registers only in a window or worker scope
  const gpu = dawn.create(['enable-dawn-features=allow_unsafe_apis']); // timestamp queries for the kernel table
  Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true, writable: true });
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  const device = adapter ? `${adapter.info.vendor} ${adapter.info.architecture} ${adapter.info.description}`.trim() : 'no adapter';
  console.log(`adapter: ${device}`);

  const tf = await import('@tensorflow/tfjs-core');
  tf.env().set('PROD', true);
  await import('@tensorflow/tfjs-backend-webgpu');
  // The same device as tfjs's, plus `subgroups` where the adapter offers it (shared/kernels/webgpu/webgpuDevice.ts).
  (await import('../shared/kernels/webgpu/webgpuDevice.ts')).registerWebGPUBackend();
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not initialise');
  await tf.ready();
  const { runBench } = await import('./ganBench.ts');

  const session = new Session();
  session.connect();
  const post = <T>(method: string, params?: object) =>
    new Promise<T>((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res as T))));
  const profiles: { label: string; profile: CpuProfile }[] = [];
  if (args.profile) {
    mkdirSync(args.profileDir, { recursive: true });
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 100 });
  }
  const save = (rows: BenchRow[]) =>
    writeFileSync(args.out, JSON.stringify({ host: 'node+dawn', device, date: new Date().toISOString(), args, rows }, null, 2));
  const rows = await runBench(args.cases, args.variants, {
    onRow: (_, all) => save(all),
    steps: args.steps,
    warmup: args.warmup,
    profile: args.profile,
    log: (l) => console.log(l),
    cpuProfile: {
      start: () => post('Profiler.start'),
      stop: async (label) => {
        const { profile } = await post<{ profile: CpuProfile }>('Profiler.stop');
        writeFileSync(join(args.profileDir, `${label}.cpuprofile`), JSON.stringify(profile));
        profiles.push({ label, profile });
      },
    },
  });
  session.disconnect();
  save(rows);
  console.log('\n' + formatReport(`Node + Dawn, ${device}`, rows, profiles, args.torch));
}
