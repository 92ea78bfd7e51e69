/**
 * The global model, seen: the sample grids the server draws after each round (newest large, the kept
 * earlier ones below, each fetched with the operator token) and the checkpoint download.
 */
import { $, h } from '../ui/dom.ts';
import type { ConsoleApi, SampleGrid } from './api.ts';
import { ConsoleError } from './api.ts';
import { say, saveFile } from './ui.ts';

export class ModelView {
  /** round → object URL of its PNG (kept: the grids of a round never change). */
  private readonly images = new Map<number, string>();
  private classes: string[] = [];
  private loading: Promise<void> | null = null;
  private shownKey = '';
  /** The newest round with a grid shown (-1: none), and when the list was last fetched. */
  latestRound = -1;
  lastLoadAt = 0;

  constructor(
    private readonly api: () => ConsoleApi,
    private readonly onRefused: (e: ConsoleError) => void,
  ) {
    $('#download-checkpoint').addEventListener('click', () => void this.download());
  }

  setClasses(classes: string[] | undefined): void {
    if (classes?.length) this.classes = classes;
  }

  private alt(round: number): string {
    const rows = this.classes.length ? `one row per class (${this.classes.join(', ')})` : 'one row per class';
    return round === 0 ? `Tiles drawn by the initial, untrained model: ${rows}` : `Tiles drawn by the global model after round ${round}: ${rows}`;
  }

  /** Fetch the list of grids and any image not fetched yet, then show them (one refresh at a time). */
  refresh(): Promise<void> {
    this.loading ??= this.load().finally(() => (this.loading = null));
    return this.loading;
  }

  private async load(): Promise<void> {
    this.lastLoadAt = Date.now();
    let grids: SampleGrid[];
    try {
      grids = await this.api().samples();
    } catch (e) {
      if (e instanceof ConsoleError && e.signInAgain) return this.onRefused(e);
      $('#latest-caption').textContent = `The sample grids could not be loaded: ${e instanceof Error ? e.message : String(e)}`;
      return;
    }
    grids = [...grids].sort((a, b) => b.round - a.round);
    for (const g of grids) {
      if (this.images.has(g.round)) continue;
      try {
        this.images.set(g.round, URL.createObjectURL(await this.api().sampleImage(g.url)));
      } catch {
        // Rotated out between the list and the fetch: shown at the next refresh, if still kept.
      }
    }
    const kept = new Set(grids.map((g) => g.round));
    for (const [round, url] of this.images) {
      if (!kept.has(round)) {
        URL.revokeObjectURL(url);
        this.images.delete(round);
      }
    }
    this.show(grids.filter((g) => this.images.has(g.round)));
  }

  private show(grids: SampleGrid[]): void {
    const key = grids.map((g) => g.round).join(',');
    if (key === this.shownKey) return;
    this.shownKey = key;
    const img = $<HTMLImageElement>('#latest-sample');
    const caption = $('#latest-caption');
    if (!grids.length) {
      img.hidden = true;
      img.removeAttribute('src');
      caption.textContent = 'No sample grid yet: the first appears after round 1.';
      this.latestRound = -1;
      $('#sample-history').replaceChildren();
      return;
    }
    const latest = grids[0];
    this.latestRound = latest.round;
    img.src = this.images.get(latest.round)!;
    img.alt = this.alt(latest.round);
    img.dataset.round = String(latest.round);
    img.hidden = false;
    caption.textContent = latest.round === 0 ? 'The initial, untrained model (noise is expected before round 1).' : `Latest: the global model after round ${latest.round}.`;
    $('#sample-history').replaceChildren(
      ...grids.map((g) =>
        h(
          'li',
          { 'data-round': g.round },
          h('figure', {}, h('img', { src: this.images.get(g.round)!, alt: this.alt(g.round) }), h('figcaption', { class: 'small', text: g.round === 0 ? 'Before round 1' : `After round ${g.round}` })),
        ),
      ),
    );
  }

  private async download(): Promise<void> {
    const msg = $('#checkpoint-msg');
    const button = $<HTMLButtonElement>('#download-checkpoint');
    button.disabled = true;
    say(msg, 'Downloading the checkpoint…', 'busy');
    try {
      const d = await this.api().checkpoint();
      saveFile(d.blob, d.fileName);
      say(msg, `Saved ${d.fileName} (${(d.blob.size / 1e6).toFixed(2)} MB). Check it with: npm run evaluate -- --checkpoint ${d.fileName} …`, 'ok');
    } catch (e) {
      if (e instanceof ConsoleError && e.signInAgain) return this.onRefused(e);
      say(msg, e instanceof ConsoleError && e.status === 404 ? 'There is no checkpoint yet: the first is saved when round 1 completes.' : `The checkpoint could not be downloaded: ${e instanceof Error ? e.message : String(e)}`, 'error');
    } finally {
      button.disabled = false;
    }
  }
}
