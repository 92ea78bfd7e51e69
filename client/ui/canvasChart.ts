/**
 * What every chart on the page shares: redraws batched to one per animation frame (and on resize), and a
 * canvas sized to its CSS box at the device pixel ratio, cleared, with the charts' font. Subclasses draw
 * in CSS pixels.
 */
export abstract class CanvasChart {
  private scheduled = false;

  constructor(protected readonly canvas: HTMLCanvasElement) {
    new ResizeObserver(() => this.schedule()).observe(canvas);
  }

  /** Ask for a redraw on the next animation frame (several requests in one frame draw once). */
  protected schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.redraw();
    });
  }

  private redraw(): void {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (w === 0 || h === 0) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const ctx = c.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = '11px system-ui, sans-serif';
    this.draw(ctx, w, h);
  }

  /** Draw on a cleared canvas of `w` × `h` CSS pixels. */
  protected abstract draw(ctx: CanvasRenderingContext2D, w: number, h: number): void;
}
