import type { GpuCounts } from '../shared/kernels/webgpu/gpuCounters.ts';
import type { BenchRow } from './ganBench.ts';
import type { HostFunctionTime } from './cpuProfileSummary.ts';

/** Plain-text tables for the GAN benchmark (markdown-compatible, so they paste into docs/performance.md). */

function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |';
  return [line(head), '| ' + w.map((n) => '-'.repeat(n)).join(' | ') + ' |', ...cells.slice(1).map(line)].join('\n');
}

/** PyTorch's time for a case, where one was measured (same GAN, discriminator, size and batch). */
export interface TorchTime {
  gan: string;
  disc: string;
  size: number;
  batch: number;
  msPerStep: number;
}

/**
 * One line per case and variant: ms/step (host ms to record it), img/s, speed-up over stock, and with
 * PyTorch results, PyTorch's ms/step and this row's speed as a share of PyTorch's (100 % = as fast).
 */
export function speedTable(rows: BenchRow[], torch: TorchTime[] = []): string {
  const keyOf = (r: BenchRow) => `${r.gan}|${r.disc ?? 'cnn'}|${r.size}|${r.batch}`;
  const withTorch = torch.length > 0;
  const out = rows.map((r) => {
    const s = rows.find((x) => keyOf(x) === keyOf(r) && x.variant === 'stock');
    const t = torch.find((x) => `${x.gan}|${x.disc}|${x.size}|${x.batch}` === keyOf(r));
    const cells: (string | number)[] = [
      r.gan,
      r.disc ?? 'cnn',
      `${r.size} px`,
      r.batch,
      r.variant === 'stock' ? 'stock tfjs-webgpu' : r.variant === 'fast' ? 'this project' : `this project (${r.variant})`,
      r.msPerStep,
      r.hostMsPerStep,
      r.imgsPerSec,
      s && r !== s ? `${(s.msPerStep / r.msPerStep).toFixed(2)}×` : '',
    ];
    if (withTorch) cells.push(t ? t.msPerStep : '–', t ? `${((t.msPerStep / r.msPerStep) * 100).toFixed(0)} %` : '–');
    return cells;
  });
  const head = ['GAN', 'disc', 'size', 'batch', 'variant', 'ms/step', 'host ms/step', 'img/s', 'vs stock'];
  return table(withTorch ? [...head, 'PyTorch ms/step', 'share of PyTorch'] : head, out);
}

const COUNT_FIELDS: [keyof GpuCounts, string][] = [
  ['dispatches', 'dispatches'],
  ['submits', 'submits'],
  ['buffersCreated', 'new GPU buffers'],
  ['bytesUploaded', 'bytes uploaded'],
  ['uniformBytesWritten', 'uniform bytes written'],
  ['writeBufferCalls', 'writeBuffer calls'],
  ['bindGroups', 'bind groups'],
  ['pipelines', 'pipelines created'],
  ['mapAsyncs', 'readbacks'],
];

export function countsTable(rows: BenchRow[]): string {
  const withCounts = rows.filter((r) => r.counts);
  if (!withCounts.length) return '';
  const head = ['per step', ...withCounts.map((r) => `${r.gan} ${r.size}px b${r.batch} ${r.variant}`)];
  const body = COUNT_FIELDS.map(([k, label]) => [label, ...withCounts.map((r) => fmt(r.counts![k]))]);
  return table(head, body);
}

export function kernelTable(row: BenchRow, top = 12): string {
  if (!row.kernels?.length) return '';
  const total = row.kernels.reduce((s, k) => s + k.ms, 0);
  const body = row.kernels.slice(0, top).map((k) => [k.name, k.calls, k.ms.toFixed(2), `${((k.ms / total) * 100).toFixed(1)} %`]);
  return `GPU time per program, one step, ${row.gan} ${row.size}px b${row.batch} ${row.variant} (sum ${total.toFixed(1)} ms):\n` + table(['program', 'passes', 'ms', 'share'], body);
}

/** The kernels that issue the most dispatches in one step (profile mode). */
export function kernelDispatchTable(row: BenchRow, top = 15): string {
  const entries = Object.entries(row.kernelDispatches ?? {});
  if (!entries.length) return '';
  const total = entries.reduce((s, [, n]) => s + n, 0);
  const body = entries.slice(0, top).map(([k, n]) => [k, n, `${((n / total) * 100).toFixed(1)} %`]);
  return `Dispatches per tfjs kernel, one step, ${row.gan} ${row.size}px b${row.batch} ${row.variant} (${total} through runWebGPUProgram):\n` + table(['kernel:program', 'dispatches', 'share'], body);
}

export function hostTable(label: string, busyMs: number, waitMs: number, fns: HostFunctionTime[]): string {
  return `Host self time, ${label} (busy ${busyMs.toFixed(0)} ms, waiting on the GPU ${waitMs.toFixed(0)} ms):\n` + table(['function', 'self ms', 'share of busy'], fns.map((f) => [f.name, f.selfMs.toFixed(1), `${f.share} %`]));
}

function fmt(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)} k`;
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}
