import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createNodeNsfwjsExtractor, FEATURE_ENGINES, isFeatureEngine, type FeatureEngine } from '../eval/features/nodeExtractor.ts';
import { DISCRIMINATOR_TYPES, GAN_TYPES, type DiscriminatorType, type GanType } from '../shared/config/ganConfig.ts';
import { createTinyExtractor } from '../shared/features/tiny.ts';
import type { FeatureExtractor } from '../shared/features/types.ts';
import { parseFlags } from '../node/flags.ts';
import { CliError, runCli } from '../node/cliError.ts';
import { PRESET_NAMES, PRESETS, pairConfig, type ComparePreset, type PresetName } from './comparePresets.ts';
import { runComparison, type ComparisonResult } from './comparison.ts';
import { initNodeBackend } from '../node/nodeBackend.ts';
import { renderComparison, upsertSection, type RunDescription } from './resultsTable.ts';
import { readTileFolder } from '../node/tileFolder.ts';

export const USAGE = `Usage: npm run compare -- [options]

Trains every GAN type × discriminator pair with the federated simulation on the same tiles, scores each
generator by FID and KID and by downstream classification F1 (a linear head on MobileNetV2 features trained
on real + synthetic and on synthetic only, against the real-only baseline), and writes the tables (the shape
of the paper's Table 2) into docs/results.md.

  --preset P            small (32 px, 48 steps per pair, a pipeline check: ~10–11 min on an idle 2-core CPU) |
                        medium (32 px, 140 steps per pair, 100 tiles per class scored: ~28–33 min on an idle
                        2-core CPU) | full (64 px, for a GPU) (default small)
  --data DIR            training tiles <label>/<tile>.jpg (default ../shared/data/crc-msi/train)
  --test DIR            real test tiles, for the real-vs-real floor (default ../shared/data/crc-msi/test)
  --out DIR             runs, checkpoints and compare.json (default out/compare-<preset>)
  --results FILE        the Markdown table to update (default docs/results.md)
  --gans LIST           comma-separated, from acgan,cgan,wgan-gp (default all)
  --discriminators LIST comma-separated, from cnn,resnet,vit,swin (default all)
  --rounds N            federated rounds (default from the preset)
  --clients N           hospitals (default from the preset)
  --max-tiles N         train on at most N tiles, class-balanced (default from the preset)
  --per-class N         synthetic tiles per class for FID/KID and the classifier (default from the preset)
  --real-per-class N    real reference (and test) tiles per class for FID/KID (default from the preset); the
                        classifier uses all the run's training tiles and all test tiles
  --features F          inception (InceptionV3 from nsfwjs, and MobileNetV2 for the classifier) | tiny (fixed random
                        projections for both, for tests) (default inception)
  --feature-engine E    what runs InceptionV3 and MobileNetV2: onnx (ONNX Runtime, native CPU), wasm (tfjs wasm in
                        worker threads) or auto (onnx when it loads here, else wasm; default)
  --feature-workers N   threads for each of InceptionV3 and MobileNetV2: ONNX Runtime threads or wasm workers (default 2)
  --no-f1               skip the downstream classification (MobileNetV2 features of every real and synthetic
                        tile: ~0.1 CPU-s per tile, a few minutes per run)
  --hardware TEXT       how to name the machine in the results (default: CPU model and core count, or the GPU)
  --seed N              (default 42)

Trains on tfjs's wasm backend (TFJS_BACKEND=cpu forces the pure-JS backend), or on WebGPU through Dawn when
DAWN_NODE points at dawn.node (as npm run simulate).`;

const OPTIONS = {
  preset: { type: 'string', default: 'small' },
  data: { type: 'string', default: '../shared/data/crc-msi/train' },
  test: { type: 'string', default: '../shared/data/crc-msi/test' },
  out: { type: 'string' },
  results: { type: 'string', default: 'docs/results.md' },
  gans: { type: 'string' },
  discriminators: { type: 'string' },
  rounds: { type: 'string' },
  clients: { type: 'string' },
  'max-tiles': { type: 'string' },
  'per-class': { type: 'string' },
  'real-per-class': { type: 'string' },
  features: { type: 'string', default: 'inception' },
  'feature-engine': { type: 'string', default: 'auto' },
  'feature-workers': { type: 'string', default: '2' },
  'no-f1': { type: 'boolean' },
  hardware: { type: 'string' },
  seed: { type: 'string', default: '42' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface CompareArgs {
  presetName: PresetName;
  preset: ComparePreset;
  data: string;
  test: string;
  out: string;
  results: string;
  gans: GanType[];
  discriminators: DiscriminatorType[];
  features: 'inception' | 'tiny';
  featureEngine: FeatureEngine;
  featureWorkers: number;
  /** Downstream classification F1 per pair (on by default; --no-f1 skips it). */
  f1: boolean;
  hardware?: string;
  seed: number;
}

function int(flag: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new CliError(`--${flag} must be an integer ≥ ${min}, got "${v}"`);
  return n;
}

function list<T extends string>(flag: string, v: string | undefined, known: readonly T[]): T[] {
  if (v === undefined) return [...known];
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = items.filter((s) => !known.includes(s as T));
  if (bad.length || items.length === 0) throw new CliError(`--${flag} takes a comma-separated list from ${known.join(', ')}; got "${v}"`);
  return [...new Set(items)] as T[];
}

/** Parse and validate the command line; every problem is a CliError naming the flag. */
export function parseCompareArgs(argv: string[]): CompareArgs | 'help' {
  const v = parseFlags(argv, OPTIONS);
  if (v === 'help') return 'help';
  if (!PRESET_NAMES.includes(v.preset as PresetName)) throw new CliError(`--preset must be ${PRESET_NAMES.slice(0, -1).join(', ')} or ${PRESET_NAMES[PRESET_NAMES.length - 1]}, got "${v.preset}"`);
  const presetName = v.preset as PresetName;
  const preset: ComparePreset = { ...PRESETS[presetName] };
  if (v.rounds !== undefined) preset.rounds = int('rounds', v.rounds, 1);
  if (v.clients !== undefined) preset.clients = int('clients', v.clients, 1);
  if (v['max-tiles'] !== undefined) preset.maxTiles = int('max-tiles', v['max-tiles'], 2);
  if (v['per-class'] !== undefined) preset.perClass = int('per-class', v['per-class'], 2);
  if (v['real-per-class'] !== undefined) preset.realPerClass = int('real-per-class', v['real-per-class'], 2);
  if (!isFeatureEngine(v['feature-engine']!)) throw new CliError(`--feature-engine must be one of ${FEATURE_ENGINES.join(', ')}, got "${v['feature-engine']}"`);
  if (v.features !== 'inception' && v.features !== 'tiny') throw new CliError(`--features must be inception or tiny, got "${v.features}"`);
  const gans = list('gans', v.gans, GAN_TYPES);
  const discriminators = list('discriminators', v.discriminators, DISCRIMINATOR_TYPES);
  const seed = int('seed', v.seed!, 0);
  // Fail on a bad preset/flag combination before reading any tile.
  for (const g of gans) for (const d of discriminators) pairConfig(preset, g, d, seed);
  return {
    presetName,
    preset,
    data: v.data!,
    test: v.test!,
    out: v.out ?? join('out', `compare-${presetName}`),
    results: v.results!,
    gans,
    discriminators,
    features: v.features,
    featureEngine: v['feature-engine'] as FeatureEngine,
    featureWorkers: int('feature-workers', v['feature-workers']!, 1),
    f1: !v['no-f1'],
    hardware: v.hardware,
    seed,
  };
}

/** The linear head's seeds, as npm run evaluate's defaults. */
const CLASSIFIER_SEEDS = [1, 2, 3] as const;

function describeCpu(): string {
  const c = cpus();
  return `${c.length}-core ${c[0]?.model.trim() ?? 'CPU'} (load average ${loadavg()[0].toFixed(1)} at the start: shared machine)`;
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const args = parseCompareArgs(argv);
  if (args === 'help') {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const log = (line: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${line}\n`);
  const backend = await initNodeBackend();
  const size = pairConfig(args.preset, args.gans[0], args.discriminators[0], args.seed).imageSize;
  const classes = pairConfig(args.preset, args.gans[0], args.discriminators[0], args.seed).classes;
  log(`backend ${backend.backend}; preset ${args.presetName} (${size} px); ${args.gans.length * args.discriminators.length} pairs`);
  const train = readTileFolder(args.data, { classes, size });
  const test = readTileFolder(args.test, { classes, size });
  log(`read ${train.length} training and ${test.length} test tiles at ${size} px`);

  const nsfwjs = async (network: 'inception-v3' | 'mobilenet-v2', what: string) => {
    const ex = await createNodeNsfwjsExtractor(network, { engine: args.featureEngine, threads: args.featureWorkers, onFallback: (reason) => log(`features: ${reason}`) });
    log(`${what} loaded on ${ex.engine}`);
    return ex;
  };
  let extractor: FeatureExtractor;
  if (args.features === 'tiny') extractor = createTinyExtractor();
  else extractor = await nsfwjs('inception-v3', 'InceptionV3');
  // The downstream classifier's features: MobileNetV2 (as npm run evaluate's linear probe), or a second tiny projection.
  let classifierExtractor: FeatureExtractor | undefined;
  try {
    if (args.f1 && args.features === 'tiny') classifierExtractor = createTinyExtractor(32, 4321);
    else if (args.f1) {
      classifierExtractor = await nsfwjs('mobilenet-v2', 'MobileNetV2 (classifier features)');
    }
  } catch (e) {
    extractor.dispose();
    throw e;
  }
  const positive = classes.includes('MSIH') ? classes.indexOf('MSIH') : 0;

  const run: RunDescription = {
    preset: args.presetName,
    hardware: args.hardware ?? (backend.backend === 'webgpu' ? 'a GPU through WebGPU (Dawn); name it with --hardware' : describeCpu()),
    backend: backend.backend,
    command: `npm run compare -- ${argv.join(' ')}`.trim(),
    date: new Date().toISOString().slice(0, 10),
    commit: gitCommit(),
    totalSeconds: 0,
    settings: {
      imageSize: size,
      clients: args.preset.clients,
      rounds: args.preset.rounds,
      localSteps: args.preset.localSteps,
      batchSize: pairConfig(args.preset, args.gans[0], args.discriminators[0], args.seed).batchSize,
      perClass: args.preset.perClass,
      seed: args.seed,
    },
  };
  const resultsPath = resolve(args.results);
  const write = (result: ComparisonResult, inProgress: boolean) => {
    run.totalSeconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    run.totalCpuSeconds = (cpu.user + cpu.system) / 1e6;
    run.inProgress = inProgress;
    mkdirSync(dirname(resultsPath), { recursive: true });
    const doc = existsSync(resultsPath) ? readFileSync(resultsPath, 'utf8') : undefined;
    writeFileSync(resultsPath, upsertSection(doc, args.presetName, renderComparison(result, run)));
    mkdirSync(args.out, { recursive: true });
    writeFileSync(join(args.out, 'compare.json'), JSON.stringify({ run, result }, null, 2) + '\n');
  };
  let result: ComparisonResult;
  try {
    result = await runComparison(train, test, {
      preset: args.preset,
      gans: args.gans,
      discriminators: args.discriminators,
      out: args.out,
      seed: args.seed,
      extractor,
      classifier: classifierExtractor ? { extractor: classifierExtractor, positive, seeds: CLASSIFIER_SEEDS } : undefined,
      log,
      onPair: (partial) => write(partial, true),
    });
  } finally {
    extractor.dispose();
    classifierExtractor?.dispose();
  }
  write(result, false);
  const failed = result.pairs.filter((p) => p.status === 'failed');
  log(`wrote ${args.results} and ${join(args.out, 'compare.json')} in ${(run.totalSeconds / 60).toFixed(1)} min (${(run.totalCpuSeconds! / 60).toFixed(1)} CPU-min)${failed.length ? `; ${failed.length} pair(s) failed` : ''}`);
}

if (import.meta.url === `file://${process.argv[1]}`) void runCli(() => main());
