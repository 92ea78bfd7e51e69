import type { RoundRecord } from '../api.ts';
import { CanvasChart } from './canvasChart.ts';
import { axisTicks } from './chartAxis.ts';

/**
 * Live chart of the discriminator (D) and generator (G) losses on a canvas: thin lines for this
 * hospital's local training (read back a few times a second), dots joined by dashes for the
 * federation's example-weighted mean of each completed round. The x axis counts rounds. The canvas's
 * `data-local-points` and `data-rounds` attributes say how many of each it holds (the e2e tests read them).
 */

const COLORS = { d: '#1f5f99', g: '#c0561b', grid: '#e3e8ee', axis: '#5b6775', text: '#5b6775' };
const MAX_POINTS = 4000;

export class LossChart extends CanvasChart {
  private local: { x: number; d: number; g: number }[] = [];
  private global = new Map<number, { d: number; g: number }>();

  addLocal(x: number, d: number, g: number): void {
    this.local.push({ x, d, g });
    if (this.local.length > MAX_POINTS) this.local.splice(0, this.local.length - MAX_POINTS);
    this.changed();
  }

  setRound(r: RoundRecord): void {
    if (Number.isFinite(r.dLoss) && Number.isFinite(r.gLoss)) this.global.set(r.round, { d: r.dLoss, g: r.gLoss });
    this.changed();
  }

  clear(): void {
    this.local = [];
    this.global.clear();
    this.changed();
  }

  private changed(): void {
    this.canvas.dataset.localPoints = String(this.local.length);
    this.canvas.dataset.rounds = String(this.global.size);
    this.schedule();
  }

  get isEmpty(): boolean {
    return this.local.length === 0 && this.global.size === 0;
  }

  protected draw(ctx: CanvasRenderingContext2D, w: number, hgt: number): void {
    const pad = { l: 40, r: 12, t: 10, b: 24 };
    const pw = w - pad.l - pad.r;
    const ph = hgt - pad.t - pad.b;

    const globals = [...this.global.entries()].sort((a, b) => a[0] - b[0]);
    const xs = [...this.local.map((p) => p.x), ...globals.map(([r]) => r)];
    const ys = [...this.local.flatMap((p) => [p.d, p.g]), ...globals.flatMap(([, v]) => [v.d, v.g])];
    if (xs.length === 0) {
      ctx.fillStyle = COLORS.text;
      ctx.textAlign = 'center';
      ctx.fillText('Losses appear here once training starts.', w / 2, hgt / 2);
      return;
    }
    const xMax = Math.max(1, Math.ceil(Math.max(...xs)));
    const xMin = Math.max(0, Math.floor(Math.min(...xs)));
    const yMin = Math.min(0, ...ys);
    const yTop = Math.max(...ys);
    const yMax = yTop <= yMin ? yMin + 1 : yMin + (yTop - yMin) * 1.08;
    const X = (x: number) => pad.l + ((x - xMin) / Math.max(1e-9, xMax - xMin)) * pw;
    const Y = (y: number) => pad.t + ph - ((y - yMin) / (yMax - yMin)) * ph;

    // Grid and axes.
    ctx.strokeStyle = COLORS.grid;
    ctx.fillStyle = COLORS.text;
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const { value: y, label } of axisTicks(yMin, yMax)) {
      ctx.beginPath();
      ctx.moveTo(pad.l, Y(y) + 0.5);
      ctx.lineTo(w - pad.r, Y(y) + 0.5);
      ctx.stroke();
      ctx.fillText(label, pad.l - 6, Y(y));
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const xStep = Math.max(1, Math.ceil((xMax - xMin) / 10));
    for (let r = xMin; r <= xMax; r += xStep) {
      ctx.beginPath();
      ctx.moveTo(X(r) + 0.5, pad.t);
      ctx.lineTo(X(r) + 0.5, pad.t + ph);
      ctx.stroke();
      ctx.fillText(String(r), X(r), pad.t + ph + 6);
    }
    ctx.strokeStyle = COLORS.axis;
    ctx.beginPath();
    ctx.moveTo(pad.l + 0.5, pad.t);
    ctx.lineTo(pad.l + 0.5, pad.t + ph + 0.5);
    ctx.lineTo(w - pad.r, pad.t + ph + 0.5);
    ctx.stroke();

    // Local losses: thin lines.
    for (const key of ['d', 'g'] as const) {
      ctx.strokeStyle = COLORS[key];
      ctx.globalAlpha = 0.55;
      ctx.lineWidth = 1.25;
      ctx.beginPath();
      this.local.forEach((p, i) => (i === 0 ? ctx.moveTo(X(p.x), Y(p[key])) : ctx.lineTo(X(p.x), Y(p[key]))));
      ctx.stroke();
      ctx.globalAlpha = 1;
      // Federation means: dots and dashes.
      if (globals.length) {
        ctx.setLineDash([4, 3]);
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        globals.forEach(([r, v], i) => (i === 0 ? ctx.moveTo(X(r), Y(v[key])) : ctx.lineTo(X(r), Y(v[key]))));
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = COLORS[key];
        for (const [r, v] of globals) {
          ctx.beginPath();
          ctx.arc(X(r), Y(v[key]), 3.5, 0, Math.PI * 2);
          ctx.fill();
        }
      }
    }
  }
}
