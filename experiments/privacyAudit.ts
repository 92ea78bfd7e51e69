/**
 * `npm run privacy-audit`: the same federation trained twice, without and with differential privacy
 * (DP-SGD on the discriminator, the federation config's `privacy.dp`), each audited by the quality report
 * (eval/evaluate.ts: FID/KID, the classifier figures, the membership-inference audit), side by side with
 * the ε each hospital spent (shared/privacy/accountant.ts). Issue 18.4; the figures go in docs/privacy.md.
 *
 * Members are known exactly: the hospitals train on a seeded subset of `<data>/train` chosen by the
 * evaluator's own rule (eval/realTiles.ts `maxPerClass` with the report's seed), so the report's training
 * tiles are the tiles trained on; the held-out tiles are `<data>/test` (patients never trained on, of the
 * same hospital sites: the report compares only sites both have).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CliError, runCli } from '../node/cliError.ts';
import { initNodeBackend } from '../node/nodeBackend.ts';
import type { FolderTile } from '../node/tileFolder.ts';
import { parseSimulateArgs, type SimulateArgs } from '../cli/simulate.ts';
import { runSimulation, simulationFedConfig, type SimulationSummary } from '../cli/simulation.ts';
import type { GanConfig } from '../shared/config/ganConfig.ts';
import { defaultDelta, epsilonFor, EXTENDED_ORDERS } from '../shared/privacy/accountant.ts';
import { effectiveNoiseMultiplier } from '../shared/privacy/dpSgd.ts';
import { DEFAULT_OPTIONS, evaluate, type FeatureChoice } from '../eval/evaluate.ts';
import { readRealTiles } from '../eval/realTiles.ts';
import type { QualityReport, ReportDetails } from '../eval/report/types.ts';

export const USAGE = `Usage: npm run privacy-audit -- --data DIR --out DIR [options] [simulate options]

Trains the same federation without and with differential privacy and audits both (quality report and
membership-inference audit), side by side, with the ε each hospital spent.

  --data DIR                 a folder with train/ and test/ laid out <label>/<tile>.jpg, manifest.csv with
                             patients and sites (e.g. ../shared/data/crc-msi)
  --out DIR                  where no-dp/, dp/ and privacy-audit.json, privacy-audit.md are written
  --members-per-class N      tiles per class the hospitals train on (a seeded subset of train/; default 64);
                             as many held-out tiles per class are drawn from test/
  --noise-multiplier S       DP-SGD noise multiplier σ of the DP run (default 1)
  --clip-norm C              DP-SGD per-example clip norm (default 1)
  --synthetic-per-class N    synthetic tiles per class the report generates (default 100)
  --features F               inception | tiny (the report's feature space; default inception)
  --epochs E                 classifier epochs of the report (default 5)
  --seeds LIST               classifier seeds (default 1,2,3)
  --only SIDE                no-dp | dp: run one side only (the other side's earlier results are kept)
  simulate options           --clients, --rounds, --local-steps, --gan, --image-size, --batch-size, --partition,
                             --g-channels, --d-channels, --seed, … as npm run simulate (--data and --out are set
                             here; quality tracking is off)`;

export type Side = 'no-dp' | 'dp';
export const SIDES: readonly Side[] = ['no-dp', 'dp'];

export interface PrivacyAuditArgs {
  data: string;
  out: string;
  membersPerClass: number;
  dp: { noiseMultiplier: number; clipNorm: number };
  syntheticPerClass: number;
  features: FeatureChoice;
  epochs: number;
  seeds: number[];
  only?: Side;
  simulate: SimulateArgs;
}

const OWN_FLAGS = new Set(['--data', '--out', '--members-per-class', '--noise-multiplier', '--clip-norm', '--synthetic-per-class', '--features', '--epochs', '--seeds', '--only']);

function positive(flag: string, v: string | undefined, fallback: number, integer: boolean): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new CliError(`${flag} must be a ${integer ? 'whole number' : 'number'} above 0, got "${v}"`);
  return n;
}

export function parsePrivacyAuditArgs(argv: string[]): PrivacyAuditArgs | 'help' {
  if (argv.includes('--help') || argv.includes('-h')) return 'help';
  const own: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes('=') ? [argv[i].slice(0, argv[i].indexOf('=')), argv[i].slice(argv[i].indexOf('=') + 1)] : [argv[i], undefined];
    if (!OWN_FLAGS.has(flag)) {
      rest.push(argv[i]);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || value.startsWith('--')) throw new CliError(`${flag} needs a value`);
    own[flag] = value;
  }
  if (!own['--data']) throw new CliError('--data DIR is required (a folder with train/ and test/, e.g. ../shared/data/crc-msi)');
  if (!own['--out']) throw new CliError('--out DIR is required');
  for (const f of ['--quality-every', '--until-flat', '--server', '--tokens', '--max-tiles']) {
    if (rest.some((a) => a === f || a.startsWith(`${f}=`))) throw new CliError(`${f} is not used by the privacy audit (the tiles trained on are --members-per-class per class of train/; no quality tracking)`);
  }
  const features = own['--features'] ?? 'inception';
  if (features !== 'inception' && features !== 'tiny') throw new CliError(`--features must be inception or tiny, got "${features}"`);
  const only = own['--only'];
  if (only !== undefined && only !== 'no-dp' && only !== 'dp') throw new CliError(`--only must be no-dp or dp, got "${only}"`);
  const seeds = (own['--seeds'] ?? '1,2,3').split(',').map((s) => Number(s));
  if (seeds.length < 3 || seeds.some((s) => !Number.isInteger(s)) || new Set(seeds).size !== seeds.length) throw new CliError(`--seeds needs at least 3 different whole numbers, got "${own['--seeds']}"`);
  const simulate = parseSimulateArgs([...rest, '--data', join(own['--data'], 'train'), '--out', own['--out'], '--quality-every', '0']);
  if (simulate === 'help') return 'help';
  return {
    data: own['--data'],
    out: own['--out'],
    membersPerClass: positive('--members-per-class', own['--members-per-class'], 64, true),
    dp: { noiseMultiplier: positive('--noise-multiplier', own['--noise-multiplier'], 1, false), clipNorm: positive('--clip-norm', own['--clip-norm'], 1, false) },
    syntheticPerClass: positive('--synthetic-per-class', own['--synthetic-per-class'], 100, true),
    features,
    epochs: positive('--epochs', own['--epochs'], 5, true),
    seeds,
    ...(only ? { only } : {}),
    simulate,
  };
}

/** The federation settings of the DP side: the config's `privacy.dp` (shared/config/fedConfig.ts). */
export function dpFedSettings(dp: PrivacyAuditArgs['dp']): Record<string, unknown> {
  return { privacy: { dp: { enabled: true, noiseMultiplier: dp.noiseMultiplier, clipNorm: dp.clipNorm } } };
}

/**
 * ε each hospital spent at its default δ = 1/(10·N), N its training tiles: every round it trained is
 * `localSteps` Poisson-sampled batches with q = min(batch, N)/N under DP-SGD with noise σ (σ/√nCritic for
 * WGAN-GP), composed over its rounds by the RDP accountant (shared/privacy/accountant.ts).
 */
export function hospitalEpsilons(summary: Pick<SimulationSummary, 'partition' | 'rounds'>, model: GanConfig, dp: PrivacyAuditArgs['dp'], localSteps: number): { hospital: string; tiles: number; rounds: number; delta: number; epsilon: number }[] {
  const sigma = effectiveNoiseMultiplier(model, dp);
  return summary.partition.map((p) => {
    const rounds = summary.rounds.filter((r) => r.clients.some((c) => c.id === p.id)).length;
    const q = Math.min(model.batchSize, p.examples) / p.examples;
    const delta = defaultDelta(p.examples);
    const epsilon = rounds === 0 ? 0 : epsilonFor({ sampleRate: q, noiseMultiplier: sigma, steps: rounds * localSteps, delta, orders: EXTENDED_ORDERS });
    return { hospital: p.id, tiles: p.examples, rounds, delta, epsilon };
  });
}

export interface SideResult {
  side: Side;
  /** σ of the DP side. */
  noiseMultiplier?: number;
  trainSeconds: number;
  epsilon: ReturnType<typeof hospitalEpsilons> | null;
  fid: number;
  kid: { mean: number; std: number };
  classification: QualityReport['classification'];
  membership: QualityReport['membership'];
  report: string;
}

const f3 = (v: number) => v.toFixed(3);
const ci = (a: { auc: number; ci: { low: number; high: number } | null }) => `${f3(a.auc)}${a.ci ? ` [${f3(a.ci.low)}, ${f3(a.ci.high)}]` : ''}`;

/** The side-by-side table (Markdown), one column per side. */
export function sideBySideTable(results: readonly SideResult[]): string {
  const pm = (m: { mean: number; sd: number }) => `${f3(m.mean)} ± ${f3(m.sd)}`;
  const rows: [string, (r: SideResult) => string][] = [
    ['ε (max over hospitals; δ = 1/(10·N))', (r) => (r.epsilon ? Math.max(...r.epsilon.map((e) => e.epsilon)).toFixed(2) : '∞ (no DP)')],
    ['GAN-Leaks AUC [95 % CI]', (r) => ci(r.membership.attacks.ganLeaks)],
    ['GAN-Leaks AUC, untrained control', (r) => (r.membership.control ? ci(r.membership.control.ganLeaks) : '–')],
    ['LOGAN AUC [95 % CI]', (r) => ci(r.membership.attacks.logan)],
    ['LOGAN AUC, untrained control', (r) => (r.membership.control ? ci(r.membership.control.logan) : '–')],
    ['members / held-out tiles audited', (r) => `${r.membership.members.tiles} / ${r.membership.nonMembers.tiles}`],
    ['FID', (r) => r.fid.toFixed(2)],
    ['KID', (r) => `${r.kid.mean.toExponential(2)} ± ${r.kid.std.toExponential(1)}`],
    ['classifier, real + synthetic: balanced accuracy', (r) => pm(r.classification.realPlusSynthetic.balancedAccuracy)],
    ['classifier, real + synthetic: AUROC', (r) => pm(r.classification.realPlusSynthetic.auroc)],
    ['classifier, synthetic only: AUROC', (r) => pm(r.classification.syntheticOnly.auroc)],
    ['classifier, real only: AUROC (reference)', (r) => pm(r.classification.realOnly.auroc)],
    ['training time (s)', (r) => r.trainSeconds.toFixed(0)],
  ];
  const head = `| | ${results.map((r) => (r.side === 'dp' ? `with DP${r.noiseMultiplier !== undefined ? ` (σ ${r.noiseMultiplier})` : ''}` : 'without DP')).join(' | ')} |\n| --- | ${results.map(() => '---').join(' | ')} |`;
  return [head, ...rows.map(([k, f]) => `| ${k} | ${results.map(f).join(' | ')} |`)].join('\n');
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const args = parsePrivacyAuditArgs(argv);
  if (args === 'help') {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const log = (l: string) => process.stderr.write(l + '\n');
  const backend = await initNodeBackend();
  const sim = args.simulate;
  const model = sim.model;
  const trainDir = join(args.data, 'train');
  // The evaluator's own subset rule and seed, so its training tiles are exactly the tiles trained on.
  const members = readRealTiles(trainDir, { classes: model.classes, size: model.imageSize, flag: '--data', role: 'training set', maxPerClass: args.membersPerClass, seed: DEFAULT_OPTIONS.seed });
  const tiles: FolderTile[] = members.tiles.map((t) => ({ pixels: t.pixels, label: t.label, file: t.file, className: t.className, patient: t.patient, site: t.site }));
  log(`backend ${backend.backend}; ${tiles.length} member tiles (${args.membersPerClass} per class of ${trainDir}); ${sim.clients} hospitals × ${sim.rounds} rounds × ${sim.localSteps} steps, ${model.gan} ${model.imageSize} px`);
  const out = resolve(args.out);
  mkdirSync(out, { recursive: true });
  const results: SideResult[] = [];
  for (const side of SIDES) {
    if (args.only && args.only !== side) continue;
    const dir = join(out, side);
    const fed = side === 'dp' ? dpFedSettings(args.dp) : undefined;
    const opts = { ...sim, out: dir, quality: undefined, ...(fed ? { fed } : {}) };
    if (fed) {
      // Refuse to call a run "DP" unless the federation config carries the DP settings.
      const parsed = simulationFedConfig(opts, sim.clients) as unknown as { privacy?: { dp?: unknown } };
      if (!parsed.privacy?.dp) throw new CliError('this build\'s federation config has no privacy.dp section: DP training is not available here, so there is no DP side to audit');
    }
    log(`${side}: training`);
    const t0 = performance.now();
    const summary = await runSimulation(tiles, opts);
    const trainSeconds = (performance.now() - t0) / 1000;
    log(`${side}: trained in ${trainSeconds.toFixed(0)} s; evaluating`);
    const epsilon = fed ? hospitalEpsilons(summary, model, args.dp, sim.localSteps) : null;
    const worst = epsilon?.reduce((a, b) => (b.epsilon > a.epsilon ? b : a));
    const { report, details } = await evaluate({
      ...DEFAULT_OPTIONS,
      checkpoint: summary.checkpoint,
      realTrain: trainDir,
      realTest: join(args.data, 'test'),
      maxRealPerClass: args.membersPerClass,
      perClass: args.syntheticPerClass,
      out: join(dir, 'report'),
      features: args.features,
      epochs: args.epochs,
      seeds: args.seeds,
      linearProbe: false,
      classifierWorkers: 1,
      featureWorkers: 1,
      ...(worst ? { privacy: { epsilon: worst.epsilon, delta: worst.delta, source: `npm run privacy-audit: the RDP accountant over ${worst.hospital}'s ${worst.rounds} rounds, the largest ε of the ${epsilon!.length} hospitals` } } : {}),
      log: (l) => log(`  ${l}`),
    });
    checkMembers(details, members.tiles.map((t) => t.file));
    const result: SideResult = {
      side,
      ...(fed ? { noiseMultiplier: args.dp.noiseMultiplier } : {}),
      trainSeconds,
      epsilon,
      fid: report.fid,
      kid: report.kid,
      classification: report.classification,
      membership: report.membership,
      report: join(dir, 'report', 'report.html'),
    };
    writeFileSync(join(dir, 'result.json'), JSON.stringify(result, null, 2) + '\n');
    results.push(result);
  }
  const machine = `${backend.backend} backend, ${process.platform} ${process.arch}, Node ${process.version}`;
  const setup = {
    machine,
    data: resolve(args.data),
    membersPerClass: args.membersPerClass,
    clients: sim.clients,
    rounds: sim.rounds,
    localSteps: sim.localSteps,
    partition: sim.partition,
    model: { gan: model.gan, imageSize: model.imageSize, batchSize: model.batchSize, discriminator: model.discriminator.type, generatorChannels: model.generator.baseChannels, discriminatorChannels: model.discriminator.baseChannels, seed: model.seed },
    dp: args.dp,
    report: { features: args.features, syntheticPerClass: args.syntheticPerClass, epochs: args.epochs, seeds: args.seeds },
  };
  writeFileSync(join(out, 'privacy-audit.json'), JSON.stringify({ setup, results }, null, 2) + '\n');
  const md = `${sideBySideTable(results)}\n\nSetup: ${JSON.stringify(setup)}\n`;
  writeFileSync(join(out, 'privacy-audit.md'), md);
  process.stdout.write(md);
}

/** The report's members must be exactly the tiles trained on. */
function checkMembers(details: ReportDetails, trained: readonly string[]): void {
  const audited = new Set(details.membershipScores.filter((r) => r.member).map((r) => r.file));
  const missing = trained.filter((f) => !audited.has(f));
  // Training tiles of sites without held-out tiles are left out of the audit (and counted); none may be extra.
  const extra = [...audited].filter((f) => !trained.includes(f));
  if (extra.length) throw new Error(`the report audited ${extra.length} training tiles that were not trained on (e.g. ${extra[0]}): the subsets differ`);
  if (missing.length === trained.length) throw new Error('the report audited none of the tiles trained on');
}

if (import.meta.url === `file://${process.argv[1]}`) void runCli(() => main());
