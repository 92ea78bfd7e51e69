import type { TileConflict, TileListItem, TileSummary, WorkerApi } from '../api.ts';
import { plural } from '../plural.ts';
import { $, formatCount, h } from './dom.ts';

/**
 * Step 3's tile management, all on this computer (IndexedDB in the worker; no network):
 * - images found under two classes, each with "It is <class>" buttons and "Remove it";
 * - the tile list, a page at a time with thumbnails, filtered by class, where one tile can be moved to
 *   another class or removed.
 */

export type TileListApi = Pick<WorkerApi, 'listTiles' | 'listConflicts' | 'relabelTile' | 'removeTile' | 'resolveConflict'>;

/** Tiles per page of the list. */
export const PAGE_SIZE = 20;

/** A canvas showing RGB bytes (`size × size × 3`), described for screen readers. */
function thumbnail(pixels: Uint8Array, size: number, label: string): HTMLCanvasElement {
  const canvas = h('canvas', { class: 'thumb', width: size, height: size, role: 'img', 'aria-label': label });
  const ctx = canvas.getContext('2d');
  if (ctx) {
    const img = ctx.createImageData(size, size);
    for (let i = 0, j = 0; i < size * size; i++, j += 3) {
      img.data[i * 4] = pixels[j];
      img.data[i * 4 + 1] = pixels[j + 1];
      img.data[i * 4 + 2] = pixels[j + 2];
      img.data[i * 4 + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }
  return canvas;
}

/** The last part of a path (the file name), for short labels. */
function fileName(path: string): string {
  return path.split('/').pop() || path;
}

export class TileList {
  private classes: string[] = [];
  private counts: Record<string, number> = {};
  private offset = 0;
  private filter = '';
  private conflictCount = -1;
  /** Bumped on every reload, so a slow answer does not overwrite a newer one. */
  private generation = 0;
  /**
   * Where the keyboard focus goes once the list is redrawn after an edit (the edited item is gone or
   * rebuilt): the item at this position in the tile list or the conflict list, or the message.
   */
  private refocus?: { list: 'tiles' | 'conflicts'; index: number };

  constructor(private readonly api: TileListApi) {
    const filter = $<HTMLSelectElement>('#tile-filter');
    filter.addEventListener('change', () => {
      this.filter = filter.value;
      this.offset = 0;
      void this.reload();
    });
    $('#tile-prev').addEventListener('click', () => {
      this.offset = Math.max(0, this.offset - PAGE_SIZE);
      void this.reload($('#tile-prev'));
    });
    $('#tile-next').addEventListener('click', () => {
      this.offset += PAGE_SIZE;
      void this.reload($('#tile-next'));
    });
    $<HTMLDetailsElement>('#tile-browser').addEventListener('toggle', () => {
      if ($<HTMLDetailsElement>('#tile-browser').open) void this.reload();
    });
  }

  setClasses(classes: readonly string[]): void {
    this.classes = [...classes];
    this.renderFilter();
  }

  /** New counts (import, edit, delete): refresh the conflicts and, when open, the list. */
  update(s: TileSummary): void {
    this.counts = { ...s.counts, ...s.otherLabels };
    this.renderFilter();
    $('#tile-browser').hidden = s.total === 0;
    if (s.conflicts !== this.conflictCount || s.conflicts > 0) void this.reloadConflicts(s.conflicts);
    this.conflictCount = s.conflicts;
    if ($<HTMLDetailsElement>('#tile-browser').open) void this.reload();
  }

  private renderFilter(): void {
    const select = $<HTMLSelectElement>('#tile-filter');
    const total = Object.values(this.counts).reduce((a, b) => a + b, 0);
    const labels = [...new Set([...this.classes, ...Object.keys(this.counts)])];
    select.replaceChildren(
      h('option', { value: '', text: `All classes (${formatCount(total)})` }),
      ...labels.map((c) => h('option', { value: c, text: `${c} (${formatCount(this.counts[c] ?? 0)})` })),
    );
    if (!labels.includes(this.filter)) this.filter = '';
    select.value = this.filter;
  }

  private say(text: string, tone: 'ok' | 'error' | 'neutral' = 'neutral'): void {
    const el = $('#tile-list-msg');
    el.textContent = text;
    el.className = `msg tone-${tone}`;
  }

  /**
   * Run an edit; the worker then sends new counts, which refresh the views. `from` is the edited item, so
   * that the keyboard focus stays at its place in the list instead of falling back to the page.
   */
  private async edit(what: () => Promise<void>, done: string, from?: { list: 'tiles' | 'conflicts'; item: HTMLElement }): Promise<void> {
    const hadFocus = from?.item.contains(document.activeElement) ?? false;
    try {
      if (from && hadFocus) this.refocus = { list: from.list, index: [...(from.item.parentElement?.children ?? [])].indexOf(from.item) };
      await what();
      this.say(done, 'ok');
    } catch (e) {
      this.refocus = undefined;
      this.say(`Nothing was changed: ${(e as Error).message}`, 'error');
    }
  }

  /** After a redraw: focus the first control of the item now at the remembered place, else the message. */
  private restoreFocus(list: 'tiles' | 'conflicts'): void {
    if (this.refocus?.list !== list) return;
    const items = [...$(list === 'tiles' ? '#tile-grid' : '#conflict-list').querySelectorAll<HTMLElement>(list === 'tiles' ? '[data-testid=tile-item]' : '[data-testid=tile-conflict]')];
    const item = items[Math.min(this.refocus.index, items.length - 1)];
    this.refocus = undefined;
    const control = item?.querySelector<HTMLElement>('select, button');
    (control ?? $('#tile-list-msg')).focus();
  }

  // ---- images in two classes ----------------------------------------------------------------------------

  private async reloadConflicts(n: number): Promise<void> {
    const box = $('#tile-conflicts');
    if (n === 0) {
      box.hidden = true;
      $('#conflict-list').replaceChildren();
      this.restoreFocus('conflicts');
      return;
    }
    let conflicts: TileConflict[];
    try {
      conflicts = await this.api.listConflicts();
    } catch (e) {
      this.say(`Could not read the images found in two classes: ${(e as Error).message}`, 'error');
      return;
    }
    box.hidden = conflicts.length === 0;
    $('#conflict-title').textContent = `${plural(conflicts.length, 'image')} found in more than one class`;
    $('#conflict-list').replaceChildren(...conflicts.map((c) => this.conflictItem(c)));
    this.restoreFocus('conflicts');
  }

  private conflictItem(c: TileConflict): HTMLElement {
    const labels = [...new Set(c.claims.map((x) => x.label))];
    const name = fileName(c.claims[0].name);
    // The buttons are described by the paths, so a screen reader says which image they settle.
    const claimsId = `conflict-${c.hash.slice(0, 16)}`;
    const actions = labels.map((l) =>
      h('button', { class: 'btn compact', type: 'button', 'data-testid': `resolve-${l}`, 'aria-describedby': claimsId, text: `It is ${l}` }),
    );
    const drop = h('button', { class: 'btn compact danger', type: 'button', 'data-testid': 'resolve-remove', 'aria-describedby': claimsId, text: 'Remove it' });
    const item = h(
      'li',
      { class: 'conflict', 'data-testid': 'tile-conflict', 'data-hash': c.hash },
      thumbnail(c.pixels, c.size, `The image ${name}`),
      h(
        'div',
        { class: 'conflict-body' },
        h('ul', { class: 'claims', id: claimsId }, ...c.claims.map((x) => h('li', {}, h('span', { class: 'path', text: x.name }), ` — in ${x.label}`))),
        h('div', { class: 'row' }, ...actions, drop),
      ),
    );
    const from = { list: 'conflicts' as const, item };
    actions.forEach((b, i) => b.addEventListener('click', () => void this.edit(() => this.api.resolveConflict(c.hash, labels[i]), `${name} is now a ${labels[i]} tile.`, from)));
    drop.addEventListener('click', () => void this.edit(() => this.api.resolveConflict(c.hash, null), `${name} was removed from this computer.`, from));
    return item;
  }

  // ---- the tile list ------------------------------------------------------------------------------------

  private async reload(focusAfter?: HTMLElement): Promise<void> {
    const gen = ++this.generation;
    let page;
    try {
      page = await this.api.listTiles({ ...(this.filter ? { label: this.filter } : {}), offset: this.offset, limit: PAGE_SIZE });
      // The last page shrank (tiles removed): show the page that now holds the last tiles.
      if (page.tiles.length === 0 && page.total > 0 && this.offset > 0) {
        this.offset = Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE;
        page = await this.api.listTiles({ ...(this.filter ? { label: this.filter } : {}), offset: this.offset, limit: PAGE_SIZE });
      }
    } catch (e) {
      if (gen === this.generation) this.say(`Could not read the tiles: ${(e as Error).message}`, 'error');
      return;
    }
    if (gen !== this.generation) return;
    const grid = $('#tile-grid');
    grid.replaceChildren(...page.tiles.map((t) => this.tileItem(t)));
    if (page.total === 0) grid.append(h('li', { class: 'muted empty', text: this.filter ? `No ${this.filter} tiles.` : 'No tiles yet.' }));
    const first = page.total === 0 ? 0 : page.offset + 1;
    $('#tile-range').textContent = `Tiles ${formatCount(first)}–${formatCount(page.offset + page.tiles.length)} of ${formatCount(page.total)}`;
    const prev = $<HTMLButtonElement>('#tile-prev');
    const next = $<HTMLButtonElement>('#tile-next');
    prev.disabled = page.offset === 0;
    next.disabled = page.offset + page.tiles.length >= page.total;
    this.restoreFocus('tiles');
    // Keep keyboard focus on the pager; when its button became disabled, on the other one.
    if (focusAfter) {
      const target = (focusAfter as HTMLButtonElement).disabled ? (focusAfter === prev ? next : prev) : focusAfter;
      if (!(target as HTMLButtonElement).disabled) target.focus();
    }
  }

  private tileItem(t: TileListItem): HTMLElement {
    const name = fileName(t.name);
    const others = this.classes.filter((c) => c !== t.label);
    const select = h(
      'select',
      { 'aria-label': `New class for ${name}`, 'data-testid': 'tile-move-class' },
      ...others.map((c) => h('option', { value: c, text: c })),
    );
    // With one other class, one button says where the tile goes; with more, choose the class, then Move.
    const single = others.length === 1;
    const move = h('button', { class: 'btn compact', type: 'button', 'data-testid': 'tile-move', 'aria-label': single ? `Move to ${others[0]}: ${name}` : `Move ${name} to the chosen class`, text: single ? `Move to ${others[0]}` : 'Move' });
    const remove = h('button', { class: 'btn compact danger', type: 'button', 'data-testid': 'tile-remove', 'aria-label': `Remove ${name}`, text: 'Remove' });
    const item = h(
      'li',
      { class: 'tile-item', 'data-testid': 'tile-item', 'data-hash': t.hash, 'data-label': t.label },
      thumbnail(t.pixels, t.size, `Tile ${name}`),
      h(
        'div',
        { class: 'tile-body' },
        h('span', { class: 'path', title: t.name, text: t.name }),
        h('span', { class: 'tile-class', text: t.label }),
        h('div', { class: 'row' }, others.length > 1 ? select : null, others.length ? move : null, remove),
      ),
    );
    const from = { list: 'tiles' as const, item };
    move.addEventListener('click', () => {
      const to = single ? others[0] : select.value;
      void this.edit(() => this.api.relabelTile(t.hash, to), `${name} moved from ${t.label} to ${to}.`, from);
    });
    remove.addEventListener('click', () => void this.edit(() => this.api.removeTile(t.hash), `${name} was removed from this computer (import the file again to bring it back).`, from));
    return item;
  }
}
