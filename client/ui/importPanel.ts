import type { FederationInfo, ImportItem, ImportReport, TileSummary } from '../api.ts';
import { $, formatBytes, formatCount, h, setProgress } from './dom.ts';
import { plural } from '../plural.ts';
import { itemsFromDataTransfer, itemsFromFileList } from './dropSources.ts';
import { TileList, type TileListApi } from './tileList.ts';

/**
 * Step 3: drop zone and pickers, the import progress bar, tiles per class, storage use, the list of
 * files that were not imported (with the reason), and the tile list (ui/tileList.ts: images found in two
 * classes, relabel or remove one tile). The files themselves go straight to the worker.
 */

const MAX_LISTED = 200;

/** Files handed to the worker per message: cloning a File costs the page ~0.3 ms. */
const STAGE_CHUNK = 64;

export interface ImportPanelDeps {
  stage(items: ImportItem[]): Promise<number>;
  importStaged(looseClass?: string): Promise<ImportReport>;
  /** Called once before the first import: ask the browser to keep this site's storage. */
  persistStorage(): Promise<void>;
  /** Listing and editing stored tiles (the worker's IndexedDB; no network). */
  tiles: TileListApi;
}

export class ImportPanel {
  private classes: string[] = [];
  private busy = false;
  private persistAsked = false;
  private readonly tileList: TileList;

  constructor(private readonly deps: ImportPanelDeps) {
    this.tileList = new TileList(deps.tiles);
    const zone = $('#dropzone');
    zone.addEventListener('dragover', (e) => {
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
      zone.classList.add('over');
    });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      if (!e.dataTransfer) return;
      const pending = itemsFromDataTransfer(e.dataTransfer, (n) => this.showProgress(0, n, `Reading the dropped folders: ${formatCount(n)} files found…`));
      void this.run(pending);
    });
    // Dropping outside the zone must not navigate away from the page.
    window.addEventListener('dragover', (e) => e.preventDefault());
    window.addEventListener('drop', (e) => e.preventDefault());
    for (const id of ['#tile-input', '#folder-input']) {
      const input = $<HTMLInputElement>(id);
      input.addEventListener('change', () => {
        const items = input.files ? itemsFromFileList(input.files) : [];
        input.value = '';
        if (items.length) void this.run(Promise.resolve(items));
      });
    }
  }

  setFederation(info: FederationInfo): void {
    if (info.classes.join() === this.classes.join()) return;
    this.classes = [...info.classes];
    this.tileList.setClasses(info.classes);
    $('#drop-hint').textContent = `Put tiles in folders named ${info.classes.map((c) => `“${c}”`).join(' or ')}. They are resized to ${info.imageSize} × ${info.imageSize} px.`;
    const select = $<HTMLSelectElement>('#loose-class');
    const keep = select.value;
    select.replaceChildren(h('option', { value: '', text: 'not imported' }), ...info.classes.map((c) => h('option', { value: c, text: `labelled ${c}` })));
    select.value = info.classes.includes(keep) ? keep : '';
  }

  setSummary(s: TileSummary, info?: FederationInfo): void {
    const classes = Object.keys(s.counts);
    $('#counts').replaceChildren(
      ...classes.map((c) => h('tr', {}, h('td', { text: c }), h('td', { class: 'num', 'data-testid': `tile-count-${c}`, text: formatCount(s.counts[c]) }))),
    );
    $('#count-total').textContent = formatCount(classes.reduce((n, c) => n + s.counts[c], 0));
    const warnings: string[] = [];
    const others = Object.entries(s.otherLabels);
    if (others.length) warnings.push(`${others.map(([l, n]) => `${formatCount(n)} tiles labelled “${l}”`).join(', ')} are not used: this federation’s classes are ${classes.join(', ')}.`);
    if (s.otherSize > 0 && info) warnings.push(`${formatCount(s.otherSize)} tiles were imported at another size and are not used at ${info.imageSize} px: delete the data and import them again.`);
    const empty = classes.filter((c) => s.counts[c] === 0);
    if (s.total > 0 && empty.length && empty.length < classes.length) warnings.push(`No tiles yet for ${empty.join(', ')}.`);
    const warn = $('#tiles-warning');
    warn.textContent = warnings.join(' ');
    warn.hidden = warnings.length === 0;
    this.tileList.update(s);
    $('#storage-line').textContent = s.storage
      ? `Browser storage: ${formatBytes(s.storage.usage)} used of ${formatBytes(s.storage.quota)} available${s.storage.persisted ? ' · kept by the browser (persistent)' : ''}.`
      : '';
  }

  progress(p: { done: number; total: number; added: number; duplicates: number; rejected: number }): void {
    this.showProgress(p.done, p.total, `${formatCount(p.done)} of ${formatCount(p.total)} files · ${formatCount(p.added)} added · ${formatCount(p.duplicates)} duplicates · ${formatCount(p.rejected)} not imported`);
  }

  private showProgress(done: number, total: number, text: string): void {
    const box = $('#import-progress');
    box.hidden = false;
    setProgress(box, total > 0 ? done / total : 0, text);
  }

  private async run(pending: Promise<ImportItem[]>): Promise<void> {
    const out = $('#import-report');
    if (this.busy) {
      out.replaceChildren(h('p', { class: 'summary tone-warn', text: 'An import is already running: wait for it to finish, then add more tiles.' }));
      return;
    }
    this.busy = true;
    out.replaceChildren();
    try {
      if (!this.persistAsked) {
        this.persistAsked = true;
        await this.deps.persistStorage().catch(() => {});
      }
      const items = await pending;
      for (let i = 0; i < items.length; i += STAGE_CHUNK) {
        this.showProgress(i, items.length, `Preparing ${formatCount(items.length)} files…`);
        await this.deps.stage(items.slice(i, i + STAGE_CHUNK));
      }
      const loose = $<HTMLSelectElement>('#loose-class').value || undefined;
      const report = await this.deps.importStaged(loose);
      this.showReport(report);
    } catch (e) {
      out.replaceChildren(h('p', { class: 'summary tone-error', text: `The import failed: ${(e as Error).message}` }));
    } finally {
      this.busy = false;
      $('#import-progress').hidden = true;
    }
  }

  private showReport(r: ImportReport): void {
    const parts = [`${plural(r.added, 'tile')} added`];
    if (r.duplicates) parts.push(`${plural(r.duplicates, 'duplicate')} skipped (already imported)`);
    if (r.rejected.length) parts.push(`${plural(r.rejected.length, 'file')} not imported`);
    if (r.conflicts.length) parts.push(`${plural(r.conflicts.length, 'file')} already in another class`);
    if (r.ignored) parts.push(`${plural(r.ignored, 'system file')} ignored`);
    const nodes: Node[] = [h('p', { class: `summary ${r.rejected.length || r.conflicts.length || r.stopped ? 'tone-warn' : 'tone-ok'}`, 'data-testid': 'import-summary', text: `${parts.join(' · ')} (${r.seconds.toFixed(1)} s).` })];
    if (r.stopped) nodes.push(h('p', { class: 'summary tone-error', role: 'alert', text: r.stopped.charAt(0).toUpperCase() + r.stopped.slice(1) }));
    if (r.conflicts.length) {
      nodes.push(
        h('p', {
          class: 'summary tone-warn',
          'data-testid': 'import-conflicts',
          text: `${plural(r.conflicts.length, 'file')} ${r.conflicts.length === 1 ? 'is' : 'are'} the same image as a tile of another class, so ${r.conflicts.length === 1 ? 'its' : 'their'} class is not known: ${r.conflicts.length === 1 ? 'it is' : 'they are'} not used for training until you choose below.`,
        }),
      );
    }
    if (r.rejected.length) {
      // Scrolls when long: focusable so that keyboard users can scroll it too.
      const list = h('ul', { 'data-testid': 'rejected-files', tabindex: 0, 'aria-label': 'Files not imported, with the reason' });
      for (const x of r.rejected.slice(0, MAX_LISTED)) list.append(h('li', {}, h('span', { class: 'path', text: x.path }), ` — ${x.reason}`));
      if (r.rejected.length > MAX_LISTED) list.append(h('li', { class: 'muted', text: `…and ${formatCount(r.rejected.length - MAX_LISTED)} more.` }));
      nodes.push(h('details', { open: r.rejected.length <= 20 }, h('summary', { text: `Files not imported (${formatCount(r.rejected.length)})` }), list));
    }
    $('#import-report').replaceChildren(...nodes);
  }
}
