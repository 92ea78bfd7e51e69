/** Small DOM and formatting helpers for the page (no framework). */

export function $<T extends HTMLElement = HTMLElement>(selector: string, root: ParentNode = document): T {
  const el = root.querySelector<T>(selector);
  if (!el) throw new Error(`page element ${selector} is missing`);
  return el;
}

type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | number | boolean | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export function formatBytes(n: number): string {
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

export function formatTime(ms: number): string {
  return new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Run `fn` at most once per animation frame, with the latest arguments. */
export function perFrame<A extends unknown[]>(fn: (...a: A) => void): (...a: A) => void {
  let pending: A | undefined;
  return (...a: A) => {
    const first = pending === undefined;
    pending = a;
    if (first) {
      requestAnimationFrame(() => {
        const args = pending!;
        pending = undefined;
        fn(...args);
      });
    }
  };
}

/**
 * Show progress in a `.progress` box: the bar's width and, for screen readers, the value of its `.track`
 * (role="progressbar", 0–100). `fraction` undefined: progress unknown (the value is removed).
 */
export function setProgress(box: HTMLElement, fraction: number | undefined, text?: string): void {
  const track = $('.track', box);
  track.setAttribute('role', 'progressbar');
  track.setAttribute('aria-valuemin', '0');
  track.setAttribute('aria-valuemax', '100');
  if (!track.hasAttribute('aria-label') && !track.hasAttribute('aria-labelledby')) track.setAttribute('aria-label', 'Progress');
  const bar = $('.bar', box);
  if (fraction === undefined || !Number.isFinite(fraction)) {
    track.removeAttribute('aria-valuenow');
    bar.style.width = '0%';
  } else {
    const pct = Math.max(0, Math.min(100, fraction * 100));
    track.setAttribute('aria-valuenow', String(Math.round(pct)));
    bar.style.width = `${pct.toFixed(1)}%`;
  }
  if (text !== undefined) {
    const label = box.querySelector<HTMLElement>('.progress-text');
    if (label) label.textContent = text;
    if (text) track.setAttribute('aria-valuetext', text);
    else track.removeAttribute('aria-valuetext');
  }
}

/** A `.progress` box with an accessible progress bar (see setProgress) and a text line. */
export function progressBox(label: string): HTMLElement {
  return h(
    'div',
    { class: 'progress', hidden: true },
    h('div', { class: 'track', role: 'progressbar', 'aria-label': label, 'aria-valuemin': 0, 'aria-valuemax': 100 }, h('div', { class: 'bar' })),
    h('span', { class: 'progress-text' }),
  );
}
