import { basename } from 'node:path';
import { REGIMES, type MetricSummary, type DownstreamResult } from '../downstream.ts';
import { escapeXml } from './tsnePlot.ts';
import type { QualityReport, ReportDetails } from './types.ts';

export interface ReportImages {
  /** data: URL of the sample grid (one row per class). */
  samples: string;
  /** The closest synthetic–train pairs, as data: URLs. */
  pairs: { synthetic: string; real: string; distance: number; syntheticClass: string; realFile: string }[];
  tsneSvg: string;
}

const REGIME_NAMES: Record<(typeof REGIMES)[number], string> = {
  realOnly: 'Real tiles only',
  realPlusSynthetic: 'Real + synthetic tiles',
  syntheticOnly: 'Synthetic tiles only',
};

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : String(v));
const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : String(v));
const pm = (m: { mean: number; sd: number }) => `${f3(m.mean)} ± ${f3(m.sd)}`;

function metricsTable(results: Record<string, MetricSummary | undefined>, caption: string): string {
  const rows = REGIMES.filter((r) => results[r])
    .map((r) => {
      const m = results[r]!;
      return `<tr><th scope="row">${REGIME_NAMES[r]}</th><td>${pm(m.accuracy)}</td><td>${pm(m.f1)}</td><td>${pm(m.balancedAccuracy)}</td><td>${pm(m.auroc)}</td></tr>`;
    })
    .join('');
  return `<table><caption>${caption}</caption><thead><tr><th>Classifier trained on</th><th>Accuracy</th><th>F1 (positive class)</th><th>Balanced accuracy</th><th>AUROC</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function downstreamTables(d: Pick<DownstreamResult, 'results'>, what: string, positive: string): string {
  const tile = metricsTable(d.results, `${what}, tile level (mean ± sd over seeds; positive class ${escapeXml(positive)})`);
  const hasPatients = REGIMES.every((r) => d.results[r].patientLevel);
  const patient = hasPatients
    ? metricsTable(Object.fromEntries(REGIMES.map((r) => [r, d.results[r].patientLevel])), `${what}, patient level (a patient's score is the mean of its tiles' scores)`)
    : '<p class="note">No patient-level results: the test folder has no manifest.csv naming a patient for every tile.</p>';
  return tile + patient;
}

function verdicts(r: QualityReport, details: ReportDetails): string[] {
  const out: string[] = [];
  const m = r.memorization;
  if (m.syntheticToTrain.p5 < 0.5 * m.testToTrain.p5) {
    out.push(`<li class="warn"><b>Possible memorization.</b> The closest 5 % of synthetic tiles lie within ${f2(m.syntheticToTrain.p5)} of a training tile, less than half the distance at which the closest 5 % of unseen real tiles lie (${f2(m.testToTrain.p5)}). Inspect the closest pairs below before exporting images.</li>`);
  } else {
    out.push(`<li class="ok"><b>No sign of memorization.</b> Synthetic tiles are not closer to the training tiles than unseen real tiles are (5th percentile of nearest-training-tile distance ${f2(m.syntheticToTrain.p5)} vs ${f2(m.testToTrain.p5)} for real test tiles).</li>`);
  }
  for (const [cls, d] of Object.entries(r.diversity)) {
    if (d.synthetic === null || d.real === null) continue;
    const ratio = d.synthetic / d.real;
    if (ratio < 0.8) out.push(`<li class="warn"><b>Possible mode collapse in ${escapeXml(cls)}.</b> Synthetic ${escapeXml(cls)} tiles vary less than real ones (mean pairwise feature distance ${f2(d.synthetic)} vs ${f2(d.real)}, ratio ${f2(ratio)}).</li>`);
    else out.push(`<li class="ok"><b>${escapeXml(cls)}: diverse.</b> Synthetic tiles vary about as much as real ones (ratio ${f2(ratio)}).</li>`);
  }
  const c = r.classification;
  const gain = c.realPlusSynthetic.balancedAccuracy.mean - c.realOnly.balancedAccuracy.mean;
  out.push(
    `<li>${gain > 0 ? '<b>Synthetic tiles helped</b>' : '<b>Synthetic tiles did not help</b>'} the small classifier: balanced accuracy ${f3(c.realPlusSynthetic.balancedAccuracy.mean)} with real + synthetic vs ${f3(c.realOnly.balancedAccuracy.mean)} with real tiles only (${gain >= 0 ? '+' : ''}${f3(gain)}; compare with the spread over seeds).</li>`,
  );
  if (details.linearProbe) {
    const p = details.linearProbe.results;
    const g = p.realPlusSynthetic.auroc.mean - p.realOnly.auroc.mean;
    out.push(
      `<li>With pretrained MobileNetV2 features and a linear head: AUROC ${f3(p.realPlusSynthetic.auroc.mean)} with real + synthetic vs ${f3(p.realOnly.auroc.mean)} with real tiles only (${g >= 0 ? '+' : ''}${f3(g)}), ${f3(p.syntheticOnly.auroc.mean)} with synthetic tiles only.</li>`,
    );
  }
  return out;
}

export function renderReportHtml(report: QualityReport, details: ReportDetails, images: ReportImages): string {
  const cfg = report.config;
  const pairs = images.pairs
    .map(
      (p, i) =>
        `<figure class="pair"><div><img src="${p.synthetic}" alt="synthetic tile ${i + 1}"><img src="${p.real}" alt="closest training tile ${i + 1}"></div><figcaption>#${i + 1} ${escapeXml(p.syntheticClass)} · distance ${f2(p.distance)}<br><span class="file">${escapeXml(basename(p.realFile))}</span></figcaption></figure>`,
    )
    .join('');
  const diversityRows = Object.entries(report.diversity)
    .map(([cls, d]) => `<tr><th scope="row">${escapeXml(cls)}</th><td>${d.synthetic === null ? '–' : f2(d.synthetic)}</td><td>${d.real === null ? '–' : f2(d.real)}</td><td>${d.synthetic !== null && d.real ? f2(d.synthetic / d.real) : '–'}</td></tr>`)
    .join('');
  const timings = Object.entries(details.timingsSeconds)
    .map(([k, v]) => `<tr><th scope="row">${escapeXml(k)}</th><td>${v.toFixed(1)} s</td></tr>`)
    .join('');
  const probe = details.linearProbe
    ? `<h3>Pretrained MobileNetV2 features + linear head</h3><p class="note">Features from nsfwjs's MobileNetV2 (computed once, no augmentation), logistic regression per seed.</p>${downstreamTables(details.linearProbe, 'MobileNetV2 + linear head', cfg.positiveClass)}`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Synthetic tile quality report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;max-width:1000px;margin:2em auto;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;width:100%}caption{text-align:left;font-weight:600;margin-bottom:.4em}
th,td{border:1px solid #ddd;padding:.35em .6em;text-align:right}th[scope=row],thead th:first-child{text-align:left}thead th{background:#f5f5f5}
.big{font-size:1.3em;font-weight:600}.note{color:#555;font-size:.92em}
.warn{color:#a00}.ok{color:#1b5e20}ul.verdicts li{margin:.4em 0}
img{image-rendering:pixelated}.samples img{width:100%;max-width:960px;border:1px solid #ccc}
.pairs{display:flex;flex-wrap:wrap;gap:12px}.pair{margin:0;text-align:center;font-size:.85em}.pair img{width:112px;height:112px;border:1px solid #ccc;margin:1px}
.file{color:#777;font-size:.85em}.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.8em 1em;flex:1;min-width:220px}
</style></head><body>
<h1>Synthetic tile quality report</h1>
<p class="note">Checkpoint <code>${escapeXml(cfg.checkpoint)}</code> (${escapeXml(String(cfg.gan.gan ?? ''))}, ${cfg.imageSize}×${cfg.imageSize} px${cfg.checkpointMeta.round !== undefined ? `, round ${escapeXml(String(cfg.checkpointMeta.round))}` : ''}) ·
${cfg.perClass} synthetic tiles per class · real training tiles ${cfg.realTrain.tiles} · real test tiles ${cfg.realTest.tiles} · ${escapeXml(cfg.createdAt)}</p>

<h2>At a glance</h2>
<ul class="verdicts">${verdicts(report, details).join('')}</ul>
<div class="cards">
<div class="card"><div>${escapeXml(cfg.features.fidLabel)}</div><div class="big">${f2(report.fid)}</div><div class="note">Lower is closer to the real training tiles. Compare only with other checkpoints evaluated by this tool.</div></div>
<div class="card"><div>KID (same features, unbiased; mean ± sd over ${report.config.kid.subsets} subsets of ${report.config.kid.subsetSize})</div><div class="big">${report.kid.mean.toExponential(3)} ± ${report.kid.std.toExponential(2)}</div><div class="note">≈ 0 when synthetic and real tiles are indistinguishable in feature space.</div></div>
</div>

<h2>Synthetic samples</h2>
<p class="note">One row per class (${cfg.classes.map(escapeXml).join(', ')}, top to bottom), generated from the checkpoint.</p>
<div class="samples"><img src="${images.samples}" alt="grid of synthetic tiles, one row per class"></div>

<h2>Does adding synthetic tiles help a classifier?</h2>
<p class="note">The same small CNN (trained from scratch, ${cfg.classifier.size}×${cfg.classifier.size} px, ${cfg.classifier.epochs} epochs, ${escapeXml(cfg.classifier.augmentation)}) is trained three ways and tested on the real test tiles; seeds ${cfg.classifier.seeds.join(', ')}.</p>
${downstreamTables({ results: report.classification }, 'Small CNN', cfg.positiveClass)}
${probe}

<h2>Memorization check</h2>
<p class="note">For every synthetic tile: the feature distance to its nearest real training tile. As a control, the same for every real test tile (tiles the generator never saw). Synthetic tiles much closer than the control suggest copies of training tiles.</p>
<table><thead><tr><th>Distance to the nearest training tile</th><th>5th percentile</th><th>Median</th></tr></thead><tbody>
<tr><th scope="row">Synthetic tiles</th><td>${f2(report.memorization.syntheticToTrain.p5)}</td><td>${f2(report.memorization.syntheticToTrain.median)}</td></tr>
<tr><th scope="row">Real test tiles (control)</th><td>${f2(report.memorization.testToTrain.p5)}</td><td>${f2(report.memorization.testToTrain.median)}</td></tr>
</tbody></table>
<p>The ${images.pairs.length} synthetic tiles closest to a training tile (left: synthetic, right: its nearest training tile):</p>
<div class="pairs">${pairs}</div>

<h2>Diversity (mode collapse)</h2>
<p class="note">Mean pairwise feature distance within each class. A ratio well below 1 means the synthetic tiles of that class look alike (mode collapse).</p>
<table><thead><tr><th>Class</th><th>Synthetic</th><th>Real (training)</th><th>Ratio</th></tr></thead><tbody>${diversityRows}</tbody></table>

<h2>Embedding (t-SNE)</h2>
<p class="note">Real training tiles and synthetic tiles in the same feature space, reduced to 2-D with t-SNE. Synthetic tiles (triangles) should mix with real tiles (dots) of their own class rather than form their own islands.</p>
${images.tsneSvg}

<h2>Settings</h2>
<table><tbody>
<tr><th scope="row">Features</th><td>${escapeXml(cfg.features.extractor)} (${cfg.features.dim}-d)</td></tr>
<tr><th scope="row">Real training tiles</th><td>${escapeXml(cfg.realTrain.dir)} · ${Object.entries(cfg.realTrain.perClass).map(([k, v]) => `${escapeXml(k)} ${v}`).join(', ')} · ${cfg.realTrain.sourceSize} px source${cfg.realTrain.patients !== null ? ` · ${cfg.realTrain.patients} patients` : ''}</td></tr>
<tr><th scope="row">Real test tiles</th><td>${escapeXml(cfg.realTest.dir)} · ${Object.entries(cfg.realTest.perClass).map(([k, v]) => `${escapeXml(k)} ${v}`).join(', ')} · ${cfg.realTest.sourceSize} px source${cfg.realTest.patients !== null ? ` · ${cfg.realTest.patients} patients` : ''}</td></tr>
<tr><th scope="row">FID terms</th><td>‖μ₁−μ₂‖² ${f2(details.fidParts.meanTerm)} · Tr Σ₁ ${f2(details.fidParts.traceCov1)} · Tr Σ₂ ${f2(details.fidParts.traceCov2)} · Tr √(Σ₁Σ₂) ${f2(details.fidParts.traceSqrtProduct)}</td></tr>
<tr><th scope="row">Backends</th><td>${Object.entries(details.backends).map(([k, v]) => `${escapeXml(k)}: ${escapeXml(v)}`).join(' · ')}</td></tr>
</tbody></table>
<table><caption>Time taken</caption><tbody>${timings}</tbody></table>
</body></html>
`;
}
