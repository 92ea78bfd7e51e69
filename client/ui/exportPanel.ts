import type { Verdict } from '../../shared/metrics/verdict.ts';
import type { ExportOptions, ExportResult, FederationInfo } from '../api.ts';
import { exportLimitReason, MAX_EXPORT_PER_CLASS, MAX_EXPORT_SEED } from '../exportZip.ts';
import { isCancelled } from '../job.ts';
import { $, formatBytes, formatCount, h } from './dom.ts';
import { JobProgress } from './jobProgress.ts';

/**
 * Step 5: the verdict on the images (are they usable, and why: shared/metrics/verdict.ts) before anything
 * is exported, counts per class (at most MAX_EXPORT_PER_CLASS, with the reason), an optional seed to
 * reproduce an earlier export, the export button, progress with the measured speed and time left, Cancel,
 * and the download of the ZIP the worker built.
 */

const DEFAULT_COUNT = 16;

export interface ExportPanelDeps {
  run(perClass: Record<string, number>, opts: ExportOptions): Promise<ExportResult>;
  cancel(): Promise<void> | void;
  /** The verdict on the stored global model's images; undefined before there is a model. */
  verdict(): Promise<Verdict | undefined>;
}

/** The verdict as a block: the headline, toned by level, and the reasons under "Why". */
export function verdictBlock(v: Verdict, testid: string): HTMLElement {
  const tone = v.level === 'usable' ? 'tone-ok' : v.level === 'not-yet' ? 'tone-warn' : 'tone-neutral';
  return h(
    'div',
    { class: 'verdict', 'data-testid': testid, 'data-level': v.level },
    h('p', { class: `msg ${tone}`, 'data-testid': `${testid}-headline` }, h('strong', { text: v.headline })),
    h('details', { class: 'small' }, h('summary', { text: 'Why' }), h('ul', {}, ...v.reasons.map((r) => h('li', { text: r })))),
  );
}

export class ExportPanel {
  private classes: string[] = [];
  private imageSize = 0;
  private busy = false;
  private cancelling = false;
  private readonly progressView = new JobProgress(() => document.querySelector<HTMLElement>('#export-progress'), 'images');
  private readonly verdictBox = h('div', { id: 'export-verdict', 'aria-live': 'polite' });
  private readonly limit = h('p', { class: 'small muted', 'data-testid': 'export-limit' });
  private readonly seed = h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off', 'data-testid': 'export-seed', placeholder: 'new random seed', 'aria-describedby': 'export-seed-help' });
  private readonly cancelButton = h('button', { class: 'btn', type: 'button', 'data-testid': 'export-cancel', text: 'Cancel', hidden: true });
  private verdictRequest = 0;

  constructor(private readonly deps: ExportPanelDeps) {
    const counts = $('#export-counts');
    counts.before(this.verdictBox);
    counts.after(
      this.limit,
      h(
        'p',
        { class: 'small' },
        h('label', {}, 'Seed (optional) ', this.seed),
        ' ',
        h('span', { id: 'export-seed-help', class: 'muted', text: 'Leave empty for new images. To reproduce an earlier export exactly, type the seed from its model-card.json (same model round).' }),
      ),
    );
    $('#export').after(this.cancelButton);
    $('#export').addEventListener('click', () => void this.run());
    this.cancelButton.addEventListener('click', () => void this.cancel());
  }

  setClasses(classes: string[]): void {
    if (classes.join() === this.classes.join()) return;
    this.classes = [...classes];
    $('#export-counts').replaceChildren(
      ...classes.map((c) =>
        h('label', {}, c, h('input', { type: 'number', min: 0, max: MAX_EXPORT_PER_CLASS, step: 1, value: DEFAULT_COUNT, 'data-testid': `export-count-${c}`, 'data-class': c, 'aria-label': `Number of ${c} images` })),
      ),
    );
    this.renderLimit();
  }

  /** The federation's description arrived or changed: classes, image size, and the verdict (its rounds and probe). */
  setFederation(info: FederationInfo): void {
    this.imageSize = info.imageSize;
    this.setClasses(info.classes);
    this.renderLimit();
    this.refreshVerdict();
  }

  private renderLimit(): void {
    this.limit.textContent = this.imageSize ? exportLimitReason(this.imageSize, this.classes.length) : '';
  }

  /** Ask the worker for the verdict again (a new model, a quality check, a new probe). */
  refreshVerdict(): void {
    const request = ++this.verdictRequest;
    this.deps.verdict().then(
      (v) => {
        if (request !== this.verdictRequest) return;
        this.verdictBox.replaceChildren(...(v ? [verdictBlock(v, 'export-verdict')] : [h('p', { class: 'small muted', 'data-testid': 'export-verdict', text: 'No model yet: images can be exported once this hospital has received the federation’s model.' })]));
      },
      () => {},
    );
  }

  /** A global model arrived (samples drawn): an export error from before (e.g. "no model yet") no longer holds. */
  modelAvailable(): void {
    this.refreshVerdict();
    const msg = $('#export-msg');
    if (this.busy || !msg.classList.contains('tone-error')) return;
    msg.className = 'msg';
    msg.textContent = '';
  }

  progress(done: number, total: number, stage: string): void {
    if (!this.busy) return;
    if (stage === 'generating') this.progressView.update(done, total, 'Generating');
    else this.progressView.update(done, total, `${stage.charAt(0).toUpperCase()}${stage.slice(1)}`, false);
  }

  private async cancel(): Promise<void> {
    if (!this.busy || this.cancelling) return;
    this.cancelling = true;
    this.cancelButton.disabled = true;
    this.cancelButton.textContent = 'Cancelling…';
    await this.deps.cancel();
  }

  /** The counts and seed typed in, or the message saying what is wrong. */
  private readForm(): { perClass: Record<string, number>; opts: ExportOptions } | string {
    const perClass: Record<string, number> = {};
    for (const input of Array.from(document.querySelectorAll<HTMLInputElement>('#export-counts input'))) {
      const n = Number(input.value);
      if (input.value.trim() === '' || !Number.isInteger(n) || n < 0) return `The number of ${input.dataset.class} images must be a whole number from 0 to ${formatCount(MAX_EXPORT_PER_CLASS)}.`;
      if (n > MAX_EXPORT_PER_CLASS) return `${formatCount(n)} ${input.dataset.class} images is more than one export can hold. ${exportLimitReason(this.imageSize || 64, this.classes.length)}`;
      perClass[input.dataset.class!] = n;
    }
    if (Object.values(perClass).every((n) => n === 0)) return 'Choose at least one image to export.';
    const typed = this.seed.value.trim();
    if (typed === '') return { perClass, opts: {} };
    const seed = Number(typed);
    if (!/^\d+$/.test(typed) || !Number.isSafeInteger(seed) || seed > MAX_EXPORT_SEED) return `The seed must be a whole number from 0 to ${formatCount(MAX_EXPORT_SEED)}, or empty for new images.`;
    return { perClass, opts: { seed } };
  }

  private async run(): Promise<void> {
    if (this.busy) return;
    const msg = $('#export-msg');
    const form = this.readForm();
    if (typeof form === 'string') {
      msg.className = 'msg tone-error';
      msg.textContent = form;
      return;
    }
    this.busy = true;
    this.cancelling = false;
    const button = $<HTMLButtonElement>('#export');
    button.disabled = true;
    this.cancelButton.hidden = false;
    this.cancelButton.disabled = false;
    this.cancelButton.textContent = 'Cancel';
    msg.className = 'msg';
    msg.textContent = '';
    this.progressView.start('Starting the export…');
    try {
      const res = await this.deps.run(form.perClass, form.opts);
      const url = URL.createObjectURL(new Blob([res.bytes as Uint8Array<ArrayBuffer>], { type: 'application/zip' }));
      const a = h('a', { href: url, download: res.fileName });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      const total = Object.values(res.counts).reduce((x, y) => x + y, 0);
      const caveat = res.verdict.level === 'usable' ? '' : res.verdict.level === 'not-yet' ? ' These images are not yet usable (see above).' : ' Whether they are usable is not known yet (see above).';
      msg.className = `msg ${res.verdict.level === 'usable' ? 'tone-ok' : 'tone-warn'}`;
      msg.textContent = `Saved ${res.fileName}: ${formatCount(total)} images from the round-${res.round} model (${formatBytes(res.bytes.byteLength)}), seed ${res.seed}.${caveat}`;
    } catch (e) {
      if (isCancelled(e)) {
        msg.className = 'msg tone-neutral';
        msg.textContent = 'Export cancelled; nothing was saved.';
      } else {
        msg.className = 'msg tone-error';
        msg.textContent = `The export failed: ${(e as Error).message}`;
      }
    } finally {
      this.busy = false;
      button.disabled = false;
      this.cancelButton.hidden = true;
      this.progressView.stop();
    }
  }
}
