/**
 * The issue-13 runs in one command: every GAN type trained in a four-hospital federation until its
 * quality curve flattens (split by site, and again non-IID), the best type again at a larger size, the
 * GAN × discriminator table, and every best checkpoint through the quality report on held-out patients.
 *
 *   DAWN_NODE=…/dawn.node npm run experiment -- --preset paper --out $OUT/paper     (a GPU machine)
 *   npm run experiment -- --preset cpu --out out/cpu                              (this CPU, 32 px)
 *   npm run experiment -- --preset cpu-long --out out/cpu-long                    (the same, up to 65 min)
 *   npm run experiment -- --preset paper --out X --dry-run                         (print the plan)
 *
 * Each step is one of this project's own commands (npm run simulate / compare / evaluate), run as a child
 * process with this environment (so DAWN_NODE reaches it). A step whose result file exists is skipped:
 * a second call with the same --out resumes where the first stopped (a GPU lease of 10 minutes a call).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RECIPE_DEFAULTS } from '../shared/config/ganConfig.ts';
import { CliError, runCli } from '../node/cliError.ts';
import { parseFlags } from '../node/flags.ts';

export type GanName = 'acgan' | 'cgan' | 'wgan-gp';

export interface Preset {
  description: string;
  imageSize: number;
  /** The size the best GAN type is trained again at (null: not). */
  largeSize: number | null;
  gans: GanName[];
  partitions: string[];
  gChannels: number;
  dChannels: number;
  batchSize: number;
  localSteps: number;
  /** Cap on rounds; the run stops earlier once the quality curve flattens. */
  rounds: number;
  qualityEvery: number;
  qualityPerClass: number;
  flatPatience: number;
  /** Each training run stops after the first round that ends past this many minutes (absent: no budget). */
  timeBudgetMinutes?: number;
  /** The recipe (a GAN config file's content). */
  recipe: Record<string, unknown>;
  /** npm run compare's preset, or null. */
  compare: string | null;
  /** Synthetic tiles per class in the quality report. */
  evaluatePerClass: number;
}

/** The product's recipe (shared/config/ganConfig.ts RECIPE_DEFAULTS), as the runs' GAN config file spells it out: every field, a copy. */
const RECIPE: Record<string, unknown> = structuredClone(RECIPE_DEFAULTS);

const CPU: Preset = {
  description: 'the same recipe at 32 px on a CPU: ACGAN, four hospitals split by site and again non-IID (noniid:0.7), sized for about 25 min of training each on 2 cores',
  imageSize: 32,
  largeSize: null,
  gans: ['acgan'],
  partitions: ['site', 'noniid:0.7'],
  gChannels: 32,
  // The product's discriminator width (the GAN config's default): at 16 channels the discriminator stayed
  // near chance and the samples' diversity was 0.64 of the reals' at 1,000 steps, 0.84 at 32 (docs/recipe.md).
  dChannels: 32,
  batchSize: 32,
  localSteps: 25,
  rounds: 36,
  qualityEvery: 4,
  qualityPerClass: 32,
  flatPatience: 4,
  // A CPU run is ~1,000 steps along the federation: an EMA of decay 0.999 would still carry ~37 % of the
  // random initial generator; 0.995 (half-life ~140 steps) suits that length.
  recipe: { ...RECIPE, ema: { decay: 0.995 } },
  compare: null,
  evaluatePerClass: 200,
};

export const PRESETS: Record<string, Preset> = {
  paper: {
    description: 'the GPU runs: 64 px, the paper-size generator, ACGAN/CGAN/WGAN-GP × site and non-IID, the best at 128 px, compare full, every best checkpoint evaluated',
    imageSize: 64,
    largeSize: 128,
    gans: ['acgan', 'cgan', 'wgan-gp'],
    partitions: ['site', 'noniid:0.7'],
    gChannels: 128,
    dChannels: 32,
    batchSize: 64,
    localSteps: 200,
    rounds: 100,
    qualityEvery: 5,
    qualityPerClass: 64,
    flatPatience: 4,
    recipe: RECIPE,
    compare: 'full',
    evaluatePerClass: 500,
  },
  cpu: CPU,
  'cpu-long': {
    ...CPU,
    description: 'the cpu preset\'s site-split run as long as a session allows: the same federation for at most 65 min of training (~2,700 steps on 2 cores), stopped when 6 probes in a row improve KID by < 5 %',
    partitions: ['site'],
    rounds: 400,
    flatPatience: 6,
    // 65 min leaves a 3-hour session room for the report and the checks around it. The cpu preset's EMA
    // (0.995): its first 36 rounds are the cpu run itself, and at ~2,700 steps the recipe's 0.999 would
    // still carry 0.999^2700 ≈ 7 % of the random initial generator (its 2,575-step run: docs/results.md).
    timeBudgetMinutes: 65,
  },
};

export interface Step {
  name: string;
  /** npm script and its arguments. */
  script: 'simulate' | 'compare' | 'evaluate';
  args: string[];
  /** The file whose existence means the step is done. */
  done: string;
}

export interface PlanInput {
  preset: Preset;
  data: string;
  test: string;
  out: string;
  seed: number;
}

const slug = (s: string) => s.replace(/[^a-z0-9]+/gi, '-');

/** Where one run (GAN type × partition × size) writes. */
const runDir = (p: PlanInput, gan: GanName, partition: string, size: number) => join(p.out, `${gan}-${slug(partition)}-${size}px`);

function trainStep(p: PlanInput, gan: GanName, partition: string, size: number): Step {
  const dir = runDir(p, gan, partition, size);
  const pr = p.preset;
  return {
    name: `train ${gan}, ${partition}, ${size} px`,
    script: 'simulate',
    args: [
      '--data', p.data, '--out', dir, '--clients', '4', '--partition', partition, '--gan', gan,
      '--image-size', String(size), '--g-channels', String(pr.gChannels), '--d-channels', String(pr.dChannels),
      '--batch-size', String(pr.batchSize), '--local-steps', String(pr.localSteps), '--rounds', String(pr.rounds),
      '--config', join(p.out, 'recipe.json'), '--quality-every', String(pr.qualityEvery),
      '--quality-per-class', String(pr.qualityPerClass), '--until-flat', '--flat-patience', String(pr.flatPatience),
      '--seed', String(p.seed),
      ...(pr.timeBudgetMinutes !== undefined ? ['--time-budget-minutes', String(pr.timeBudgetMinutes)] : []),
    ],
    done: join(dir, 'summary.json'),
  };
}

/** The report on a run's best checkpoint, with the run's own split so that it also answers per hospital. */
function evaluateStep(p: PlanInput, trainDir: string, partition: string): Step {
  return {
    name: `evaluate ${trainDir}`,
    script: 'evaluate',
    args: [
      '--checkpoint', join(trainDir, 'checkpoint-best.fgw'), '--real-train', p.data, '--real-test', p.test,
      '--per-class', String(p.preset.evaluatePerClass), '--out', join(trainDir, 'report'),
      '--partition', partition, '--clients', '4', '--partition-seed', String(p.seed),
    ],
    done: join(trainDir, 'report', 'report.json'),
  };
}

/** The steps known before any training: every GAN type × partition at the preset's size, and compare. */
export function firstSteps(p: PlanInput): Step[] {
  const steps: Step[] = [];
  for (const partition of p.preset.partitions) for (const gan of p.preset.gans) steps.push(trainStep(p, gan, partition, p.preset.imageSize));
  for (const partition of p.preset.partitions) for (const gan of p.preset.gans) steps.push(evaluateStep(p, runDir(p, gan, partition, p.preset.imageSize), partition));
  if (p.preset.compare) {
    steps.push({
      name: `compare --preset ${p.preset.compare}`,
      script: 'compare',
      args: ['--preset', p.preset.compare, '--data', p.data, '--test', p.test, '--out', join(p.out, 'compare'), '--results', join(p.out, 'compare', 'results.md')],
      done: join(p.out, 'compare', 'compare.json'),
    });
  }
  return steps;
}

/** The GAN type whose first-partition run reached the lowest KID (from the runs' summary.json files). */
export function bestGan(p: PlanInput, read: (file: string) => unknown = (f) => JSON.parse(readFileSync(f, 'utf8'))): { gan: GanName; kid: number } {
  let best: { gan: GanName; kid: number } | null = null;
  for (const gan of p.preset.gans) {
    const s = read(trainStep(p, gan, p.preset.partitions[0], p.preset.imageSize).done) as { quality?: { best?: { kid: number } | null } };
    const kid = s.quality?.best?.kid;
    if (typeof kid === 'number' && Number.isFinite(kid) && (best === null || kid < best.kid)) best = { gan, kid };
  }
  if (!best) throw new CliError('no run recorded a quality curve: cannot choose the best GAN type');
  return best;
}

/** The steps after the first ones: the best GAN type at the large size, and its report. */
export function largeSteps(p: PlanInput, gan: GanName): Step[] {
  if (p.preset.largeSize === null) return [];
  const t = trainStep(p, gan, p.preset.partitions[0], p.preset.largeSize);
  return [t, evaluateStep(p, join(t.done, '..'), p.preset.partitions[0])];
}

export function runStep(s: Step, log: (l: string) => void): void {
  if (existsSync(s.done)) {
    log(`✓ ${s.name} (done: ${s.done})`);
    return;
  }
  log(`▶ ${s.name}: npm run ${s.script} -- ${s.args.join(' ')}`);
  const r = spawnSync('npm', ['run', '--silent', s.script, '--', ...s.args], { stdio: 'inherit', env: process.env });
  if (r.status !== 0) throw new CliError(`step "${s.name}" failed (exit ${r.status ?? r.signal}); run the same command again to resume from it`);
}

const USAGE = `Usage: npm run experiment -- --preset paper|cpu|cpu-long --out DIR [options]

  --preset P     paper: ${PRESETS.paper.description}
                 cpu: ${PRESETS.cpu.description}
                 cpu-long: ${PRESETS['cpu-long'].description}
  --out DIR      every run's folder (checkpoints, summary.json, report/); a second call resumes
  --data DIR     training tiles (default ../shared/data/crc-msi/train)
  --test DIR     held-out tiles for the reports (default ../shared/data/crc-msi/test)
  --seed N       (default 42)
  --dry-run      print the plan and stop`;

async function main(argv = process.argv.slice(2)): Promise<void> {
  const f = parseFlags(argv, {
    preset: { type: 'string' },
    out: { type: 'string' },
    data: { type: 'string', default: '../shared/data/crc-msi/train' },
    test: { type: 'string', default: '../shared/data/crc-msi/test' },
    seed: { type: 'string', default: '42' },
    'dry-run': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (f === 'help') {
    console.log(USAGE);
    return;
  }
  const preset = PRESETS[f.preset ?? ''];
  if (!preset) throw new CliError(`--preset must be one of ${Object.keys(PRESETS).join(', ')}${f.preset ? `, got "${f.preset}"` : ''}`);
  if (!f.out) throw new CliError('--out DIR is required');
  const seed = Number(f.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new CliError(`--seed must be a non-negative integer, got "${f.seed}"`);
  const p: PlanInput = { preset, data: f.data!, test: f.test!, out: resolve(f.out), seed };
  const steps = firstSteps(p);
  if (f['dry-run']) {
    for (const s of steps) console.log(`npm run ${s.script} -- ${s.args.join(' ')}`);
    if (preset.largeSize) console.log(`then the GAN type with the lowest best KID (${preset.partitions[0]}) again at ${preset.largeSize} px, and its report`);
    return;
  }
  mkdirSync(p.out, { recursive: true });
  writeFileSync(join(p.out, 'recipe.json'), JSON.stringify(preset.recipe, null, 2) + '\n');
  for (const s of steps) runStep(s, console.log);
  if (preset.largeSize) {
    const best = bestGan(p);
    console.log(`best at ${preset.imageSize} px: ${best.gan} (KID ${best.kid.toFixed(4)})`);
    for (const s of largeSteps(p, best.gan)) runStep(s, console.log);
  }
  console.log(`all steps done; the reports are under ${p.out}/*/report/report.json`);
}

if (import.meta.url === `file://${process.argv[1]}`) void runCli(() => main());
