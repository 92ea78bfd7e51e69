import type { QualityExtractor, QualityOptions, QualityReport } from '../api.ts';
import { $, formatCount, formatSeconds, h } from './dom.ts';

/**
 * Step 6: the Quality panel. The worker computes FID, KID, the memorization check and diversity on this
 * hospital's own tiles; this renders the figures in plain words, with the closest generated/real pairs
 * as images so staff can see for themselves whether a tile was copied.
 */

/** Generated tiles whose nearest-real distance is below this share of the real-to-real baseline look like copies. */
const COPY_RATIO = 0.5;

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

  constructor(
    private readonly deps: {
      info(): Promise<{ extractors: { id: QualityExtractor; label: string }[] }>;
      run(opts: QualityOptions): Promise<QualityReport>;
    },
  ) {}

  async init(): Promise<void> {
    const body = $('#quality-body');
    let extractors: { id: QualityExtractor; label: string }[];
    try {
      extractors = (await this.deps.info()).extractors;
    } catch (e) {
      body.replaceChildren(h('p', { class: 'msg tone-warn', text: `The quality check is not available: ${(e as Error).message}` }));
      return;
    }
    const count = h('input', { type: 'number', min: 4, max: 2000, step: 1, value: 64, 'data-testid': 'quality-count', 'aria-label': 'Generated tiles per class' });
    const select = h('select', { 'data-testid': 'quality-extractor', 'aria-label': 'Feature network' }, ...extractors.map((e) => h('option', { value: e.id, text: e.label })));
    const button = h('button', { class: 'btn', type: 'button', 'data-testid': 'run-quality', text: 'Run the quality check' });
    const progress = h('div', { class: 'progress', hidden: true }, h('div', { class: 'track' }, h('div', { class: 'bar' })), h('span', { class: 'progress-text' }));
    const out = h('div', { 'data-testid': 'quality-result', class: 'quality-result' });
    body.replaceChildren(
      h('div', { class: 'quality-form' }, h('label', { class: 'small' }, 'Generated tiles per class ', count), h('label', { class: 'small' }, 'Feature network ', select)),
      button,
      progress,
      out,
    );
    button.addEventListener('click', async () => {
      if (this.busy) return;
      this.busy = true;
      button.disabled = true;
      out.replaceChildren();
      try {
        const r = await this.deps.run({ perClass: Number(count.value), extractor: select.value as QualityExtractor });
        out.replaceChildren(...this.render(r));
      } catch (e) {
        out.replaceChildren(h('p', { class: 'msg tone-error', text: `The quality check failed: ${(e as Error).message}` }));
      } finally {
        this.busy = false;
        button.disabled = false;
        progress.hidden = true;
      }
    });
  }

  progress(done: number, total: number, stage: string): void {
    const box = document.querySelector<HTMLElement>('#quality-body .progress');
    if (!box) return;
    box.hidden = false;
    $('.bar', box).style.width = total ? `${((100 * done) / total).toFixed(1)}%` : '0%';
    $('.progress-text', box).textContent = `${stage}…`;
  }

  private render(r: QualityReport): Node[] {
    const m = r.memorization;
    const base = m.realToReal?.p5;
    const copies = base !== undefined && base > 0 && m.syntheticToReal.p5 < COPY_RATIO * base;
    const verdict = base === undefined
      ? h('p', { class: 'small muted', text: 'Too few tiles for a memorization baseline.' })
      : copies
        ? h('p', { class: 'msg tone-warn', 'data-testid': 'memorization-verdict', text: 'Some generated tiles are much closer to one of your tiles than your tiles are to each other. Look at the pairs below for copies before sharing exported images.' })
        : h('p', { class: 'msg tone-ok', 'data-testid': 'memorization-verdict', text: 'No sign of copying: generated tiles are not closer to your tiles than your tiles are to each other.' });
    const rows: [string, string][] = [
      ['FID (lower is better)', fmt(r.fid, 2)],
      ['KID (lower is better)', `${fmt(r.kid.mean, 4)} ± ${fmt(r.kid.std, 4)}`],
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
      h('table', { class: 'quality-table' }, h('tbody', {}, ...rows.map(([k, v]) => h('tr', {}, h('td', { text: k }), h('td', { class: 'num', text: v }))))),
      verdict,
      h('p', { class: 'small muted', text: `Closest generated (left) / real (right) pairs and their distance. Features: ${r.extractor.description}.` }),
      pairs,
    ];
  }
}
