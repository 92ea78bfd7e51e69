import { h } from './dom.ts';

/**
 * The sample grid: one row per class of images drawn by the global generator (the worker sends the grid
 * as RGBA pixels, rows = classes, built with shared/image/grid.ts). The same latent seed is used after
 * every round, so staff can watch the same tiles sharpen.
 */

export interface SamplesMessage {
  round: number;
  classes: string[];
  perClass: number;
  size: number;
  rgba: Uint8ClampedArray;
  width: number;
  height: number;
}

export function renderSamples(container: HTMLElement, caption: HTMLElement, s: SamplesMessage): void {
  const gap = Math.round((s.height - s.classes.length * s.size) / (s.classes.length + 1));
  const image = new ImageData(new Uint8ClampedArray(s.rgba.buffer as ArrayBuffer, s.rgba.byteOffset, s.rgba.byteLength), s.width, s.height);
  const rows: HTMLElement[] = [];
  s.classes.forEach((label, c) => {
    const canvas = h('canvas', { width: s.width, height: s.size + 2 * gap, class: s.size < 48 ? 'pixelated' : '', 'data-testid': `samples-${label}`, 'aria-label': `${s.perClass} generated ${label} tiles` });
    const y0 = c * (s.size + gap);
    canvas.getContext('2d')!.putImageData(image, 0, -y0, 0, y0, s.width, s.size + 2 * gap);
    rows.push(h('div', { class: 'sample-row' }, h('span', { class: 'sample-label', text: label }), canvas));
  });
  container.replaceChildren(...rows);
  caption.textContent =
    s.round === 0
      ? 'Samples from the initial, untrained model (noise is expected before round 1).'
      : `Samples from the global model after round ${s.round} (the same random inputs every round).`;
}
