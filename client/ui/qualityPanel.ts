import { checkFiguresOf, judgeCheck, type Verdict } from '../../shared/metrics/verdict.ts';
import type { AuditHoldoutState, QualityExtractor, QualityMembership, QualityOptions, QualityReport } from '../api.ts';
import type { ModelCardPrivacy } from '../exportZip.ts';
import { isCancelled } from '../job.ts';
import { $, formatCount, formatSeconds, h, progressBox } from './dom.ts';
import { verdictBlock } from './exportPanel.ts';
import { JobProgress } from './jobProgress.ts';

/**
 * Step 6: the Quality panel. The worker computes FID, KID (with the real floor of held-out tiles), the
 * memorization check and diversity on this hospital's own tiles; this renders the plain-language verdict
 * first (shared/metrics/verdict.ts; FID and KID are the details), then the figures, with the closest
 * generated/real pairs as images so staff can see for themselves whether a tile was copied. "No sign of
 * copying" is good news only for images that are otherwise close to real tissue: noise is never a copy.
 * Progress shows the measured speed and time left; Cancel stops the check in the worker.
 *
 * The privacy audit: staff may keep 1 tile in 10 out of training (shared/privacy/auditHoldout.ts); the check
 * then asks whether two membership-inference attacks can tell the tiles trained on from the held-out ones,
 * and says so in plain words (0.5 = no better than chance).
 */

/** This hospital's differential privacy next to the audit, in plain words (null: not known). */
export function privacyLine(p: ModelCardPrivacy | undefined): string | null {
  if (!p) return null;
  if (p.dp && p.epsilon !== null) {
    const delta = p.delta !== null ? ` at δ = ${p.delta.toExponential(1)}` : '';
    return `Differential privacy: your tiles have spent ε = ${p.epsilon.toFixed(2)}${delta} over ${p.rounds} round${p.rounds === 1 ? '' : 's'} (the smaller ε, the stronger the protection of each tile).`;
  }
  return `Differential privacy: ${p.note}`;
}

/** What the hold-out does right now, in plain words. */
export function holdoutText(s: AuditHoldoutState): string {
  const known = s.training + s.heldOut > 0;
  if (!s.on) return known ? `Off: all ${formatCount(s.training)} of your tiles are used in training.` : 'Off: all your tiles are used in training.';
  const share = `1 in ${Math.round(1 / s.fraction)}`;
  const since = s.since !== undefined ? ` since ${new Date(s.since).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' })}` : '';
  const before = s.trainedBefore ? ' They were trained on in rounds before you turned this on, so the audit will underestimate any leakage.' : '';
  const counts = known ? `${formatCount(s.heldOut)} of your tiles (${share}` : `${share} of your tiles (`;
  return `On${since}: ${counts}, chosen by each tile’s fingerprint, the same after every reload) are kept out of training${known ? `; ${formatCount(s.training)} are trained on` : ''}.${before}`;
}

function rgbToCanvas(rgb: Uint8Array, size: number, label: string): HTMLCanvasElement {
  const canvas = h('canvas', { width: size, height: size, class: size < 48 ? 'pixelated' : '', 'aria-label': label, title: label });
  const img = new ImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    img.data[i * 4] = rgb[i * 3];
    img.data[i * 4 + 1] = rgb[i * 3 + 1];
    img.data[i * 4 + 2] = rgb[i * 3 + 2];
    img.data[i * 4 + 3] = 255;
  }
  canvas.getContext('2d')!.putImageData(img, 0, 0);
  return canvas;
}

const fmt = (v: number | null | undefined, digits = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));

export class QualityPanel {
  private busy = false;
  private readonly progressView = new JobProgress(() => document.querySelector<HTMLElement>('#quality-body .progress'), 'tiles');

  constructor(
    private readonly deps: {
      info(): Promise<{ extractors: { id: QualityExtractor; label: string }[]; holdout: AuditHoldoutState }>;
      /** Keep 1 tile in 10 out of training for the privacy audit (on), or train on all tiles again. */
      setHoldout(on: boolean): Promise<AuditHoldoutState>;
      run(opts: QualityOptions): Promise<QualityReport>;
      /** Stop the running check (its run() then rejects with JobCancelled). */
      cancel(): Promise<void> | void;
      /** The verdict on the stored model's images, which takes the new check into account. */
      verdict(): Promise<Verdict | undefined>;
    },
  ) {}

  async init(): Promise<void> {
    const body = $('#quality-body');
    let extractors: { id: QualityExtractor; label: string }[];
    let holdout: AuditHoldoutState;
    try {
      ({ extractors, holdout } = await this.deps.info());
    } catch (e) {
      body.replaceChildren(h('p', { class: 'msg tone-warn', text: `The quality check is not available: ${(e as Error).message}` }));
      return;
    }
    const count = h('input', { type: 'number', min: 4, max: 2000, step: 1, value: 64, 'data-testid': 'quality-count', 'aria-label': 'Generated tiles per class' });
    const select = h('select', { 'data-testid': 'quality-extractor', 'aria-label': 'Feature network' }, ...extractors.map((e) => h('option', { value: e.id, text: e.label })));
    const button = h('button', { class: 'btn', type: 'button', 'data-testid': 'run-quality', text: 'Run the quality check' });
    const cancel = h('button', { class: 'btn', type: 'button', 'data-testid': 'quality-cancel', text: 'Cancel', hidden: true });
    const progress = progressBox('Quality check progress');
    const out = h('div', { 'data-testid': 'quality-result', class: 'quality-result' });
    const holdoutBox = h('input', { type: 'checkbox', 'data-testid': 'audit-holdout', checked: holdout.on });
    const holdoutStatus = h('p', { class: 'small', 'data-testid': 'audit-holdout-status', 'aria-live': 'polite', text: holdoutText(holdout) });
    body.replaceChildren(
      h('div', { class: 'quality-form' }, h('label', { class: 'small' }, 'Generated tiles per class ', count), h('label', { class: 'small' }, 'Feature network ', select)),
      h('div', { class: 'actions' }, button, ' ', cancel),
      progress,
      out,
      h(
        'div',
        { class: 'audit-holdout' },
        h('h3', { text: 'Privacy audit: held-out tiles' }),
        h('p', {
          class: 'small muted',
          text:
            'The privacy audit checks whether the model gives away which tiles it was trained on (a membership-inference attack). It needs some of your tiles that the model never saw. ' +
            'With this on, 1 in 10 of your tiles is kept out of training from the next round; your hospital then trains on slightly fewer tiles. The tiles stay on this computer either way.',
        }),
        h('label', { class: 'small' }, holdoutBox, ' Keep 1 tile in 10 out of training, for the privacy audit'),
        holdoutStatus,
      ),
    );
    holdoutBox.addEventListener('change', async () => {
      holdoutBox.disabled = true;
      try {
        holdoutStatus.textContent = holdoutText(await this.deps.setHoldout(holdoutBox.checked));
      } catch (e) {
        holdoutBox.checked = !holdoutBox.checked;
        holdoutStatus.textContent = `Could not change the hold-out: ${(e as Error).message}`;
      } finally {
        holdoutBox.disabled = false;
      }
    });
    cancel.addEventListener('click', () => {
      if (!this.busy) return;
      cancel.disabled = true;
      cancel.textContent = 'Cancelling…';
      void this.deps.cancel();
    });
    button.addEventListener('click', async () => {
      if (this.busy) return;
      this.busy = true;
      button.disabled = true;
      cancel.hidden = false;
      cancel.disabled = false;
      cancel.textContent = 'Cancel';
      out.replaceChildren();
      this.progressView.start('Starting the quality check…');
      try {
        const r = await this.deps.run({ perClass: Number(count.value), extractor: select.value as QualityExtractor });
        const verdict = await this.deps.verdict().catch(() => undefined);
        out.replaceChildren(...this.render(r, verdict));
        holdoutStatus.textContent = holdoutText(r.membership.holdout);
      } catch (e) {
        out.replaceChildren(
          isCancelled(e)
            ? h('p', { class: 'msg tone-neutral', 'data-testid': 'quality-cancelled', text: 'Quality check cancelled; nothing was measured.' })
            : h('p', { class: 'msg tone-error', text: `The quality check failed: ${(e as Error).message}` }),
        );
      } finally {
        this.busy = false;
        button.disabled = false;
        cancel.hidden = true;
        this.progressView.stop();
      }
    });
  }

  progress(done: number, total: number, stage: string): void {
    if (!this.busy) return;
    // Loading the network and computing the scores are one step each: no count, no rate.
    this.progressView.update(done, total, stage, total > 1 && stage !== 'Computing the scores');
  }

  private render(r: QualityReport, verdict: Verdict | undefined): Node[] {
    const m = r.memorization;
    const judged = judgeCheck(checkFiguresOf(r));
    // "No sign of copying" is good news only about images that are otherwise fine: noise is never a copy.
    const tone = judged.copies ? 'tone-warn' : judged.close && judged.varied ? 'tone-ok' : 'tone-neutral';
    const memorization = m.realToReal === undefined
      ? h('p', { class: 'small muted', 'data-testid': 'memorization-verdict', text: 'Too few tiles for a memorization baseline.' })
      : h('p', { class: `msg ${tone}`, 'data-testid': 'memorization-verdict', text: judged.memorization });
    const rows: [string, string][] = [
      ['FID (lower is better)', fmt(r.fid, 2)],
      [`FID of your held-out tiles: the floor (${formatCount(r.floor.n)} tiles each side)`, `${fmt(r.floor.fid, 2)} (generated: ${fmt(r.floor.syntheticFid, 2)})`],
      ['KID (lower is better)', `${fmt(r.kid.mean, 4)} ± ${fmt(r.kid.std, 4)}`],
      ['KID of your held-out tiles: the floor', fmt(r.floor.kid, 4)],
      ['Generated → nearest real tile (median / 5th percentile)', `${fmt(m.syntheticToReal.median)} / ${fmt(m.syntheticToReal.p5)}`],
      ['Real → nearest other real tile (median / 5th percentile)', m.realToReal ? `${fmt(m.realToReal.median)} / ${fmt(m.realToReal.p5)}` : '–'],
      ...Object.entries(r.diversity).map(([c, d]): [string, string] => [`Diversity of ${c} (generated / real)`, `${fmt(d.synthetic)} / ${fmt(d.real)}`]),
    ];
    const pairs = h(
      'div',
      { class: 'pairs' },
      ...r.closest.map((p, i) =>
        h('figure', { class: 'pair' }, rgbToCanvas(p.synthetic, r.size, `generated tile ${i + 1}`), rgbToCanvas(p.real, r.size, `your tile ${p.realName}`), h('figcaption', { text: fmt(p.distance, 2) })),
      ),
    );
    return [
      h('p', { class: 'small', text: `Round-${r.round} model: ${formatCount(r.syntheticCount)} generated tiles vs ${formatCount(r.realCount)} of your tiles (${formatCount(r.controlCount)} more held out as the baseline), in ${formatSeconds(r.seconds)}.` }),
      ...(verdict ? [verdictBlock(verdict, 'quality-verdict')] : []),
      h('table', { class: 'quality-table' }, h('tbody', {}, ...rows.map(([k, v]) => h('tr', {}, h('td', { text: k }), h('td', { class: 'num', text: v }))))),
      memorization,
      h('p', { class: 'small muted', text: `Closest generated (left) / real (right) pairs and their distance. Features: ${r.extractor.description}.` }),
      pairs,
      ...this.renderMembership(r.membership, privacyLine(r.privacy)),
    ];
  }

  private renderMembership(m: QualityMembership, dp: string | null): Node[] {
    const heading = h('h3', { text: 'Privacy: can the model tell which tiles it was trained on?' });
    const dpLine = dp ? [h('p', { class: 'small', 'data-testid': 'quality-privacy', text: dp })] : [];
    if (!m.measured) return [heading, ...dpLine, h('p', { class: 'small muted', 'data-testid': 'membership-result', text: m.reason })];
    const attacks = [m.ganLeaks, m.logan];
    const worst = attacks.some((a) => a.level === 'clear') ? 'clear' : attacks.some((a) => a.level === 'weak') ? 'weak' : 'none-detected';
    const tone = worst === 'none-detected' ? 'tone-ok' : 'tone-warn';
    const summary =
      worst === 'none-detected'
        ? `No detectable leakage: neither attack tells the ${formatCount(m.members)} tiles trained on from the ${formatCount(m.nonMembers)} held out better than chance.`
        : worst === 'weak'
          ? 'Weak leakage: an attack tells the tiles trained on from the held-out ones a little better than chance.'
          : 'Clear leakage: the model gives away which of your tiles it was trained on. Ask the federation to turn on differential privacy before sharing the model or its images.';
    const rows = attacks.map((a) =>
      h('tr', {}, h('td', { text: a.name }), h('td', { class: 'num', text: `${fmt(a.auc)}${a.ci ? ` (${Math.round(a.ci.level * 100)} %: ${fmt(a.ci.low)}–${fmt(a.ci.high)})` : ''}` })),
    );
    return [
      heading,
      ...dpLine,
      h('p', { class: `msg ${tone}`, 'data-testid': 'membership-result', text: summary }),
      h('table', { class: 'quality-table' }, h('tbody', {}, h('tr', {}, h('th', { text: 'Attack' }), h('th', { text: 'AUC (0.5 = chance)' })), ...rows)),
      h('p', {
        class: 'small muted',
        text:
          'AUC: the chance that the attack rates a random tile trained on as “more likely trained on” than a random held-out tile. 0.5 is a coin toss; 1 means it always tells them apart. ' +
          'The range is a 95 % bootstrap interval; one that contains 0.5 means no leakage was detected with this many tiles, not that there is none.',
      }),
      ...(m.holdout.trainedBefore ? [h('p', { class: 'small tone-warn', text: 'The held-out tiles were trained on before the hold-out was turned on: the audit underestimates leakage.' })] : []),
    ];
  }
}
