import { readFileSync } from 'node:fs';
import type { GanType } from '../shared/config/ganConfig.ts';
import { FAST, STOCK, type BenchCase, type BenchRow, type Variant } from './ganBench.ts';
import { summarizeCpuProfile, type CpuProfile } from './cpuProfileSummary.ts';
import { countsTable, hostTable, kernelDispatchTable, kernelTable, speedTable } from './ganReport.ts';

/** Command-line options shared by the Node (Dawn) and the Chromium runners of the GAN benchmark. */
export interface BenchArgs {
  cases: BenchCase[];
  variants: Variant[];
  steps: number;
  warmup: number;
  profile: boolean;
  out: string;
  profileDir: string;
  /** PyTorch results to compare with (bench/torch_gan.py RESULT lines, or a JSON array of them). */
  torch: TorchRow[];
}

/** The configurations: ACGAN and WGAN-GP at 64 px batch 64, 64 px batch 256, 128 px batch 64. */
export const FULL_CASES: BenchCase[] = (['acgan', 'wgan-gp'] as GanType[]).flatMap((gan) => [
  { gan, size: 64, batch: 64 },
  { gan, size: 64, batch: 256 },
  { gan, size: 128, batch: 64 },
]);

/** SwiftShader emulates the GPU on this machine's CPU: the same models, smaller batches. */
export const SWIFTSHADER_CASES: BenchCase[] = (['acgan', 'wgan-gp'] as GanType[]).flatMap((gan) => [
  { gan, size: 32, batch: 8 },
  { gan, size: 64, batch: 8 },
]);

export function parseCases(spec: string): BenchCase[] {
  return spec.split(',').map((s) => {
    const [gan, size, batch, disc, ...rest] = s.split(':');
    if ((gan !== 'acgan' && gan !== 'wgan-gp') || !(+size > 0) || !(+batch > 0) || (disc !== undefined && disc !== 'cnn' && disc !== 'vit') || rest.length) {
      throw new Error(`--cases entry "${s}" must be gan:size:batch[:disc] with gan acgan or wgan-gp and disc cnn or vit, e.g. acgan:64:64 or wgan-gp:64:64:vit`);
    }
    return disc && disc !== 'cnn' ? { gan, size: +size, batch: +batch, disc } : { gan, size: +size, batch: +batch };
  });
}

/** One PyTorch measurement (bench/torch_gan.py prints `RESULT torch-gan {json}`). */
export interface TorchRow {
  gan: string;
  disc: string;
  size: number;
  batch: number;
  msPerStep: number;
}

/** PyTorch results from a file's `RESULT torch-gan {…}` lines (other lines are ignored) or a JSON array. */
export function parseTorchResults(text: string, file = 'the PyTorch results'): TorchRow[] {
  const t = text.trim();
  const rows: unknown[] = t.startsWith('[') ? JSON.parse(t) : t.split('\n').filter((l) => l.startsWith('RESULT torch-gan ')).map((l) => JSON.parse(l.slice('RESULT torch-gan '.length)));
  return rows.map((r, i) => {
    const o = r as Partial<TorchRow>;
    if (typeof o.gan !== 'string' || typeof o.disc !== 'string' || !(Number(o.size) > 0) || !(Number(o.batch) > 0) || !(Number(o.msPerStep) > 0)) {
      throw new Error(`${file}, result ${i + 1}: needs gan, disc, size, batch and a positive msPerStep, got ${JSON.stringify(r)}`);
    }
    return { gan: o.gan, disc: o.disc, size: Number(o.size), batch: Number(o.batch), msPerStep: Number(o.msPerStep) };
  });
}

export function parseBenchArgs(argv: string[], defaults: { cases: BenchCase[]; steps: number; warmup: number }): BenchArgs {
  const a: BenchArgs = { cases: defaults.cases, variants: [STOCK, FAST], steps: defaults.steps, warmup: defaults.warmup, profile: false, out: 'bench.json', profileDir: 'out/bench-profiles', torch: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v == null) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--profile') a.profile = true;
    else if (arg === '--cases') a.cases = parseCases(val());
    else if (arg === '--full') a.cases = FULL_CASES;
    else if (arg === '--variants') a.variants = parseVariants(val()); else if (arg === '--steps') a.steps = positive(arg, val());
    else if (arg === '--warmup') a.warmup = positive(arg, val(), true);
    else if (arg === '--out') a.out = val();
    else if (arg === '--profile-dir') a.profileDir = val();
    else if (arg === '--torch') {
      const file = val();
      a.torch = parseTorchResults(readFileSync(file, 'utf8'), file);
    } else throw new Error(`unknown option ${arg} (options: --profile --cases gan:size:batch[:disc],... --full --variants --steps --warmup --out --profile-dir --torch FILE)`);
  }
  return a;
}

/**
 * `stock`, `fast`, or `name={json}` for the fast path with options (shared/kernels/webgpu/index.ts),
 * separated by semicolons: `stock;fast;fast-tiled-dx={"convTransposeMM":true}`.
 */
export function parseVariants(spec: string): Variant[] {
  return spec.split(';').map((v) => {
    if (v === 'stock') return STOCK;
    if (v === 'fast') return FAST;
    const eq = v.indexOf('=');
    if (eq > 0) {
      try {
        return { name: v.slice(0, eq), fast: JSON.parse(v.slice(eq + 1)) };
      } catch {
        throw new Error(`--variants entry "${v}": the options after = must be JSON`);
      }
    }
    throw new Error(`--variants entry "${v}" must be stock, fast or name={json options}`);
  });
}

function positive(name: string, v: string, zeroOk = false): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < (zeroOk ? 0 : 1)) throw new Error(`${name} must be a ${zeroOk ? 'non-negative' : 'positive'} integer, got ${v}`);
  return n;
}

/** The printed report: speed table, then (profile mode) counts, kernel and host tables. */
export function formatReport(device: string, rows: BenchRow[], profiles: { label: string; profile: CpuProfile }[], torch: TorchRow[] = []): string {
  const parts = [`GAN training step, ${device}`, speedTable(rows, torch)];
  const counts = countsTable(rows);
  if (counts) parts.push('GPU calls per step:\n' + counts);
  for (const r of rows) {
    const k = kernelTable(r);
    if (k) parts.push(k);
    const d = kernelDispatchTable(r);
    if (d) parts.push(d);
  }
  for (const p of profiles) {
    const s = summarizeCpuProfile(p.profile, 12);
    parts.push(hostTable(p.label, s.busyMs, s.waitMs, s.functions));
  }
  return parts.join('\n\n');
}
