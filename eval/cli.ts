import { parseArgs } from 'node:util';
import { CliError, runCli } from '../node/cliError.ts';
import { FEATURE_ENGINES, isFeatureEngine, type FeatureEngine } from './features/nodeExtractor.ts';
import { DEFAULT_OPTIONS, evaluate, type EvaluateOptions, type FeatureChoice } from './evaluate.ts';
import { parsePartitionSpec, type PartitionSpec } from '../shared/fed/partition.ts';
import type { HospitalResult, RegimeResult } from './downstream.ts';
import type { QualityReport } from './report/types.ts';

export const USAGE = `Usage: npm run evaluate -- --checkpoint FILE --real-train DIR --real-test DIR --per-class N --out DIR [options]

Writes a quality report for a GAN checkpoint: FID and KID, whether synthetic tiles help a classifier,
memorization and mode-collapse checks, and a t-SNE plot (report.json, report-details.json, report.html).

  --checkpoint FILE      a checkpoint: the checkpoint.fgw written by npm run simulate (in process or --server), or a
                         server checkpoint (STATE_DIR/checkpoints/round-NNNNNN.fgw). Under FedBN (batchNorm local)
                         the generator's batch-norm statistics are recalibrated data-free before generating
  --fed-config FILE      the server's FED_CONFIG file, needed only for version-1 server checkpoints (written before
                         checkpoints recorded the GAN config): their model and batch-norm policy are taken from it
  --real-train DIR       the real tiles the GAN was trained on, <label>/<tile>.jpg|png (the membership audit's members)
  --real-test DIR        real tiles it never saw, same layout (manifest.csv in DIR or its parent gives patients and
                         sites; the membership audit compares training and test tiles of the sites both have)
  --per-class N          synthetic tiles to generate per class
  --out DIR              where the report is written
  --features F           inception (InceptionV3 from nsfwjs, default) | tiny (random projection, for tests)
  --feature-engine E     what runs InceptionV3 and MobileNetV2: onnx (ONNX Runtime's native CPU kernels, ~4× faster),
                         wasm (tfjs wasm in worker threads) or auto (onnx when it loads here, else wasm; default)
  --feature-workers N    threads for the feature network: ONNX Runtime threads, or wasm worker threads (default ${DEFAULT_OPTIONS.featureWorkers})
  --classifier-size S    classifier input size in px (default: the generator's size, at most 64)
  --classifier-channels C  (default ${DEFAULT_OPTIONS.classifierChannels})
  --classifier-workers N worker threads for the 3 regimes × seeds classifier trainings on wasm (default ${DEFAULT_OPTIONS.classifierWorkers})
  --epochs E             classifier epochs (default ${DEFAULT_OPTIONS.epochs})
  --batch-size B         classifier batch size (default ${DEFAULT_OPTIONS.batchSize})
  --learning-rate LR     classifier Adam learning rate (default ${DEFAULT_OPTIONS.learningRate})
  --seeds LIST           classifier seeds, comma-separated, at least 3 for mean ± sd (default ${DEFAULT_OPTIONS.seeds.join(',')})
  --partition P          also ask, for each hospital of the federation, whether the synthetic tiles help a classifier
                         trained on its own tiles: --real-train is split as npm run simulate splits it (iid | noniid:<r> |
                         site[:<max>], with --clients and --partition-seed as simulate's --clients and --seed); each
                         hospital's CNN is trained on its own tiles, then on them + the synthetic tiles (2 × seeds more
                         trainings per hospital). Off by default. With --max-real-per-class the split is of that subset,
                         so an iid or noniid split no longer matches the simulation's (a site split still does)
  --clients N            hospitals in that split (default 4, as simulate's)
  --partition-seed N     the simulation's --seed (default 42): iid and noniid splits depend on it, site splits do not
  --no-linear-probe      skip the second classifier: a linear head on pretrained MobileNetV2 features (nsfwjs;
                         on by default, ~0.1 CPU-s per tile)
  --feature-cache DIR    where real tiles' InceptionV3/MobileNetV2 features are cached between reports, keyed by
                         the tile's bytes (default ${DEFAULT_OPTIONS.featureCache ?? 'none'})
  --no-feature-cache     compute every feature afresh
  --positive CLASS       positive class for F1/AUROC (default MSIH)
  --max-real-per-class N use at most N real tiles per class from each folder (seeded subset), for quick runs
  --kid-subsets N        (default ${DEFAULT_OPTIONS.kidSubsets})
  --tsne-per-group N     t-SNE points per class and source (default ${DEFAULT_OPTIONS.tsnePerGroup})
  --tsne-iterations N    (default ${DEFAULT_OPTIONS.tsneIterations})
  --epsilon E            the ε the checkpoint's training spent (the largest over the hospitals, e.g. from the operator's
                         /api/status or console), shown in the report next to the membership audit; the checkpoint
                         does not record it
  --delta D              its δ
  --membership-bootstrap N  bootstrap resamples of the membership audit's AUC intervals (default ${DEFAULT_OPTIONS.membershipBootstrap})
  --seed N               generation and sampling seed (default ${DEFAULT_OPTIONS.seed})`;

function featureEngine(value: string | undefined): FeatureEngine {
  if (value === undefined) return DEFAULT_OPTIONS.featureEngine;
  if (!isFeatureEngine(value)) throw new CliError(`--feature-engine must be one of ${FEATURE_ENGINES.join(', ')}, got "${value}"`);
  return value;
}

const OPTIONS = {
  checkpoint: { type: 'string' },
  'fed-config': { type: 'string' },
  'real-train': { type: 'string' },
  'real-test': { type: 'string' },
  'per-class': { type: 'string' },
  out: { type: 'string' },
  features: { type: 'string' },
  'feature-engine': { type: 'string' },
  'feature-workers': { type: 'string' },
  'classifier-size': { type: 'string' },
  'classifier-channels': { type: 'string' },
  'classifier-workers': { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  'learning-rate': { type: 'string' },
  seeds: { type: 'string' },
  'linear-probe': { type: 'boolean' },
  partition: { type: 'string' },
  clients: { type: 'string' },
  'partition-seed': { type: 'string' },
  'no-linear-probe': { type: 'boolean' },
  epsilon: { type: 'string' },
  delta: { type: 'string' },
  positive: { type: 'string' },
  'feature-cache': { type: 'string' },
  'no-feature-cache': { type: 'boolean' },
  'max-real-per-class': { type: 'string' },
  'kid-subsets': { type: 'string' },
  'tsne-per-group': { type: 'string' },
  'tsne-iterations': { type: 'string' },
  'membership-bootstrap': { type: 'string' },
  seed: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function int(flag: string, v: string | undefined, min: number, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new CliError(`--${flag} must be an integer ≥ ${min}, got "${v}"`);
  return n;
}

function privacyOf(epsilon: string | undefined, delta: string | undefined): { privacy?: { epsilon: number; delta: number | null; source: string } } {
  if (epsilon === undefined) {
    if (delta !== undefined) throw new CliError('--delta needs --epsilon');
    return {};
  }
  const e = Number(epsilon);
  if (!(e >= 0) || !Number.isFinite(e)) throw new CliError(`--epsilon must be a number ≥ 0, got "${epsilon}"`);
  const d = delta === undefined ? null : Number(delta);
  if (d !== null && !(d > 0 && d < 1)) throw new CliError(`--delta must be in (0, 1), got "${delta}"`);
  return { privacy: { epsilon: e, delta: d, source: 'given with --epsilon' } };
}

function hospitalsOf(partition: string | undefined, clients: string | undefined, seed: string | undefined): { hospitals?: EvaluateOptions['hospitals'] } {
  if (partition === undefined) {
    const stray = [clients !== undefined && '--clients', seed !== undefined && '--partition-seed'].filter(Boolean);
    if (stray.length) throw new CliError(`${stray.join(' and ')} need${stray.length === 1 ? 's' : ''} --partition (the federation's split of --real-train into hospitals)`);
    return {};
  }
  let spec: PartitionSpec;
  try {
    spec = parsePartitionSpec(partition);
  } catch (e) {
    throw new CliError(`--partition: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { hospitals: { partition: spec, clients: int('clients', clients, 1, 4), seed: int('partition-seed', seed, 0, 42) } };
}

export function parseEvaluateArgs(argv: string[]): EvaluateOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
  } catch (e) {
    throw new CliError(`${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const missing = (['checkpoint', 'real-train', 'real-test', 'per-class', 'out'] as const).filter((k) => v[k] === undefined);
  if (missing.length) throw new CliError(`missing ${missing.map((m) => `--${m}`).join(', ')}\n\n${USAGE}`);
  const features = (v.features ?? DEFAULT_OPTIONS.features) as FeatureChoice;
  if (features !== 'inception' && features !== 'tiny') throw new CliError(`--features must be inception or tiny, got "${v.features}"`);
  const seeds = v.seeds === undefined ? DEFAULT_OPTIONS.seeds : v.seeds.split(',').map((s) => int('seeds', s.trim(), 0, 0));
  if (new Set(seeds).size !== seeds.length) throw new CliError(`--seeds has repeated seeds: ${v.seeds}`);
  if (seeds.length < 3) throw new CliError(`--seeds needs at least 3 seeds for a mean ± sd, got ${seeds.length} (${v.seeds})`);
  const lr = v['learning-rate'] === undefined ? DEFAULT_OPTIONS.learningRate : Number(v['learning-rate']);
  if (!(lr > 0 && lr < 1)) throw new CliError(`--learning-rate must be in (0, 1), got "${v['learning-rate']}"`);
  const clfSize = v['classifier-size'] === undefined ? undefined : int('classifier-size', v['classifier-size'], 8, 0);
  return {
    ...DEFAULT_OPTIONS,
    checkpoint: v.checkpoint!,
    fedConfig: v['fed-config'],
    realTrain: v['real-train']!,
    realTest: v['real-test']!,
    perClass: int('per-class', v['per-class'], 2, 0),
    out: v.out!,
    features,
    featureEngine: featureEngine(v['feature-engine']),
    featureWorkers: int('feature-workers', v['feature-workers'], 1, DEFAULT_OPTIONS.featureWorkers),
    classifierSize: clfSize,
    classifierChannels: int('classifier-channels', v['classifier-channels'], 1, DEFAULT_OPTIONS.classifierChannels),
    classifierWorkers: int('classifier-workers', v['classifier-workers'], 1, DEFAULT_OPTIONS.classifierWorkers),
    epochs: int('epochs', v.epochs, 1, DEFAULT_OPTIONS.epochs),
    batchSize: int('batch-size', v['batch-size'], 1, DEFAULT_OPTIONS.batchSize),
    learningRate: lr,
    seeds,
    linearProbe: v['no-linear-probe'] ? false : (v['linear-probe'] ?? DEFAULT_OPTIONS.linearProbe),
    ...hospitalsOf(v.partition, v.clients, v['partition-seed']),
    positive: v.positive,
    ...privacyOf(v.epsilon, v.delta),
    featureCache: v['no-feature-cache'] ? null : (v['feature-cache'] ?? DEFAULT_OPTIONS.featureCache),
    maxRealPerClass: v['max-real-per-class'] === undefined ? undefined : int('max-real-per-class', v['max-real-per-class'], 2, 0),
    kidSubsets: int('kid-subsets', v['kid-subsets'], 1, DEFAULT_OPTIONS.kidSubsets),
    tsnePerGroup: int('tsne-per-group', v['tsne-per-group'], 1, DEFAULT_OPTIONS.tsnePerGroup),
    tsneIterations: int('tsne-iterations', v['tsne-iterations'], 1, DEFAULT_OPTIONS.tsneIterations),
    membershipBootstrap: int('membership-bootstrap', v['membership-bootstrap'], 0, DEFAULT_OPTIONS.membershipBootstrap),
    seed: int('seed', v.seed, 0, DEFAULT_OPTIONS.seed),
  };
}

/** One line per hospital, and the mean over them: own tiles only vs own + synthetic. */
export function hospitalLines(report: QualityReport): string[] {
  const h = report.hospitals;
  if (!h) return [];
  const pm = (m: { mean: number; sd: number }) => `${m.mean.toFixed(3)} ± ${m.sd.toFixed(3)}`;
  const signed = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(3)}`;
  const row = (name: string, own: RegimeResult, plus: RegimeResult, gain: HospitalResult['gain']) =>
    `  ${name}: tile AUROC ${pm(own.auroc)} → ${pm(plus.auroc)} (${signed(gain.auroc!.figure)}${gain.auroc!.helps ? ', helps' : ''})` +
    (gain.patientAuroc ? `, patient AUROC ${pm(own.patientLevel!.auroc)} → ${pm(plus.patientLevel!.auroc)} (${signed(gain.patientAuroc.figure)}${gain.patientAuroc.helps ? ', helps' : ''})` : '');
  return [
    `per hospital (--partition ${h.partition}, ${h.hospitals.length} hospitals): own tiles only → own + synthetic`,
    ...h.hospitals.map((x) => row(`${x.name} (${x.tiles} tiles)`, x.ownOnly, x.ownPlusSynthetic, x.gain)),
    row('mean over hospitals', h.meanOverHospitals.ownOnly, h.meanOverHospitals.ownPlusSynthetic, h.meanOverHospitals.gain),
  ];
}

export async function main(argv: string[]): Promise<void> {
  const opts = parseEvaluateArgs(argv);
  if (opts === 'help') {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const t0 = performance.now();
  const { report, files } = await evaluate({ ...opts, log: (line) => process.stderr.write(line + '\n') });
  const c = report.classification;
  const pm = (m: { mean: number; sd: number }) => `${m.mean.toFixed(3)} ± ${m.sd.toFixed(3)}`;
  process.stdout.write(
    [
      `${report.config.features.fidLabel}: ${report.fid.toFixed(2)}`,
      `KID: ${report.kid.mean.toExponential(3)} ± ${report.kid.std.toExponential(2)}`,
      `real floor (${report.floor.n} real test vs ${report.floor.trainN} training tiles): FID ${report.floor.fid.toFixed(2)}, KID ${report.floor.kid.mean.toExponential(3)}; synthetic at the same size: FID ${report.floor.syntheticFid.toFixed(2)} (${report.floor.fidOverFloor === null ? 'no ratio' : `${report.floor.fidOverFloor.toFixed(2)}× the floor`}), KID ${report.floor.syntheticKid.mean.toExponential(3)}`,
      `class fidelity (real-only classifier, mean ${report.config.positiveClass} score, ${report.config.positiveClass} − others): synthetic ${pm(report.classFidelity.synthetic.difference)}${report.classFidelity.synthetic.carried ? ' (class carried)' : ' (not carried)'}, real test ${pm(report.classFidelity.realTest.difference)}`,
      ...(['realOnly', 'realPlusSynthetic', 'syntheticOnly'] as const).map(
        (r) => `${r}: accuracy ${pm(c[r].accuracy)}, F1 ${pm(c[r].f1)}, balanced accuracy ${pm(c[r].balancedAccuracy)}, AUROC ${pm(c[r].auroc)}${c[r].patientLevel ? ` | patient AUROC ${pm(c[r].patientLevel!.auroc)}` : ''}`,
      ),
      ...hospitalLines(report),
      `memorization: synthetic→train p5 ${report.memorization.syntheticToTrain.p5.toFixed(2)} median ${report.memorization.syntheticToTrain.median.toFixed(2)}; test→train p5 ${report.memorization.testToTrain.p5.toFixed(2)} median ${report.memorization.testToTrain.median.toFixed(2)}`,
      `membership audit (${report.membership.members.tiles} training vs ${report.membership.nonMembers.tiles} held-out tiles): ${[report.membership.attacks.ganLeaks, report.membership.attacks.logan].map((a) => `${a.name} AUC ${a.auc.toFixed(3)}${a.ci ? ` [${a.ci.low.toFixed(3)}, ${a.ci.high.toFixed(3)}]` : ''} (${a.level})`).join('; ')}${report.membership.control ? `; untrained control: GAN-Leaks ${report.membership.control.ganLeaks.auc.toFixed(3)}, LOGAN ${report.membership.control.logan.auc.toFixed(3)}` : ''}`,
      `diversity: ${Object.entries(report.diversity).map(([k, d]) => `${k} synthetic ${d.synthetic?.toFixed(2)} vs real ${d.real?.toFixed(2)}`).join('; ')}`,
      `goals met: ${report.goals.filter((g) => g.met).length} of ${report.goals.length}${report.goals.some((g) => !g.met) ? ` (not met: ${report.goals.filter((g) => !g.met).map((g) => g.id).join(', ')})` : ''}`,
      `wrote ${files.json}, ${files.html} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    ].join('\n') + '\n',
  );
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('eval/cli.ts')) {
  await runCli(() => main(process.argv.slice(2)));
}
