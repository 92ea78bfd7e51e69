/**
 * The ablation that decides the small-data recipe's defaults (docs/recipe.md): the same GAN trained with
 * the same budget, seed and tiles, once per recipe variant, each scored along the way by the quality probe
 * (shared/metrics/qualityProbe.ts: KID on MobileNetV2 features of a fixed sample against a fixed real
 * reference). Centralised on purpose: the options act on the GAN's training on few tiles, which is what a
 * hospital does in its round; the federation around it is the same for every variant.
 *
 *   npm run ablation -- --data ../shared/data/crc-msi/train --out out/ablation --steps 1000 --image-size 32
 *
 * Writes ablation.json (every probe of every variant) and prints a Markdown table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseGanConfig, type GanConfig, type GanConfigInput } from '../shared/config/ganConfig.ts';
import { datasetFromTiles } from '../shared/data/dataset.ts';
import type { FeatureExtractor } from '../shared/features/types.ts';
import { createTinyExtractor } from '../shared/features/tiny.ts';
import { createGan } from '../shared/gan/gan.ts';
import { trainLocal, planLocalTraining } from '../shared/gan/localTraining.ts';
import { generateSampleGrid } from '../shared/gan/sampleGrid.ts';
import { createTrainer } from '../shared/gan/trainer.ts';
import { probeQuality, probeReference } from '../shared/metrics/qualityProbe.ts';
import { balancedSubset } from '../cli/subset.ts';
import { createNodeNsfwjsExtractor } from '../eval/features/nodeExtractor.ts';
import { CliError, runCli } from '../node/cliError.ts';
import { parseFlags } from '../node/flags.ts';
import { initNodeBackend } from '../node/nodeBackend.ts';
import { encodePng } from '../node/png.ts';
import { readTileFolder, type FolderTile } from '../node/tileFolder.ts';

/** DiffAugment's whole policy and a generator EMA short enough for 1,000 steps: what the later variants add to. */
const DIFFAUG_EMA: GanConfigInput = { augment: { policy: ['color', 'translation', 'cutout'] }, ema: { decay: 0.995 } };

/** The variants, each a change to the base config; cumulative where the literature stacks them. */
export const VARIANTS: Record<string, GanConfigInput> = {
  baseline: {},
  diffaug: { augment: DIFFAUG_EMA.augment },
  'diffaug+ema': DIFFAUG_EMA,
  'diffaug+ema+hinge': { ...DIFFAUG_EMA, adversarialLoss: 'hinge' },
  'diffaug+ema+r1': { ...DIFFAUG_EMA, r1: { gamma: 1 }, discriminator: { dropout: 0 } },
  'diffaug+ema+sn': { ...DIFFAUG_EMA, discriminator: { spectralNorm: true } },
  // As SNGAN trains it: spectral normalisation instead of dropout.
  'diffaug+ema+sn-dropout': { ...DIFFAUG_EMA, discriminator: { spectralNorm: true, dropout: 0 } },
  // DiffAugment alone regularising the discriminator (no dropout): the product's recipe since this ablation.
  'diffaug+ema-dropout': { ...DIFFAUG_EMA, discriminator: { dropout: 0 } },
  'diffaug+ema+mbstd': { ...DIFFAUG_EMA, discriminator: { minibatchStd: true } },
  // The recipe (no discriminator dropout) plus mode seeking at MSGAN's λ = 1.
  'diffaug+ema-dropout+ms': { ...DIFFAUG_EMA, discriminator: { dropout: 0 }, modeSeeking: { lambda: 1 } },
  // The generator's upsampling by interpolation instead of pixel copies (no 2 × 2 blocks to smooth out).
  'diffaug+ema+bilinear': { ...DIFFAUG_EMA, generator: { upsample: 'bilinear' } },
};

export interface AblationOptions {
  tiles: readonly FolderTile[];
  base: GanConfigInput;
  variants: string[];
  steps: number;
  probeEvery: number;
  probePerClass: number;
  extractor: FeatureExtractor;
  referenceTiles: readonly Uint8Array[];
  seed: number;
  out: string;
  log: (line: string) => void;
}

export interface VariantResult {
  variant: string;
  config: GanConfigInput;
  probes: { step: number; kid: number; kidStd: number; diversity: number; seconds: number }[];
  best: { step: number; kid: number };
  last: { step: number; kid: number };
  secondsPerStep: number;
}

export async function runAblation(opts: AblationOptions): Promise<VariantResult[]> {
  const results: VariantResult[] = [];
  const out = resolve(opts.out);
  mkdirSync(out, { recursive: true });
  for (const name of opts.variants) {
    const change = VARIANTS[name];
    if (!change) throw new CliError(`unknown variant "${name}" (choose from ${Object.keys(VARIANTS).join(', ')})`);
    const input: GanConfigInput = {
      ...opts.base,
      ...change,
      generator: { ...(opts.base.generator ?? {}), ...(change.generator ?? {}) },
      discriminator: { ...(opts.base.discriminator ?? {}), ...(change.discriminator ?? {}) },
      seed: opts.seed,
    };
    const cfg: GanConfig = parseGanConfig(input, `variant ${name}`);
    const data = datasetFromTiles(opts.tiles, cfg.imageSize, cfg.classes.length);
    const gan = createGan(cfg);
    const trainer = createTrainer(gan, opts.seed);
    const reference = await probeReference(opts.extractor, opts.referenceTiles, cfg.imageSize);
    const probes: VariantResult['probes'] = [];
    const t0 = Date.now();
    let trainSeconds = 0;
    // The hospitals' own loop (shared/gan/localTraining.ts), one chunk of steps between probes; each
    // chunk reshuffles from its own seed.
    for (let done = 0, chunk = 0; done < opts.steps; chunk++) {
      const steps = Math.min(opts.probeEvery, opts.steps - done);
      const r = await trainLocal(trainer, data, { plan: planLocalTraining(data.count, cfg.batchSize, { steps }), seed: opts.seed * 1009 + chunk, yieldEvery: 1000 });
      done += steps;
      trainSeconds += r.seconds;
      if (!Number.isFinite(r.dLoss) || !Number.isFinite(r.gLoss)) throw new Error(`${name} diverged by step ${done}: D ${r.dLoss}, G ${r.gLoss}`);
      const p = await probeQuality(gan, reference, opts.extractor, { perClass: opts.probePerClass });
      probes.push({ step: done, kid: p.kid, kidStd: p.kidStd, diversity: p.diversity, seconds: (Date.now() - t0) / 1000 });
      opts.log(`${name}: step ${done}/${opts.steps}, KID ${p.kid.toFixed(4)} ± ${p.kidStd.toFixed(4)}, diversity ${p.diversity.toFixed(3)}, D ${r.dLoss.toFixed(3)} G ${r.gLoss.toFixed(3)}`);
    }
    const grid = await generateSampleGrid(gan, 8, 1234);
    writeFileSync(join(out, `samples-${name}.png`), encodePng(grid.width, grid.height, grid.rgba));
    trainer.dispose();
    gan.dispose();
    data.dispose();
    const best = probes.reduce((a, b) => (b.kid < a.kid ? b : a));
    const last = probes[probes.length - 1];
    results.push({ variant: name, config: change, probes, best: { step: best.step, kid: best.kid }, last: { step: last.step, kid: last.kid }, secondsPerStep: trainSeconds / opts.steps });
    writeFileSync(join(out, 'ablation.json'), JSON.stringify({ steps: opts.steps, probeEvery: opts.probeEvery, features: opts.extractor.name, results }, null, 2) + '\n');
  }
  return results;
}

export function ablationTable(results: readonly VariantResult[]): string {
  const rows = results.map((r) => `| ${r.variant} | ${r.last.kid.toFixed(4)} | ${r.best.kid.toFixed(4)} (step ${r.best.step}) | ${r.probes.map((p) => p.kid.toFixed(3)).join(' → ')} | ${r.probes.map((p) => p.diversity.toFixed(2)).join(' → ')} | ${(r.secondsPerStep * 1000).toFixed(0)} ms |`);
  return ['| variant | KID at the end | best KID | curve | diversity | time per step |', '|---|---|---|---|---|---|', ...rows].join('\n');
}

const USAGE = `Usage: npm run ablation -- --data DIR --out DIR [options]

Trains the same GAN once per recipe variant with the same budget and seed, and scores each with the
quality probe (KID on MobileNetV2 features of a fixed sample against a fixed real reference).

  --data DIR          tiles laid out <label>/<tile>.jpg|png
  --out DIR           ablation.json and samples-<variant>.png
  --variants LIST     comma-separated (default all: ${Object.keys(VARIANTS).join(', ')})
  --steps N           generator steps per variant (default 1000)
  --probe-every N     steps between probes (default 200)
  --probe-per-class N synthetic tiles per class per probe (default 64)
  --reference N       real reference tiles (class-balanced subset, default 256)
  --image-size S      (default 32)
  --gan G             acgan | cgan | wgan-gp (default acgan)
  --g-channels N      generator base channels (default 32, as npm run simulate on a CPU)
  --d-channels N      discriminator base channels (default 16)
  --batch-size B      (default 32)
  --features F        mobilenet | tiny (default mobilenet)
  --seed N            (default 7)`;

async function main(argv = process.argv.slice(2)): Promise<void> {
  const f = parseFlags(argv, {
    data: { type: 'string' },
    out: { type: 'string' },
    variants: { type: 'string', default: Object.keys(VARIANTS).join(',') },
    steps: { type: 'string', default: '1000' },
    'probe-every': { type: 'string', default: '200' },
    'probe-per-class': { type: 'string', default: '64' },
    reference: { type: 'string', default: '256' },
    'image-size': { type: 'string', default: '32' },
    gan: { type: 'string', default: 'acgan' },
    'g-channels': { type: 'string', default: '32' },
    'd-channels': { type: 'string', default: '16' },
    'batch-size': { type: 'string', default: '32' },
    features: { type: 'string', default: 'mobilenet' },
    seed: { type: 'string', default: '7' },
    help: { type: 'boolean', short: 'h' },
  });
  if (f === 'help') {
    console.log(USAGE);
    return;
  }
  if (!f.data || !f.out) throw new CliError(`--data and --out are required\n\n${USAGE}`);
  const int = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`--${name} must be a positive integer, got "${v}"`);
    return n;
  };
  const size = int('image-size', f['image-size'] as string);
  const base: GanConfigInput = {
    gan: f.gan as GanConfigInput['gan'],
    imageSize: size,
    batchSize: int('batch-size', f['batch-size'] as string),
    generator: { baseChannels: int('g-channels', f['g-channels'] as string) },
    discriminator: { baseChannels: int('d-channels', f['d-channels'] as string) },
  };
  const classes = parseGanConfig(base).classes;
  const backend = await initNodeBackend();
  const tiles = readTileFolder(f.data as string, { classes, size });
  const seed = int('seed', f.seed as string);
  const reference = balancedSubset(tiles, int('reference', f.reference as string), seed + 1).map((t) => t.pixels);
  const extractor = f.features === 'tiny' ? createTinyExtractor() : await createNodeNsfwjsExtractor('mobilenet-v2');
  console.log(`backend ${backend.backend}; ${tiles.length} tiles; reference ${reference.length}; features ${extractor.name}`);
  const results = await runAblation({
    tiles,
    base,
    variants: (f.variants as string).split(',').map((s) => s.trim()).filter(Boolean),
    steps: int('steps', f.steps as string),
    probeEvery: int('probe-every', f['probe-every'] as string),
    probePerClass: int('probe-per-class', f['probe-per-class'] as string),
    extractor,
    referenceTiles: reference,
    seed,
    out: f.out as string,
    log: (l) => console.log(l),
  });
  extractor.dispose();
  console.log('\n' + ablationTable(results));
}

if (import.meta.url === `file://${process.argv[1]}`) void runCli(() => main());
