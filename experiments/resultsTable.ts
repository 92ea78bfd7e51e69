import type { DiscriminatorType, GanType } from '../shared/config/ganConfig.ts';
import type { ComparisonResult, PairResult } from './comparison.ts';

/** How a comparison was run, for the table's caption. */
export interface RunDescription {
  preset: string;
  hardware: string;
  backend: string;
  command: string;
  date: string;
  commit?: string;
  totalSeconds: number;
  /** CPU time of the whole run (all threads). */
  totalCpuSeconds?: number;
  settings: { imageSize: number; clients: number; rounds: number; localSteps: number; batchSize: number; perClass: number; seed: number };
  /** Set while the comparison is still running. */
  inProgress?: boolean;
}

const GAN_LABEL: Record<GanType, string> = { acgan: 'ACGAN', cgan: 'CGAN', 'wgan-gp': 'WGAN-GP' };
const D_LABEL: Record<DiscriminatorType, string> = { cnn: 'CNN', resnet: 'ResNet', vit: 'ViT', swin: 'Swin' };

function cell(p: PairResult | undefined, value: (p: PairResult) => string): string {
  if (!p) return '–';
  if (p.status === 'failed') return 'failed';
  return value(p);
}

/** Best value per row (the lowest, or the highest with `higherIsBetter`) in bold, as the paper marks it; ties share it. */
function grid(
  result: ComparisonResult,
  gans: GanType[],
  ds: DiscriminatorType[],
  metric: (p: PairResult) => number | undefined,
  fmt: (p: PairResult) => string,
  higherIsBetter = false,
): string[] {
  const lines = [`| GAN \\ discriminator | ${ds.map((d) => D_LABEL[d]).join(' | ')} |`, `|---|${ds.map(() => '---:').join('|')}|`];
  for (const g of gans) {
    const row = ds.map((d) => result.pairs.find((p) => p.gan === g && p.discriminator === d));
    const values = row.map((p) => (p && p.status === 'ok' ? metric(p) : undefined)).filter((v): v is number => v !== undefined);
    // No bold when there is nothing to choose between (one value, or all equal).
    const best = new Set(values).size > 1 ? (higherIsBetter ? Math.max(...values) : Math.min(...values)) : undefined;
    const cells = row.map((p) => cell(p, (q) => (metric(q) === undefined ? '–' : metric(q) === best ? `**${fmt(q)}**` : fmt(q))));
    lines.push(`| ${GAN_LABEL[g]} | ${cells.join(' | ')} |`);
  }
  return lines;
}

/** One section of docs/results.md: Table 2's shape (FID per GAN type × discriminator), then KID and the runs. */
export function renderComparison(result: ComparisonResult, run: RunDescription): string {
  const gans = [...new Set(result.pairs.map((p) => p.gan))];
  const ds = [...new Set(result.pairs.map((p) => p.discriminator))];
  const s = run.settings;
  const out: string[] = [];
  out.push(`## Preset \`${run.preset}\`: ${s.imageSize} px on ${run.hardware}${run.inProgress ? ' (in progress)' : ''}`);
  out.push('');
  out.push(
    `${run.date}${run.commit ? `, commit ${run.commit}` : ''}; \`${run.command}\`; tfjs backend **${run.backend}**; ` +
      `${(run.totalSeconds / 60).toFixed(1)} min in all${run.totalCpuSeconds !== undefined ? ` (${(run.totalCpuSeconds / 60).toFixed(1)} CPU-min)` : ''}. Each pair: ${s.clients} hospitals (IID split of ${result.trainTiles} training tiles), ` +
      `${s.rounds} FedAvg round${s.rounds === 1 ? '' : 's'} × ${s.localSteps} local step${s.localSteps === 1 ? '' : 's'}, batch ${s.batchSize}, seed ${s.seed}.`,
  );
  out.push('');
  out.push(
    `**FID ↓** — ${result.features.description}; ${s.perClass} synthetic tiles per class against ${result.referenceTiles} real training tiles. ` +
      `Real test tiles (${result.testTiles}) against the same reference score **${result.floor.fid.toFixed(2)}**: the floor at this sample size.`,
  );
  out.push('');
  out.push(...grid(result, gans, ds, (p) => p.fid, (p) => p.fid!.toFixed(2)));
  out.push('');
  out.push(`**KID × 10³ ↓** (mean ± sd over subsets); floor ${(result.floor.kid.mean * 1e3).toFixed(2)} ± ${(result.floor.kid.std * 1e3).toFixed(2)}.`);
  out.push('');
  out.push(...grid(result, gans, ds, (p) => p.kid?.mean, (p) => `${(p.kid!.mean * 1e3).toFixed(2)} ± ${(p.kid!.std * 1e3).toFixed(2)}`));
  const verdict = noiseVerdict(result, gans);
  if (verdict) {
    out.push('');
    out.push(verdict);
  }
  out.push(...classifierTables(result, gans, ds, s.perClass));
  out.push('');
  out.push('Runs:');
  out.push('');
  out.push('| GAN | discriminator | D params | G params | last D loss | last G loss | train s (CPU s) | score s (CPU s) |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const p of result.pairs) {
    const f = (v: number | undefined, d = 3) => (v === undefined ? '–' : v.toFixed(d));
    out.push(
      `| ${GAN_LABEL[p.gan]} | ${D_LABEL[p.discriminator]} | ${p.dParams ? p.dParams.toLocaleString('en-US') : '–'} | ${p.gParams ? p.gParams.toLocaleString('en-US') : '–'} | ` +
        `${f(p.dLoss)} | ${f(p.gLoss)} | ${p.trainSeconds.toFixed(0)} (${p.trainCpuSeconds.toFixed(0)}) | ${p.evalSeconds.toFixed(0)} (${p.evalCpuSeconds.toFixed(0)}) |` +
        (p.status === 'failed' ? ` failed: ${p.error?.replace(/\|/g, '/')}` : ''),
    );
  }
  return out.join('\n') + '\n';
}

const meanSd = (m: { mean: number; sd: number }) => `${m.mean.toFixed(3)} ± ${m.sd.toFixed(3)}`;

/** The downstream-classification tables (F1 of the positive class, higher is better), or nothing when it was skipped. */
function classifierTables(result: ComparisonResult, gans: GanType[], ds: DiscriminatorType[], perClass: number): string[] {
  const c = result.classifier;
  if (!c) return [];
  const net = c.features.name === 'mobilenet-v2' ? 'MobileNetV2' : c.features.name;
  const seeds = `mean ± sd over ${c.seeds.length} seed${c.seeds.length === 1 ? '' : 's'}`;
  const base = c.realOnly.f1;
  const out: string[] = [''];
  out.push(
    `**F1 (${c.positiveClass}) ↑ of a linear head on ${net} features, trained on real + synthetic** (${seeds}; ${c.features.description}): ` +
      `${c.realTrainTiles} real training tiles (the GANs' own) + ${perClass} synthetic tiles per class of the pair, scored on ${c.testTiles} real test tiles. ` +
      `Trained on the real tiles only, the same head scores **${meanSd(base)}**: the baseline. ` +
      `A head that calls every tile ${c.positiveClass} would score ${((2 * c.testPositiveTiles) / (c.testPositiveTiles + c.testTiles)).toFixed(3)} ` +
      `(F1 rewards that; pairs' AUROC and balanced accuracy are in their metrics.json).`,
  );
  out.push('');
  out.push(...grid(result, gans, ds, (p) => p.classification?.realPlusSynthetic.f1.mean, (p) => meanSd(p.classification!.realPlusSynthetic.f1), true));
  const scored = result.pairs.filter((p) => p.status === 'ok' && p.classification);
  if (scored.length) {
    const above = scored.filter((p) => p.classification!.realPlusSynthetic.f1.mean - base.mean > Math.max(base.sd, p.classification!.realPlusSynthetic.f1.sd)).length;
    const below = scored.filter((p) => base.mean - p.classification!.realPlusSynthetic.f1.mean > Math.max(base.sd, p.classification!.realPlusSynthetic.f1.sd)).length;
    out.push('');
    out.push(
      `_Against the real-only baseline (by more than the larger of the two seed sd's): ${above} of ${scored.length} pairs better, ${below} worse, the rest within seed noise._`,
    );
  }
  out.push('');
  out.push(`**F1 (${c.positiveClass}) ↑, trained on synthetic only** (${perClass} tiles per class of the pair; same head, seeds and test tiles).`);
  out.push('');
  out.push(...grid(result, gans, ds, (p) => p.classification?.syntheticOnly.f1.mean, (p) => meanSd(p.classification!.syntheticOnly.f1), true));
  return out;
}

/**
 * Whether the differences between discriminators are larger than KID's own spread over subsets: when no
 * row's range of KID means exceeds its mean standard deviation, the table cannot rank the discriminators.
 */
export function noiseVerdict(result: ComparisonResult, gans: GanType[]): string | undefined {
  const rows = gans.map((g) => result.pairs.filter((p) => p.gan === g && p.status === 'ok' && p.kid));
  const ranked = rows.filter((r) => r.length > 1);
  if (ranked.length === 0) return undefined;
  const separated = ranked.filter((r) => {
    const means = r.map((p) => p.kid!.mean);
    const sd = r.reduce((a, p) => a + p.kid!.std, 0) / r.length;
    return Math.max(...means) - Math.min(...means) > sd;
  });
  if (separated.length === 0) {
    return '_Within every GAN type the discriminators differ by less than KID’s standard deviation over subsets: at this training budget the table does not rank them (the bold marks are noise)._';
  }
  return `_In ${separated.length} of ${ranked.length} GAN types the range of KID across discriminators exceeds KID’s standard deviation over subsets._`;
}

const marker = (preset: string) => [`<!-- compare:${preset} -->`, `<!-- /compare:${preset} -->`] as const;

export const RESULTS_HEADER = `# Results: GAN type × discriminator

Written by \`npm run compare\` (experiments/compare.ts): every GAN type × discriminator pair trained the same way
by the federated simulation, each generator then scored by FID and KID against real training tiles and by
downstream classification (the F1, MSIH positive, on the real test tiles of a linear head on MobileNetV2
features trained on real + the pair's synthetic tiles, and on its synthetic tiles only, next to the same
head trained on real tiles only): the shape of the paper's Table 2. Each preset keeps its own section; a new
run of a preset replaces it. FID and KID: lower is better; F1: higher is better; the best discriminator per
GAN type is in bold. Numbers compare only within one section: the feature networks, sample sizes and
training budget all differ from the paper's.

Run a preset (docs/discriminators.md has the details):

- \`npm run compare -- --preset small\`: pipeline check, 48 training steps per pair (~10–11 min on an idle 2-core CPU);
- \`npm run compare -- --preset medium\`: 140 steps per pair, 100 synthetic tiles per class (~28–33 min on an idle 2-core CPU);
- \`DAWN_NODE=… npm run compare -- --preset full --hardware "NVIDIA H100"\`: the 64 px models, on a GPU.

\`--no-f1\` skips the classification (its MobileNetV2 features cost ~0.1 CPU-s per tile).
`;

/** Replace (or append) the section of `preset` in an existing results document. */
export function upsertSection(doc: string | undefined, preset: string, section: string): string {
  const [open, close] = marker(preset);
  const block = `${open}\n${section}${close}\n`;
  const base = doc && doc.trim() ? doc : RESULTS_HEADER;
  const start = base.indexOf(open);
  const end = base.indexOf(close);
  if (start >= 0 && end > start) return base.slice(0, start) + block + base.slice(end + close.length + 1);
  return base.replace(/\n*$/, '\n\n') + block;
}
