import type { ExportResult } from '../api.ts';
import { $, formatBytes, formatCount, h } from './dom.ts';

/** Step 5: counts per class, the export button, progress, and the download of the ZIP the worker built. */

const DEFAULT_COUNT = 16;

export class ExportPanel {
  private classes: string[] = [];
  private busy = false;

  constructor(private readonly exportSynthetic: (perClass: Record<string, number>) => Promise<ExportResult>) {
    $('#export').addEventListener('click', () => void this.run());
  }

  setClasses(classes: string[]): void {
    if (classes.join() === this.classes.join()) return;
    this.classes = [...classes];
    $('#export-counts').replaceChildren(
      ...classes.map((c) =>
        h('label', {}, c, h('input', { type: 'number', min: 0, max: 100000, step: 1, value: DEFAULT_COUNT, 'data-testid': `export-count-${c}`, 'data-class': c, 'aria-label': `Number of ${c} images` })),
      ),
    );
  }

  progress(done: number, total: number, stage: string): void {
    const box = $('#export-progress');
    box.hidden = false;
    $('.bar', box).style.width = total ? `${((100 * done) / total).toFixed(1)}%` : '0%';
    $('.progress-text', box).textContent = stage === 'generating' ? `Generating ${formatCount(done)} of ${formatCount(total)} images…` : `${stage.charAt(0).toUpperCase()}${stage.slice(1)}…`;
  }

  private async run(): Promise<void> {
    if (this.busy) return;
    const msg = $('#export-msg');
    const perClass: Record<string, number> = {};
    for (const input of Array.from(document.querySelectorAll<HTMLInputElement>('#export-counts input'))) {
      const n = Number(input.value);
      if (!Number.isInteger(n) || n < 0 || n > 100_000) {
        msg.className = 'msg tone-error';
        msg.textContent = `The number of ${input.dataset.class} images must be a whole number from 0 to 100,000.`;
        return;
      }
      perClass[input.dataset.class!] = n;
    }
    this.busy = true;
    const button = $<HTMLButtonElement>('#export');
    button.disabled = true;
    msg.className = 'msg';
    msg.textContent = '';
    try {
      const res = await this.exportSynthetic(perClass);
      const url = URL.createObjectURL(new Blob([res.bytes as Uint8Array<ArrayBuffer>], { type: 'application/zip' }));
      const a = h('a', { href: url, download: res.fileName });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      const total = Object.values(res.counts).reduce((x, y) => x + y, 0);
      msg.className = 'msg tone-ok';
      msg.textContent = `Saved ${res.fileName}: ${formatCount(total)} images from the round-${res.round} model (${formatBytes(res.bytes.byteLength)}).`;
    } catch (e) {
      msg.className = 'msg tone-error';
      msg.textContent = `The export failed: ${(e as Error).message}`;
    } finally {
      this.busy = false;
      button.disabled = false;
      $('#export-progress').hidden = true;
    }
  }
}
