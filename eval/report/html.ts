import { basename } from 'node:path';
import { REGIMES, type MetricSummary, type DownstreamResult, type Gain, type HospitalResult, type RegimeResult } from '../downstream.ts';
import type { ClassFidelity } from '../classFidelity.ts';
import { DIVERSITY_MIN_RATIO, FID_FLOOR_FACTOR, type Goal, type GoalId } from './goals.ts';
import { escapeXml } from './tsnePlot.ts';
import type { HospitalSection, QualityReport, ReportDetails } from './types.ts';
import type { AttackResult } from '../membership.ts';

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
const signed = (v: number) => `${v >= 0 ? '+' : '−'}${f3(Math.abs(v))}`;
const pct = (v: number) => `${Math.round(v * 100)} %`;
const exp = (v: number) => (Number.isFinite(v) ? v.toExponential(2) : String(v));

/** "23 patients: MSIH 10, nonMSIH 13". */
function patientCount(cfg: QualityReport['config']['realTest']): string {
  if (cfg.patients === null) return 'no patients named';
  const per = cfg.patientsPerClass ? `: ${Object.entries(cfg.patientsPerClass).map(([k, v]) => `${escapeXml(k)} ${v}`).join(', ')}` : '';
  return `${cfg.patients} patients${per}`;
}

function metricsTable(results: Record<string, MetricSummary | undefined>, caption: string): string {
  const rows = REGIMES.filter((r) => results[r])
    .map((r) => {
      const m = results[r]!;
      return `<tr><th scope="row">${REGIME_NAMES[r]}</th><td>${pm(m.accuracy)}</td><td>${pm(m.f1)}</td><td>${pm(m.balancedAccuracy)}</td><td>${pm(m.auroc)}</td></tr>`;
    })
    .join('');
  return `<table><caption>${caption}</caption><thead><tr><th>Classifier trained on</th><th>Accuracy</th><th>F1 (positive class)</th><th>Balanced accuracy</th><th>AUROC</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function downstreamTables(d: Pick<DownstreamResult, 'results'>, what: string, cfg: QualityReport['config']): string {
  const seeds = cfg.classifier.seeds.length;
  const tile = metricsTable(d.results, `${what}, tile level, ${cfg.realTest.tiles} real test tiles (mean ± sd over ${seeds} seeds; positive class ${escapeXml(cfg.positiveClass)})`);
  const hasPatients = REGIMES.every((r) => d.results[r].patientLevel);
  const patient = hasPatients
    ? metricsTable(
        Object.fromEntries(REGIMES.map((r) => [r, d.results[r].patientLevel])),
        `${what}, patient level, ${patientCount(cfg.realTest)} (a patient's score is the mean of its tiles' scores; mean ± sd over ${seeds} seeds)`,
      )
    : '<p class="note">No patient-level results: the test folder has no manifest.csv naming a patient for every tile.</p>';
  return tile + patient;
}

/** Own tiles only → own + synthetic, per hospital and over the hospitals: tile AUROC, balanced accuracy, patient AUROC. */
function hospitalTable(h: HospitalSection, cfg: QualityReport['config']): string {
  const seeds = cfg.classifier.seeds.length;
  const cell = (own: { mean: number; sd: number }, plus: { mean: number; sd: number }, gain: Gain | undefined) =>
    gain ? `<td>${pm(own)}</td><td>${pm(plus)}</td><td class="${gain.helps ? 'ok' : gain.figure < -gain.threshold ? 'warn' : ''}">${signed(gain.figure)}${gain.helps ? ' (helps)' : ''}</td>` : '<td>–</td><td>–</td><td>–</td>';
  const row = (label: string, own: RegimeResult, plus: RegimeResult, gain: HospitalResult['gain']) =>
    `<tr><th scope="row">${label}</th>${cell(own.auroc, plus.auroc, gain.auroc)}${cell(own.balancedAccuracy, plus.balancedAccuracy, gain.balancedAccuracy)}${own.patientLevel && plus.patientLevel ? cell(own.patientLevel.auroc, plus.patientLevel.auroc, gain.patientAuroc) : '<td>–</td><td>–</td><td>–</td>'}</tr>`;
  const rows = h.hospitals
    .map((x) => row(`${escapeXml(x.name)}<br><span class="file">${x.tiles} tiles: ${Object.entries(x.perClass).map(([k, v]) => `${escapeXml(k)} ${v}`).join(', ')}</span>`, x.ownOnly, x.ownPlusSynthetic, x.gain))
    .join('');
  const mean = row('<b>Mean over the hospitals</b>', h.meanOverHospitals.ownOnly, h.meanOverHospitals.ownPlusSynthetic, h.meanOverHospitals.gain);
  const head = ['Tile AUROC', 'Balanced accuracy', `Patient AUROC (${patientCount(cfg.realTest)})`].map((m) => `<th colspan="3">${m}</th>`).join('');
  const sub = '<th>own</th><th>own + synthetic</th><th>gain</th>'.repeat(3);
  return `<table class="hospitals"><caption>Each hospital's classifier, own tiles only and own + all ${cfg.perClass * cfg.classes.length} synthetic tiles, on the ${cfg.realTest.tiles} real test tiles (mean ± sd over ${seeds} seeds; "helps": the gain exceeds one seed sd)</caption><thead><tr><th rowspan="2">Hospital</th>${head}</tr><tr>${sub}</tr></thead><tbody>${rows}${mean}</tbody></table>`;
}

function membershipSection(m: QualityReport['membership'], privacy: QualityReport['config']['privacy']): string {
  const ci = (a: AttackResult) => (a.ci ? `${f3(a.ci.low)} – ${f3(a.ci.high)}` : '–');
  const verdict: Record<AttackResult['level'], string> = { 'none-detected': '<span class="ok">no detectable leakage</span>', weak: '<span class="warn">weak leakage</span>', clear: '<span class="warn">clear leakage</span>' };
  const rows = (['ganLeaks', 'logan'] as const)
    .map((k) => {
      const a = m.attacks[k];
      const c = m.control?.[k];
      return `<tr><th scope="row">${escapeXml(a.name)}</th><td>${f3(a.auc)}</td><td>${ci(a)}</td><td>${verdict[a.level]}</td><td>${c ? `${f3(c.auc)} (${ci(c)})` : '–'}</td></tr>`;
    })
    .join('');
  const level = m.attacks.ganLeaks.ci ? Math.round(m.attacks.ganLeaks.ci.level * 100) : 95;
  const perClass = (p: Record<string, number>) => Object.entries(p).map(([k, v]) => `${escapeXml(k)} ${v}`).join(', ');
  const sites = m.sites
    ? `Only hospitals (sites) with both training and held-out tiles are compared: ${m.sites.map((s) => `${escapeXml(s.site)} (${s.members} training, ${s.nonMembers} held out)`).join(', ')}.${m.leftOut.members + m.leftOut.nonMembers > 0 ? ` Left out: ${m.leftOut.members} training and ${m.leftOut.nonMembers} held-out tiles of other sites.` : ''}`
    : 'The manifests name no hospital site for every tile, so all training and held-out tiles are compared.';
  const dp = privacy
    ? `<p>Differential privacy: ε = <b>${privacy.epsilon.toFixed(2)}</b>${privacy.delta !== null ? ` at δ = ${privacy.delta.toExponential(1)}` : ''} (${escapeXml(privacy.source)}).</p>`
    : '<p class="note">No ε was given for this checkpoint (--epsilon): trained without differential privacy, or not stated.</p>';
  return `${dp}<p class="note">Can an attacker tell which tiles the model was trained on? Members: ${m.members.tiles} training tiles (${perClass(m.members.perClass)}); non-members: ${m.nonMembers.tiles} held-out tiles of the same hospitals (${perClass(m.nonMembers.perClass)}). ${sites}
GAN-Leaks (Chen et al. 2020, black box) scores a tile by its distance to the nearest of ${m.generatedTiles} generated tiles of its class (features: ${escapeXml(m.featureSpace)}); LOGAN (Hayes et al. 2019) by the discriminator's output on it. Which tiles were members, with both scores: report-details.json, <code>membershipScores</code>.</p>
<table><thead><tr><th>Attack</th><th>AUC</th><th>${level} % interval (bootstrap over ${m.attacks.ganLeaks.ci?.unit === 'patient' ? 'patients' : 'tiles'})</th><th>Reading</th><th>Untrained model (control): AUC (interval)</th></tr></thead><tbody>${rows}</tbody></table>
<p class="note">${escapeXml(m.interpretation)}</p>`;
}

function goalById(r: QualityReport, id: GoalId): Goal {
  const g = r.goals.find((x) => x.id === id);
  if (!g) throw new Error(`report has no goal "${id}"`);
  return g;
}

function goalsTable(goals: readonly Goal[]): string {
  const fig = (v: number | null) => (v === null ? '–' : f3(v));
  const rows = goals
    .map(
      (g) =>
        `<tr class="${g.met ? 'goal-met' : 'goal-unmet'}"><th scope="row">${escapeXml(g.name)}</th><td>${fig(g.figure)}</td><td>${g.rule} ${fig(g.threshold)}</td><td>${g.met ? '✓ met' : '✗ not met'}</td><td class="detail">${escapeXml(g.detail)}</td></tr>`,
    )
    .join('');
  return `<table class="goals"><thead><tr><th>Goal</th><th>Figure</th><th>Needed</th><th>Met</th><th>From</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function fidelityTable(f: { synthetic: ClassFidelity; realTest: ClassFidelity }, positive: string, seeds: number): string {
  const rows = Object.keys(f.synthetic.meanScore)
    .map(
      (c) =>
        `<tr><th scope="row">${escapeXml(c)}</th><td>${pm(f.synthetic.meanScore[c])}</td><td>${pct(f.synthetic.calledPositive[c].mean)}</td><td>${f.synthetic.tiles[c]}</td><td>${pm(f.realTest.meanScore[c])}</td><td>${pct(f.realTest.calledPositive[c].mean)}</td><td>${f.realTest.tiles[c]}</td></tr>`,
    )
    .join('');
  const p = escapeXml(positive);
  const diff = `<tr><th scope="row">Difference, ${p} − the others</th><td>${pm(f.synthetic.difference)}</td><td></td><td></td><td>${pm(f.realTest.difference)}</td><td></td><td></td></tr>`;
  return `<table><caption>Mean ${p} score of a classifier trained on real tiles only (mean ± sd over ${seeds} seeds)</caption><thead><tr><th>Tiles of class</th><th>Synthetic: mean ${p} score</th><th>called ${p}</th><th>tiles</th><th>Real test: mean ${p} score</th><th>called ${p}</th><th>tiles</th></tr></thead><tbody>${rows}${diff}</tbody></table>`;
}

function verdicts(r: QualityReport, details: ReportDetails): string[] {
  const out: string[] = [];
  const li = (ok: boolean | null, html: string) => `<li${ok === null ? '' : ` class="${ok ? 'ok' : 'warn'}"`}>${html}</li>`;
  const fl = r.floor;
  const seeds = r.config.classifier.seeds.length;
  // Distance to real tissue, read against the real floor.
  const fidGoal = goalById(r, 'fidVsFloor');
  const floorWords = `real tiles from the test set (patients the generator never saw) score ${f2(fl.fid)} against the same training tiles: the real floor, with ${fl.n} tiles on each side against ${fl.trainN} training tiles`;
  if (fl.fidOverFloor === null) out.push(li(false, `<b>No real floor to compare with.</b> The FID of the real test tiles is not above 0, so the synthetic FID (${f2(fl.syntheticFid)}) cannot be read against it.`));
  else if (fidGoal.met) out.push(li(true, `<b>Close to real tissue in feature space.</b> The synthetic tiles' FID is ${f2(fl.syntheticFid)}, ${f2(fl.fidOverFloor)}× the floor: ${floorWords}. The goal is at most ${FID_FLOOR_FACTOR}×.`));
  else out.push(li(false, `<b>Far from real tissue in feature space.</b> The synthetic tiles' FID is ${f2(fl.syntheticFid)}, ${f2(fl.fidOverFloor)}× the floor: ${floorWords}. The goal is at most ${FID_FLOOR_FACTOR}×.`));
  out.push(li(null, `KID, same tiles: synthetic ${exp(fl.syntheticKid.mean)} ± ${exp(fl.syntheticKid.std)} vs real floor ${exp(fl.kid.mean)} ± ${exp(fl.kid.std)} (subsets of ${fl.kidSubsetSize}).`));
  // Class fidelity.
  const cf = r.classFidelity.synthetic;
  const ref = r.classFidelity.realTest;
  const pos = escapeXml(r.config.positiveClass);
  const others = Object.keys(cf.meanScore).filter((c) => c !== r.config.positiveClass);
  const scores = (f: ClassFidelity) => [r.config.positiveClass, ...others].map((c) => `${f3(f.meanScore[c].mean)} on ${escapeXml(c)} tiles (${pct(f.calledPositive[c].mean)} called ${pos})`).join(' vs ');
  const refWords = `On real test tiles the same classifiers give ${scores(ref)}, a difference of ${pm(ref.difference)}${ref.carried ? '' : `, itself within the seed spread: the real-only classifier barely tells the real classes apart, so this check is weak`}.`;
  if (cf.carried) {
    out.push(li(true, `<b>The class is carried.</b> A classifier trained on real tiles only scores synthetic tiles ${scores(cf)}: a difference of ${pm(cf.difference)} over ${seeds} seeds, larger than its spread. ${refWords}`));
  } else {
    const reversed = cf.difference.mean < -cf.difference.sd;
    out.push(
      li(
        false,
        `<b>The class is ${reversed ? 'reversed' : 'not carried'}.</b> A classifier trained on real tiles only scores synthetic tiles ${scores(cf)}: a difference of ${pm(cf.difference)} over ${seeds} seeds, ${reversed ? `the wrong way round` : 'not larger than its spread over seeds'}. ${refWords}`,
      ),
    );
  }
  // Memorization.
  const m = r.memorization;
  if (goalById(r, 'memorization').met) {
    out.push(li(true, `<b>No sign of memorization.</b> Synthetic tiles are not closer to the training tiles than unseen real tiles are (5th percentile of nearest-training-tile distance ${f2(m.syntheticToTrain.p5)} vs ${f2(m.testToTrain.p5)} for real test tiles).`));
  } else {
    out.push(li(false, `<b>Possible memorization.</b> The closest 5 % of synthetic tiles lie within ${f2(m.syntheticToTrain.p5)} of a training tile, closer than the closest 5 % of unseen real tiles (${f2(m.testToTrain.p5)}). Inspect the closest pairs below before exporting images.`));
  }
  // Diversity.
  for (const [cls, d] of Object.entries(r.diversity)) {
    if (d.synthetic === null || d.real === null) continue;
    const ratio = d.synthetic / d.real;
    if (ratio < DIVERSITY_MIN_RATIO) out.push(li(false, `<b>Possible mode collapse in ${escapeXml(cls)}.</b> Synthetic ${escapeXml(cls)} tiles vary less than real ones (mean pairwise feature distance ${f2(d.synthetic)} vs ${f2(d.real)}, ratio ${f2(ratio)}; the goal is at least ${DIVERSITY_MIN_RATIO}).`));
    else out.push(li(true, `<b>${escapeXml(cls)}: diverse.</b> Synthetic tiles vary about as much as real ones (ratio ${f2(ratio)}).`));
  }
  // Do synthetic tiles help a classifier? Mean against the seed sd.
  const c = r.classification;
  const ba = goalById(r, 'realPlusSyntheticBalancedAccuracy');
  const pa = goalById(r, 'realPlusSyntheticPatientAuroc');
  const baWords = `balanced accuracy ${pm(c.realPlusSynthetic.balancedAccuracy)} with real + synthetic vs ${pm(c.realOnly.balancedAccuracy)} with real tiles only (${signed(ba.figure!)}; one seed sd ${f3(ba.threshold!)})`;
  const paWords =
    pa.figure === null
      ? 'patient AUROC not measured (no patients in the test manifest)'
      : `patient AUROC ${pm(c.realPlusSynthetic.patientLevel!.auroc)} vs ${pm(c.realOnly.patientLevel!.auroc)} over ${r.config.realTest.patients} patients (${signed(pa.figure)}; one seed sd ${f3(pa.threshold!)})`;
  if (ba.met && pa.met) out.push(li(true, `<b>Synthetic tiles help the small classifier</b>, by more than the spread over ${seeds} seeds: ${baWords}; ${paWords}.`));
  else out.push(li(false, `<b>Synthetic tiles do not measurably help the small classifier</b> (both gains must exceed one seed sd, over ${seeds} seeds): ${baWords}; ${paWords}.`));
  if (r.hospitals) {
    const m = r.hospitals.meanOverHospitals;
    const auroc = m.gain.auroc!;
    const helped = r.hospitals.hospitals.filter((x) => x.gain.auroc?.helps).map((x) => escapeXml(x.name));
    out.push(
      li(
        auroc.helps ? true : auroc.figure < -auroc.threshold ? false : null,
        `<b>${auroc.helps ? 'A hospital gains from the synthetic tiles' : 'A hospital does not measurably gain from the synthetic tiles'}</b> (its own tiles + synthetic vs its own tiles only, mean over ${r.hospitals.hospitals.length} hospitals): tile AUROC ${pm(m.ownPlusSynthetic.auroc)} vs ${pm(m.ownOnly.auroc)} (${signed(auroc.figure)}; one seed sd ${f3(auroc.threshold)})${m.gain.patientAuroc ? `, patient AUROC ${signed(m.gain.patientAuroc.figure)} (sd ${f3(m.gain.patientAuroc.threshold)})` : ''}; ${helped.length ? `helps by more than one seed sd at ${helped.join(', ')}` : 'by more than one seed sd at none of them'}.`,
      ),
    );
  }
  const so = goalById(r, 'syntheticOnlyAuroc');
  out.push(
    li(
      so.met,
      `${so.met ? '<b>Synthetic tiles alone teach about as much as real ones.</b>' : '<b>Synthetic tiles alone teach less than real ones.</b>'} Tile AUROC ${pm(c.syntheticOnly.auroc)} trained on synthetic tiles only vs ${pm(c.realOnly.auroc)} on real tiles only (the goal: at most ${f2(so.threshold!)} below).`,
    ),
  );
  if (details.linearProbe) {
    const p = details.linearProbe.results;
    const g = p.realPlusSynthetic.auroc.mean - p.realOnly.auroc.mean;
    const sd = Math.max(p.realPlusSynthetic.auroc.sd, p.realOnly.auroc.sd);
    out.push(
      li(
        null,
        `With pretrained MobileNetV2 features and a linear head: AUROC ${pm(p.realPlusSynthetic.auroc)} with real + synthetic vs ${pm(p.realOnly.auroc)} with real tiles only (${signed(g)}, ${Math.abs(g) > sd ? 'more' : 'not more'} than one seed sd), ${pm(p.syntheticOnly.auroc)} with synthetic tiles only.`,
      ),
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
    ? `<h3>Pretrained MobileNetV2 features + linear head</h3><p class="note">Features from nsfwjs's MobileNetV2 (computed once, no augmentation), logistic regression per seed.</p>${downstreamTables(details.linearProbe, 'MobileNetV2 + linear head', cfg)}`
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
.file{color:#777;font-size:.85em}.floor{margin-top:.5em;font-size:.92em}
table.goals th[scope=row]{font-weight:normal;max-width:24em}table.goals td.detail{text-align:left;font-size:.85em;color:#555}tr.goal-met td:nth-child(4){color:#1b5e20;font-weight:600}tr.goal-unmet td:nth-child(4){color:#a00;font-weight:600}table.hospitals{font-size:.88em}table.hospitals td{white-space:nowrap}table.hospitals thead th{text-align:center}table.hospitals thead th:first-child{text-align:left}table.hospitals tbody tr:last-child{border-top:2px solid #bbb}.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.8em 1em;flex:1;min-width:220px}
</style></head><body>
<h1>Synthetic tile quality report</h1>
<p class="note">Checkpoint <code>${escapeXml(cfg.checkpoint)}</code> (${escapeXml(String(cfg.gan.gan ?? ''))}, ${cfg.imageSize}×${cfg.imageSize} px${cfg.checkpointMeta.round !== undefined ? `, round ${escapeXml(String(cfg.checkpointMeta.round))}` : ''}) ·
${cfg.perClass} synthetic tiles per class · real training tiles ${cfg.realTrain.tiles} · real test tiles ${cfg.realTest.tiles} · ${escapeXml(cfg.createdAt)}</p>

<h2>At a glance</h2>
<ul class="verdicts">${verdicts(report, details).join('')}</ul>
<div class="cards">
<div class="card"><div>${escapeXml(cfg.features.fidLabel)}</div><div class="big">${f2(report.fid)}</div><div class="note">All ${cfg.perClass * cfg.classes.length} synthetic tiles against all ${cfg.realTrain.tiles} real training tiles. Lower is closer to the real training tiles. Compare only with other checkpoints evaluated by this tool.</div>
<div class="floor">At ${report.floor.n} tiles against the ${report.floor.trainN} training tiles: synthetic <b>${f2(report.floor.syntheticFid)}</b>, real floor (real test tiles) <b>${f2(report.floor.fid)}</b>${report.floor.fidOverFloor === null ? '' : ` · <b>${f2(report.floor.fidOverFloor)}× the floor</b>`}</div></div>
<div class="card"><div>KID (same features, unbiased; mean ± sd over ${report.config.kid.subsets} subsets of ${report.config.kid.subsetSize})</div><div class="big">${report.kid.mean.toExponential(3)} ± ${report.kid.std.toExponential(2)}</div><div class="note">≈ 0 when synthetic and real tiles are indistinguishable in feature space.</div>
<div class="floor">At ${report.floor.n} tiles (subsets of ${report.floor.kidSubsetSize}): synthetic <b>${exp(report.floor.syntheticKid.mean)} ± ${exp(report.floor.syntheticKid.std)}</b>, real floor <b>${exp(report.floor.kid.mean)} ± ${exp(report.floor.kid.std)}</b></div></div>
</div>

<h2>Goals</h2>
<p class="note">Each goal with its measured figure and the threshold it must meet (comparisons forgive float rounding below 1e-9). Classifier figures are means over ${cfg.classifier.seeds.length} seeds; a difference counts only when it exceeds the spread over seeds.</p>
${goalsTable(report.goals)}

<h2>Synthetic samples</h2>
<p class="note">One row per class (${cfg.classes.map(escapeXml).join(', ')}, top to bottom), generated from the checkpoint.</p>
<div class="samples"><img src="${images.samples}" alt="grid of synthetic tiles, one row per class"></div>

<h2>Do the synthetic tiles carry their class?</h2>
<p class="note">The small CNN trained on real tiles only (one model per seed, the same models as in the next section) scores every synthetic tile: the probability it gives the class ${escapeXml(cfg.positiveClass)}. If the generator draws what it is asked for, synthetic ${escapeXml(cfg.positiveClass)} tiles score higher than the others. The same models on the real test tiles show how well they separate real tissue.</p>
${fidelityTable(report.classFidelity, cfg.positiveClass, cfg.classifier.seeds.length)}

<h2>Does adding synthetic tiles help a classifier?</h2>
<p class="note">The same small CNN (trained from scratch, ${cfg.classifier.size}×${cfg.classifier.size} px, ${cfg.classifier.epochs} epochs, ${escapeXml(cfg.classifier.augmentation)}) is trained three ways and tested on the real test tiles (${cfg.realTest.tiles} tiles, ${patientCount(cfg.realTest)}); seeds ${cfg.classifier.seeds.join(', ')}.</p>
${downstreamTables({ results: report.classification }, 'Small CNN', cfg)}
${probe}
${
  report.hospitals
    ? `<h3>Does a hospital gain from the federation's synthetic tiles?</h3>
<p class="note">The training tiles split into hospitals as the federation split them (<code>--partition ${escapeXml(report.hospitals.partition)}</code>, ${report.hospitals.clients} hospitals, seed ${report.hospitals.seed}). Each hospital trains the same small CNN on its own tiles only, then on its own tiles + every synthetic tile: the tiles the other hospitals' data helped the generator draw, without any of their tiles leaving them. The mean over the hospitals averages each seed's figures over the hospitals first.</p>
${hospitalTable(report.hospitals, cfg)}`
    : ''
}

<h2>Memorization check</h2>
<p class="note">For every synthetic tile: the feature distance to its nearest real training tile. As a control, the same for every real test tile (tiles the generator never saw). Synthetic tiles much closer than the control suggest copies of training tiles.</p>
<table><thead><tr><th>Distance to the nearest training tile</th><th>5th percentile</th><th>Median</th></tr></thead><tbody>
<tr><th scope="row">Synthetic tiles</th><td>${f2(report.memorization.syntheticToTrain.p5)}</td><td>${f2(report.memorization.syntheticToTrain.median)}</td></tr>
<tr><th scope="row">Real test tiles (control)</th><td>${f2(report.memorization.testToTrain.p5)}</td><td>${f2(report.memorization.testToTrain.median)}</td></tr>
</tbody></table>
<p>The ${images.pairs.length} synthetic tiles closest to a training tile (left: synthetic, right: its nearest training tile):</p>
<div class="pairs">${pairs}</div>

<h2>Membership-inference audit (privacy)</h2>
${membershipSection(report.membership, cfg.privacy)}

<h2>Diversity (mode collapse)</h2>
<p class="note">Mean pairwise feature distance within each class. A ratio well below 1 means the synthetic tiles of that class look alike (mode collapse).</p>
<table><thead><tr><th>Class</th><th>Synthetic</th><th>Real (training)</th><th>Ratio</th></tr></thead><tbody>${diversityRows}</tbody></table>

<h2>Embedding (t-SNE)</h2>
<p class="note">Real training tiles and synthetic tiles in the same feature space, reduced to 2-D with t-SNE. Synthetic tiles (triangles) should mix with real tiles (dots) of their own class rather than form their own islands.</p>
${images.tsneSvg}

<h2>Settings</h2>
<table><tbody>
<tr><th scope="row">Features</th><td>${escapeXml(cfg.features.extractor)} (${cfg.features.dim}-d)</td></tr>
<tr><th scope="row">Real training tiles</th><td>${escapeXml(cfg.realTrain.dir)} · ${Object.entries(cfg.realTrain.perClass).map(([k, v]) => `${escapeXml(k)} ${v}`).join(', ')} · ${cfg.realTrain.sourceSize} px source${cfg.realTrain.patients !== null ? ` · ${patientCount(cfg.realTrain)}` : ''}</td></tr>
<tr><th scope="row">Real test tiles</th><td>${escapeXml(cfg.realTest.dir)} · ${Object.entries(cfg.realTest.perClass).map(([k, v]) => `${escapeXml(k)} ${v}`).join(', ')} · ${cfg.realTest.sourceSize} px source${cfg.realTest.patients !== null ? ` · ${patientCount(cfg.realTest)}` : ''}</td></tr>
<tr><th scope="row">FID terms</th><td>‖μ₁−μ₂‖² ${f2(details.fidParts.meanTerm)} · Tr Σ₁ ${f2(details.fidParts.traceCov1)} · Tr Σ₂ ${f2(details.fidParts.traceCov2)} · Tr √(Σ₁Σ₂) ${f2(details.fidParts.traceSqrtProduct)}</td></tr>
<tr><th scope="row">Backends</th><td>${Object.entries(details.backends).map(([k, v]) => `${escapeXml(k)}: ${escapeXml(v)}`).join(' · ')}</td></tr>
</tbody></table>
<table><caption>Time taken</caption><tbody>${timings}</tbody></table>
</body></html>
`;
}
