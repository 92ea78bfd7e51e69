import type { RoundRecord } from '../api.ts';
import { CanvasChart } from './canvasChart.ts';
import { axisTicks } from './chartAxis.ts';

/**
 * The quality curve of the federation: the KID the server recorded every few rounds (the example-weighted
 * mean of the hospitals' probes of the global model they received; docs/quality.md, "Quality tracked
 * during training"), plotted against the round of the model measured. Lower is better; the best model is
 * ringed. Points come from round-complete messages and the /api/status history.
 */

const COLORS = { line: '#2e7d4f', best: '#1b4d30', grid: '#e3e8ee', axis: '#5b6775', text: '#5b6775' };

export interface QualityPointView {
  /** The round whose global model was measured. */
  round: number;
  kid: number;
  hospitals: number;
  features: string;
}

/** The curve's points from round records, by model round (the latest record wins), sorted; the best (lowest KID). */
export function qualityPoints(records: Iterable<RoundRecord>): { points: QualityPointView[]; best: QualityPointView | null } {
  const byRound = new Map<number, QualityPointView>();
  for (const r of records) {
    const q = r.quality;
    if (q && Number.isFinite(q.kid)) byRound.set(q.round, { round: q.round, kid: q.kid, hospitals: q.hospitals, features: q.features });
  }
  const points = [...byRound.values()].sort((a, b) => a.round - b.round);
  let best: QualityPointView | null = null;
  for (const p of points) if (best === null || p.kid < best.kid) best = p;
  return { points, best };
}

/** What the empty chart says while no point is known. */
export const QUALITY_PENDING = 'The quality curve appears once the hospitals have checked a global model.';

/**
 * The empty chart's sentence, from the federation's schedule (FedConfig `quality.everyRounds`; undefined:
 * not known, an older server): the hospitals probe the models of rounds N, 2N, … and report each with the
 * round after (shared/fed/qualitySchedule.ts), so a federation of N rounds or fewer is never checked during
 * training, and saying "appears once…" there would promise a curve that never comes.
 */
export function qualityEmptyText(everyRounds: number | undefined, rounds: number): string {
  if (everyRounds === undefined || !Number.isFinite(everyRounds)) return QUALITY_PENDING;
  if (everyRounds <= 0) return 'This federation does not check quality during training (its quality.everyRounds is 0).';
  const every = everyRounds === 1 ? 'after every round' : `every ${everyRounds} rounds`;
  if (rounds > 0 && rounds <= everyRounds) {
    return `No quality check during this federation: the hospitals check the global model ${every}, in the round after, and it has ${rounds} round${rounds === 1 ? '' : 's'}.`;
  }
  return `The hospitals check the global model ${every}: the first point comes with round ${everyRounds + 1}, for the model of round ${everyRounds}.`;
}

/** `text` broken into lines no wider than `width` by `measure` (words longer than a line stand alone). */
export function wrapText(text: string, width: number, measure: (s: string) => number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const next = line ? `${line} ${word}` : word;
    if (line && measure(next) > width) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

export class QualityChart extends CanvasChart {
  private readonly records = new Map<number, RoundRecord>();
  private emptyText = QUALITY_PENDING;

  /** The federation's quality schedule, for what the chart says before its first point (qualityEmptyText). */
  setSchedule(everyRounds: number | undefined, rounds: number): void {
    const text = qualityEmptyText(everyRounds, rounds);
    if (text === this.emptyText) return;
    this.emptyText = text;
    this.schedule();
  }

  setRound(r: RoundRecord): void {
    if (!r.quality) return;
    this.records.set(r.round, r);
    this.schedule();
  }

  clear(): void {
    this.records.clear();
    this.schedule();
  }

  protected draw(ctx: CanvasRenderingContext2D, w: number, hgt: number): void {
    const { points, best } = qualityPoints(this.records.values());
    if (points.length === 0) {
      ctx.fillStyle = COLORS.text;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      const lines = wrapText(this.emptyText, w - 24, (t) => ctx.measureText(t).width);
      const lineHeight = 15;
      lines.forEach((l, i) => ctx.fillText(l, w / 2, hgt / 2 + (i - (lines.length - 1) / 2) * lineHeight));
      return;
    }
    const pad = { l: 52, r: 12, t: 10, b: 24 };
    const pw = w - pad.l - pad.r;
    const ph = hgt - pad.t - pad.b;
    const xMin = Math.min(...points.map((p) => p.round));
    const xMax = Math.max(xMin + 1, ...points.map((p) => p.round));
    const kids = points.map((p) => p.kid);
    const yMin = Math.min(0, ...kids);
    const yTop = Math.max(...kids);
    const yMax = yTop <= yMin ? yMin + 1e-3 : yMin + (yTop - yMin) * 1.1;
    const X = (x: number) => pad.l + ((x - xMin) / (xMax - xMin)) * pw;
    const Y = (y: number) => pad.t + ph - ((y - yMin) / (yMax - yMin)) * ph;

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
    for (let r = xMin; r <= xMax; r += xStep) ctx.fillText(String(r), X(r), pad.t + ph + 6);
    ctx.strokeStyle = COLORS.axis;
    ctx.beginPath();
    ctx.moveTo(pad.l + 0.5, pad.t);
    ctx.lineTo(pad.l + 0.5, pad.t + ph + 0.5);
    ctx.lineTo(w - pad.r, pad.t + ph + 0.5);
    ctx.stroke();

    ctx.strokeStyle = COLORS.line;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    points.forEach((p, i) => (i === 0 ? ctx.moveTo(X(p.round), Y(p.kid)) : ctx.lineTo(X(p.round), Y(p.kid))));
    ctx.stroke();
    ctx.fillStyle = COLORS.line;
    for (const p of points) {
      ctx.beginPath();
      ctx.arc(X(p.round), Y(p.kid), 3.5, 0, Math.PI * 2);
      ctx.fill();
    }
    if (best) {
      ctx.strokeStyle = COLORS.best;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.arc(X(best.round), Y(best.kid), 7, 0, Math.PI * 2);
      ctx.stroke();
      ctx.fillStyle = COLORS.best;
      ctx.textAlign = 'left';
      ctx.textBaseline = 'bottom';
      const label = `best: round ${best.round}`;
      const lx = Math.min(X(best.round) + 9, w - pad.r - ctx.measureText(label).width);
      ctx.fillText(label, lx, Math.max(pad.t + 12, Y(best.kid) - 6));
    }
  }
}
