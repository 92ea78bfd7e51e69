/**
 * The console's sections as ARIA tabs (WAI-ARIA Authoring Practices, "Tabs with automatic activation"):
 * Left/Right (and Home/End) move between the tabs and show each; Tab goes into the shown panel. The shown
 * tab is kept in the address's fragment (`#hospitals`), so a reload or a bookmark opens it again.
 */
export class Tabs {
  private readonly tabs: HTMLButtonElement[];

  constructor(
    list: HTMLElement,
    private readonly onShow: (id: string) => void = () => {},
  ) {
    this.tabs = [...list.querySelectorAll<HTMLButtonElement>('[role=tab]')];
    for (const tab of this.tabs) {
      tab.addEventListener('click', () => this.show(this.idOf(tab), { focusTab: false }));
      tab.addEventListener('keydown', (e) => this.onKey(e, tab));
    }
  }

  /** The section's id (`overview`, `model`, …) of a tab. */
  private idOf(tab: HTMLElement): string {
    return tab.id.replace(/^tab-/, '');
  }

  get ids(): string[] {
    return this.tabs.map((t) => this.idOf(t));
  }

  get current(): string {
    return this.idOf(this.tabs.find((t) => t.getAttribute('aria-selected') === 'true') ?? this.tabs[0]);
  }

  show(id: string, opts: { focusTab?: boolean; focusPanel?: boolean } = {}): void {
    const tab = this.tabs.find((t) => this.idOf(t) === id) ?? this.tabs[0];
    for (const t of this.tabs) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      const panel = document.getElementById(t.getAttribute('aria-controls') ?? '');
      if (panel) panel.hidden = !on;
    }
    if (opts.focusTab) tab.focus();
    if (opts.focusPanel) document.getElementById(tab.getAttribute('aria-controls') ?? '')?.focus();
    const hash = `#${this.idOf(tab)}`;
    if (location.hash !== hash) history.replaceState(null, '', `${location.pathname}${location.search}${hash}`);
    this.onShow(this.idOf(tab));
  }

  private onKey(e: KeyboardEvent, tab: HTMLButtonElement): void {
    const i = this.tabs.indexOf(tab);
    let next = -1;
    if (e.key === 'ArrowRight') next = (i + 1) % this.tabs.length;
    else if (e.key === 'ArrowLeft') next = (i - 1 + this.tabs.length) % this.tabs.length;
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = this.tabs.length - 1;
    if (next < 0) return;
    e.preventDefault();
    this.show(this.idOf(this.tabs[next]), { focusTab: true });
  }
}
