import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { AggregatorConfig } from '../shared/aggregate/index.ts';
import { ConfigError } from '../shared/config/configError.ts';
import { DEFAULT_LOCAL_STEPS, DEFAULT_ROUNDS, QUALITY_FEATURES, type QualityFeatures } from '../shared/config/fedConfig.ts';
import { parseGanConfig, withRecipeDefaults, type GanConfigInput } from '../shared/config/ganConfig.ts';
import { isBatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { parsePartitionSpec, type PartitionSpec } from '../shared/fed/partition.ts';
import { parseFlags } from '../node/flags.ts';
import { CliError, runCli } from '../node/cliError.ts';
import { ProgressBar } from './progress.ts';
import { balancedSubset } from './subset.ts';
import { readTileFolder } from '../node/tileFolder.ts';

export const USAGE = `Usage: npm run simulate -- --data DIR --out DIR [options]

Simulates N hospitals training a conditional GAN with federated averaging, in one process
(or, with --server, as real clients of a federation server).

  --data DIR            tiles laid out <label>/<tile>.jpg|png (manifest.csv in DIR or its parent is used if present)
  --out DIR             where summary.json, samples.png, checkpoint.fgw (and checkpoint-best.fgw) are written
  --clients N           hospitals (default 4)
  --rounds R            federated rounds (default ${DEFAULT_ROUNDS})
  --local-steps N       generator steps each hospital trains per round, whatever its tile count (default
                        ${DEFAULT_LOCAL_STEPS}); one step = one batch and one generator update (WGAN-GP: after nCritic
                        critic updates). The defaults, ${DEFAULT_ROUNDS} × ${DEFAULT_LOCAL_STEPS}, are the federation's:
                        for a quick look pass e.g. --rounds 2 --local-steps 20
  --fraction C          fraction of hospitals sampled per round (default 1)
  --min-fit K           at least K hospitals per round (default 1)
  --partition P         iid | noniid:<r> (majority-class ratio, e.g. noniid:0.7) | site (default iid)
  --gan G               acgan | cgan | wgan-gp (default acgan)
  --discriminator D     cnn | resnet | vit | swin (default cnn)
  --image-size S        tile size in px, a multiple of 8 (default 32)
  --batch-size B        (default 32)
  --g-channels N        generator base channels (default 32; the paper-size model uses 128)
  --d-channels N        discriminator base channels (default 16; paper-size 32)
  --latent-dim N        (default 100)
  --batch-norm M        average | local (FedBN) (default average)
  --aggregator A        fedavg | median | trimmed-mean[:beta] (default fedavg)
  --max-tiles N         use at most N tiles (a seeded, class-balanced subset) for quick runs
  --quality-every N     quality tracked during training: every N rounds, and after the last round of a run
                        at least N rounds long, a fixed-sample KID of the global model against a fixed
                        class-balanced subset of the tiles (summary.json "quality"; checkpoint-best.fgw is the
                        best-scoring global model); 0 turns it off (default 5)
  --quality-per-class N synthetic tiles per class of each probe, and reference tiles per class (default 32)
  --quality-features F  mobilenet-v2 | tiny (default mobilenet-v2, nsfwjs's bundled weights on the training
                        backend; tiny is a random projection for quick tests, not comparable with it)
  --until-flat          stop before --rounds (then the cap) once the quality curve has flattened: the last
                        --flat-patience probes improved the best KID by less than --flat-min-improvement
  --flat-patience P     (default 3)
  --flat-min-improvement R  relative improvement, 0 ≤ R < 1 (default 0.05)
  --flat-from-round N   judge flatness only on probes of round N or later (default: the round by which the
                        generator EMA has forgotten the random initial generator, 3/(1 − decay) steps)
  --time-budget-minutes M  train for at most M minutes (--rounds is then the cap): the run stops after the
                        first round that ends past the budget, probes quality there, and writes its outputs
  --resume              go on with the run already in --out from its last round, up to --rounds (a run the
                        time budget stopped, or one that reached its cap): its checkpoint, rounds, quality
                        curve and FedBN weights, to the same figures as a run that never stopped; every
                        other setting must be the run's own, but the stopping rule (--until-flat and its
                        --flat-* flags) may change: a run the rule stopped goes on under a rule that,
                        replayed over its curve, would not have stopped it
  --config FILE         GAN config JSON/YAML (shared/config/ganConfig.ts); flags override it
  --seed N              (default 42)
  --server URL          join a federation server (ws://host:port/ws) instead of simulating it
  --tokens FILE         with --server: tokens file (YAML list of {hospital, token}), one per hospital
  --hospital-index I    with --server: run only hospital I (0 to N-1) of the --clients N, on its share of the
                        tiles, logging in with entry I of --tokens: one process (one pod of an Indexed Job,
                        deploy/k8s/overlays/simulate-scale) per hospital

Trains on tfjs's wasm backend (SIMD, with this project's training kernels; TFJS_BACKEND=cpu forces the pure-JS backend),
or on WebGPU through Dawn when DAWN_NODE points at dawn.node.`;

const OPTIONS = {
  data: { type: 'string' },
  out: { type: 'string' },
  clients: { type: 'string', default: '4' },
  rounds: { type: 'string', default: String(DEFAULT_ROUNDS) },
  'local-steps': { type: 'string', default: String(DEFAULT_LOCAL_STEPS) },
  fraction: { type: 'string', default: '1' },
  'min-fit': { type: 'string', default: '1' },
  partition: { type: 'string', default: 'iid' },
  gan: { type: 'string', default: 'acgan' },
  discriminator: { type: 'string' },
  'image-size': { type: 'string' },
  'batch-size': { type: 'string' },
  'g-channels': { type: 'string' },
  'd-channels': { type: 'string' },
  'latent-dim': { type: 'string' },
  'batch-norm': { type: 'string', default: 'average' },
  aggregator: { type: 'string', default: 'fedavg' },
  'max-tiles': { type: 'string' },
  'quality-every': { type: 'string', default: '5' },
  'quality-per-class': { type: 'string', default: '32' },
  'quality-features': { type: 'string', default: 'mobilenet-v2' },
  'until-flat': { type: 'boolean' },
  'flat-patience': { type: 'string', default: '3' },
  'flat-min-improvement': { type: 'string', default: '0.05' },
  'flat-from-round': { type: 'string' },
  'time-budget-minutes': { type: 'string' },
  resume: { type: 'boolean' },
  config: { type: 'string' },
  seed: { type: 'string' },
  server: { type: 'string' },
  tokens: { type: 'string' },
  'hospital-index': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function int(flag: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new CliError(`--${flag} must be an integer ≥ ${min}, got "${v}"`);
  return n;
}

function parseAggregator(s: string): AggregatorConfig {
  const [type, beta] = s.split(':');
  if (type === 'fedavg' || type === 'median') {
    if (beta !== undefined) throw new CliError(`--aggregator ${type} takes no parameter`);
    return { type };
  }
  if (type === 'trimmed-mean') {
    const b = beta === undefined ? 0.1 : Number(beta);
    if (!(b >= 0 && b < 0.5)) throw new CliError(`--aggregator trimmed-mean:<beta> needs 0 ≤ beta < 0.5, got "${beta}"`);
    return { type, beta: b };
  }
  throw new CliError(`--aggregator must be fedavg, median or trimmed-mean[:beta], got "${s}"`);
}

export interface SimulateArgs {
  data: string;
  out: string;
  clients: number;
  rounds: number;
  localSteps: number;
  fraction: number;
  minFit: number;
  partition: PartitionSpec;
  model: ReturnType<typeof parseGanConfig>;
  batchNorm: 'average' | 'local';
  aggregator: AggregatorConfig;
  maxTiles?: number;
  /** Quality tracked during training (cli/simulationQuality.ts); everyRounds 0: off. */
  quality: { everyRounds: number; perClass: number; features: QualityFeatures; untilFlat?: { patience: number; minImprovement: number; fromRound?: number } };
  server?: string;
  tokens?: string;
  /** With --server: run only this hospital of `clients` (cli/remote.ts). */
  hospitalIndex?: number;
  /** Stop after the first round that ends past this many seconds of training (--rounds is then the cap). */
  timeBudgetSeconds?: number;
  /** Go on with the run in `out` (cli/simulationResume.ts). */
  resume?: boolean;
}

function parseQualityArgs(v: Record<string, string | undefined>): SimulateArgs['quality'] {
  const features = v['quality-features']!;
  if (!(QUALITY_FEATURES as readonly string[]).includes(features)) throw new CliError(`--quality-features must be ${QUALITY_FEATURES.join(' or ')}, got "${features}"`);
  const everyRounds = int('quality-every', v['quality-every']!, 0);
  const quality: SimulateArgs['quality'] = { everyRounds, perClass: int('quality-per-class', v['quality-per-class']!, 2), features: features as QualityFeatures };
  if ((v as { 'until-flat'?: unknown })['until-flat']) {
    if (everyRounds === 0) throw new CliError('--until-flat needs quality tracking: --quality-every N with N ≥ 1');
    const minImprovement = Number(v['flat-min-improvement']);
    if (!(minImprovement >= 0 && minImprovement < 1)) throw new CliError(`--flat-min-improvement must be in [0, 1), got "${v['flat-min-improvement']}"`);
    quality.untilFlat = { patience: int('flat-patience', v['flat-patience']!, 1), minImprovement };
    if (v['flat-from-round'] !== undefined) quality.untilFlat.fromRound = int('flat-from-round', v['flat-from-round'], 0);
  } else if (v['flat-from-round'] !== undefined) {
    throw new CliError('--flat-from-round sets when --until-flat starts judging; add --until-flat');
  }
  return quality;
}

/** Parse and validate the command line; every problem is a CliError naming the flag. */
export function parseSimulateArgs(argv: string[]): SimulateArgs | 'help' {
  if (argv.some((a) => a === '--local-epochs' || a.startsWith('--local-epochs='))) {
    throw new CliError(`--local-epochs was replaced by --local-steps N: generator steps per hospital per round (default ${DEFAULT_LOCAL_STEPS})`);
  }
  const v = parseFlags(argv, OPTIONS);
  if (v === 'help') return 'help';
  if (!v.data) throw new CliError('--data DIR is required (a folder laid out <label>/<tile>.jpg)');
  if (!v.out) throw new CliError('--out DIR is required');
  const fraction = Number(v.fraction);
  if (!(fraction > 0 && fraction <= 1)) throw new CliError(`--fraction must be in (0, 1], got "${v.fraction}"`);
  let partition: PartitionSpec;
  try {
    partition = parsePartitionSpec(v.partition!);
  } catch (e) {
    throw new CliError(`--partition: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isBatchNormPolicy(v['batch-norm'])) throw new CliError(`--batch-norm must be average or local, got "${v['batch-norm']}"`);
  let base: GanConfigInput = {};
  if (v.config) {
    try {
      base = parseYaml(readFileSync(v.config, 'utf8')) ?? {};
      if (typeof base !== 'object' || Array.isArray(base)) throw new Error('not a mapping of GAN config fields');
    } catch (e) {
      throw new CliError(`cannot read --config ${v.config}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  // The product's recipe (DiffAugment, generator EMA) unless the --config file sets those fields.
  base = withRecipeDefaults(base) as GanConfigInput;
  const input: GanConfigInput = {
    ...base,
    gan: (v.gan ?? base.gan) as GanConfigInput['gan'],
    imageSize: v['image-size'] !== undefined ? Number(v['image-size']) : (base.imageSize ?? 32),
    batchSize: v['batch-size'] !== undefined ? Number(v['batch-size']) : (base.batchSize ?? 32),
    latentDim: v['latent-dim'] !== undefined ? Number(v['latent-dim']) : base.latentDim,
    seed: v.seed !== undefined ? Number(v.seed) : base.seed,
    generator: { ...base.generator, baseChannels: v['g-channels'] !== undefined ? Number(v['g-channels']) : (base.generator?.baseChannels ?? 32) },
    discriminator: {
      ...base.discriminator,
      type: (v.discriminator ?? base.discriminator?.type) as 'cnn',
      baseChannels: v['d-channels'] !== undefined ? Number(v['d-channels']) : (base.discriminator?.baseChannels ?? 16),
    },
  };
  let model;
  try {
    model = parseGanConfig(JSON.parse(JSON.stringify(input)), 'model settings');
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(e.message);
    throw e;
  }
  if (v.server && !v.tokens) throw new CliError('--server needs --tokens FILE (one token per simulated hospital)');
  if (v['hospital-index'] !== undefined && !v.server) throw new CliError('--hospital-index needs --server (it picks one hospital of a federation run by a server)');
  const clients = int('clients', v.clients!, 1);
  const hospitalIndex = v['hospital-index'] !== undefined ? int('hospital-index', v['hospital-index'], 0) : undefined;
  if (hospitalIndex !== undefined && hospitalIndex >= clients) throw new CliError(`--hospital-index must be below --clients ${clients} (hospitals count from 0), got "${v['hospital-index']}"`);
  let timeBudgetSeconds: number | undefined;
  if (v['time-budget-minutes'] !== undefined) {
    const m = Number(v['time-budget-minutes']);
    if (!(Number.isFinite(m) && m > 0)) throw new CliError(`--time-budget-minutes must be a positive number of minutes, got "${v['time-budget-minutes']}"`);
    if (v.server) throw new CliError('--time-budget-minutes applies to a simulation; with --server the federation server decides when training ends');
    timeBudgetSeconds = m * 60;
  }
  if (v.resume && v.server) throw new CliError('--resume applies to a simulation; with --server the federation server resumes from its own checkpoints');
  return {
    data: v.data,
    out: v.out,
    clients,
    rounds: int('rounds', v.rounds!, 1),
    localSteps: int('local-steps', v['local-steps']!, 1),
    fraction,
    minFit: int('min-fit', v['min-fit']!, 1),
    partition,
    model,
    batchNorm: v['batch-norm'],
    aggregator: parseAggregator(v.aggregator!),
    maxTiles: v['max-tiles'] !== undefined ? int('max-tiles', v['max-tiles'], 1) : undefined,
    quality: parseQualityArgs(v),
    server: v.server,
    tokens: v.tokens,
    ...(hospitalIndex !== undefined ? { hospitalIndex } : {}),
    ...(timeBudgetSeconds !== undefined ? { timeBudgetSeconds } : {}),
    ...(v.resume ? { resume: true } : {}),
  };
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const args = parseSimulateArgs(argv);
  if (args === 'help') {
    process.stdout.write(USAGE + '\n');
    return;
  }
  // The training code (tfjs, the GAN, the federation client) is loaded once the arguments are valid, so
  // a mistyped option or --help is answered at once (in the order the static imports had).
  const { loadProbeExtractor } = await import('../shared/fed/hospitalProbe.ts');
  const { initNodeBackend } = await import('../node/nodeBackend.ts');
  const { runRemoteHospitals } = await import('./remote.ts');
  const { runSimulation } = await import('./simulation.ts');
  const t0 = Date.now();
  const backend = await initNodeBackend();
  const readBar = new ProgressBar('reading tiles', 1);
  let tiles = readTileFolder(args.data, {
    classes: args.model.classes,
    size: args.model.imageSize,
    onProgress: (done, total) => readBar.update(done / total, `${done}/${total}`),
  });
  readBar.done(`${tiles.length} tiles at ${args.model.imageSize} px`);
  if (args.maxTiles) tiles = balancedSubset(tiles, args.maxTiles, args.model.seed);
  if (args.clients > tiles.length) throw new CliError(`cannot split ${tiles.length} tiles among ${args.clients} hospitals`);
  process.stderr.write(`backend ${backend.backend}; ${args.model.gan} with ${args.model.discriminator.type} discriminator at ${args.model.imageSize} px\n`);

  if (args.server) {
    await runRemoteHospitals(tiles, {
      server: args.server,
      tokensFile: args.tokens!,
      clients: args.clients,
      partition: args.partition,
      imageSize: args.model.imageSize,
      classes: args.model.classes,
      seed: args.model.seed,
      out: args.out,
      hospitalIndex: args.hospitalIndex,
      log: (l) => process.stderr.write(l + '\n'),
    });
    process.stderr.write(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s; wrote ${args.out}\n`);
    return;
  }

  // The probe's feature network runs on the training backend (MobileNetV2 from nsfwjs's bundled weights).
  const extractor = args.quality.everyRounds > 0 ? await loadProbeExtractor(args.quality.features) : undefined;
  const bar = new ProgressBar('training', 1);
  let summary;
  try {
    summary = await runSimulation(tiles, {
      ...args,
      quality: extractor ? { ...args.quality, extractor } : undefined,
      // Each probe as it lands, so a long run's quality curve can be watched (the round lines follow at the end).
      onQuality: ({ point: q, best, stop }) =>
        bar.note(`quality after round ${q.round}: KID ${q.kid.toPrecision(4)} ± ${q.kidStd.toPrecision(2)}, diversity ${q.diversity.toFixed(2)}${best ? ' (best so far)' : ''}${stop ? '; the curve is flat: stopping' : ''}`),
      onProgress: (p) => bar.update((p.round - 1 + (p.client - 1 + p.fraction) / p.clients) / p.rounds, `round ${p.round}/${p.rounds} · ${p.detail}`),
    });
  } finally {
    extractor?.dispose();
  }
  bar.done();
  const probes = new Map((summary.quality?.curve ?? []).map((p) => [p.round, p]));
  for (const r of summary.rounds) {
    const q = probes.get(r.round);
    process.stdout.write(
      `round ${r.round}: ${r.clients.length} hospitals, ${r.clients.reduce((s, c) => s + c.examples, 0)} tiles, D ${r.dLoss.toFixed(4)} G ${r.gLoss.toFixed(4)}, ${r.seconds.toFixed(1)} s` +
        (q ? `; KID ${q.kid.toPrecision(4)} ± ${q.kidStd.toPrecision(2)}, diversity ${q.diversity.toFixed(2)} (${summary.quality!.features})` : '') +
        '\n',
    );
  }
  const sq = summary.quality;
  if (sq?.best) process.stdout.write(`best quality: round ${sq.best.round}, KID ${sq.best.kid.toPrecision(4)}: ${sq.bestCheckpoint}\n`);
  if (sq?.stoppedEarly) process.stdout.write(`the quality curve flattened: stopped after round ${sq.stoppedEarly.round} of at most ${sq.stoppedEarly.rounds}\n`);
  const tb = summary.timeBudget;
  if (tb?.stoppedAfterRound) process.stdout.write(`the time budget (${(tb.seconds / 60).toFixed(1)} min) ran out: stopped after round ${tb.stoppedAfterRound} of at most ${tb.rounds}\n`);
  process.stdout.write(`wrote ${args.out}/summary.json, samples.png, checkpoint.fgw in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) void runCli(() => main());
