import type { FederationInfo, FedStatus, MeasuredSpeed, RoundRecord } from '../api.ts';
import { $, formatCount, formatSeconds, formatTime, h } from './dom.ts';
import { etaLine } from './etaText.ts';
import { LossChart } from './lossChart.ts';
import { QualityChart } from './qualityChart.ts';
import { renderSamples, type SamplesMessage } from './sampleGrid.ts';
import { connectionBadge, statusLine } from './statusText.ts';

export interface TrainingPanelDeps {
  /** Run the speed check (the worker's measureSpeed); rejects with a message to show. */
  measureSpeed(): Promise<unknown>;
  /** Whether the speed check can run at all (a working engine, tiles imported). */
  canTrain(): boolean;
}

/**
 * Step 4: the status line, progress, the training-time line (expected time before training, time left
 * during a round; etaText.ts) with its "Measure speed" button, key figures, loss chart, sample grid, round
 * history and activity log.
 */
export class TrainingPanel {
  private status?: FedStatus;
  private info?: FederationInfo;
  private speed?: MeasuredSpeed;
  private measuring?: { done: number; total: number };
  private speedError?: string;
  private readonly history = new Map<number, RoundRecord>();
  private readonly chart = new LossChart($<HTMLCanvasElement>('#loss-chart'));
  private readonly qualityChart = new QualityChart($<HTMLCanvasElement>('#quality-chart'));
  private ticker?: ReturnType<typeof setInterval>;
  private historyDirty = false;

  constructor(private readonly deps?: TrainingPanelDeps) {
    $('#measure-speed').addEventListener('click', () => {
      if (!this.deps) return;
      this.speedError = undefined;
      this.deps.measureSpeed().catch((e: unknown) => {
        this.speedError = `The speed check failed: ${(e as Error).message}`;
        this.renderEta();
      });
    });
  }

  /** A new measurement of this computer's speed. */
  setSpeed(speed: MeasuredSpeed): void {
    this.speed = speed;
    this.speedError = undefined;
    this.renderEta();
  }

  /** A speed check started, progressed or ended. */
  speedProgress(running: boolean, done: number, total: number): void {
    this.measuring = running ? { done, total } : undefined;
    this.renderEta();
  }

  /** Tiles or the engine changed: whether the button may be offered. */
  refreshEta(): void {
    this.renderEta();
  }

  setStatus(s: FedStatus): void {
    this.status = s;
    this.render();
    // Count down the reconnect delay while the server is away.
    if (s.connection === 'retrying' && !this.ticker) this.ticker = setInterval(() => this.renderLine(), 1000);
    if (s.connection !== 'retrying' && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }

  setInfo(info: FederationInfo): void {
    this.info = info;
    for (const r of info.history) this.addRound(r, false);
    this.render();
  }

  addRound(r: RoundRecord, render = true): void {
    const known = this.history.get(r.round);
    this.history.set(r.round, { ...r, completedAt: r.completedAt ?? known?.completedAt });
    this.chart.setRound(r);
    this.qualityChart.setRound(r);
    this.historyDirty = true;
    if (render) this.renderHistory();
  }

  addLoss(x: number, d: number, g: number): void {
    this.chart.addLocal(x, d, g);
  }

  samples(s: SamplesMessage): void {
    renderSamples($('#samples'), $('#samples-caption'), s);
  }

  log(level: 'info' | 'warn' | 'error', message: string, at: number): void {
    const list = $('#activity');
    list.prepend(h('li', { class: level }, h('time', { text: formatTime(at) }), message));
    while (list.childElementCount > 200) list.lastElementChild!.remove();
  }

  reset(): void {
    this.speed = undefined;
    this.measuring = undefined;
    this.speedError = undefined;
    this.history.clear();
    this.chart.clear();
    this.qualityChart.clear();
    this.historyDirty = true;
    $('#samples').replaceChildren();
    $('#samples-caption').textContent = 'Samples from the global model appear after joining.';
    this.render();
  }

  private renderLine(): void {
    const line = statusLine(this.status);
    const el = $('#round-status');
    el.textContent = line.text;
    el.className = `status tone-${line.tone}`;
    const bar = $('#train-progress');
    bar.hidden = line.progress === undefined;
    if (line.progress !== undefined) $('.bar', bar).style.width = `${(line.progress * 100).toFixed(1)}%`;
  }

  private renderEta(): void {
    const view = etaLine({ status: this.status, info: this.info, speed: this.speed, measuring: this.measuring });
    const el = $('#eta');
    el.textContent = this.speedError ?? view.text;
    el.classList.toggle('tone-error', this.speedError !== undefined);
    const button = $<HTMLButtonElement>('#measure-speed');
    button.hidden = !view.canMeasure || !this.deps;
    button.disabled = !(this.deps?.canTrain() ?? false);
    button.textContent = this.speed ? 'Measure again' : 'Measure speed';
    button.title = button.disabled ? 'Needs a working training engine and this hospital’s tiles' : 'Train a few steps of the federation’s model on this computer to estimate the training time (nothing is kept)';
  }

  private render(): void {
    this.renderLine();
    this.renderEta();
    const s = this.status;
    const badge = connectionBadge(s);
    const b = $('#conn-badge');
    b.textContent = badge.text;
    b.className = `badge tone-${badge.tone}`;
    const rounds = s?.rounds || this.info?.rounds || 0;
    const round = Math.max(s?.round ?? 0, this.info?.round ?? 0);
    $('#global-round').textContent = rounds ? `${round} / ${rounds}` : '–';
    $('#kpi-hospitals').textContent = s?.connectedHospitals !== undefined && s.connection === 'connected' ? `${s.connectedHospitals}${s.minAvailable ? ` (needs ${s.minAvailable})` : ''}` : '–';
    $('#kpi-hospital').textContent = s?.hospital ?? '–';
    $('#kpi-model').textContent = this.info ? `${this.info.ganType.toUpperCase()} · ${this.info.imageSize} px` : '–';
    const note = [s?.note, s?.error && s.connection !== 'refused' ? s.error : undefined].filter(Boolean).join(' ');
    const noteEl = $('#status-note');
    noteEl.textContent = note;
    noteEl.className = `small ${s?.error && s.connection !== 'refused' ? 'tone-error' : 'muted'}`;
    if (this.historyDirty) this.renderHistory();
  }

  private renderHistory(): void {
    this.historyDirty = false;
    const rows = [...this.history.values()].sort((a, b) => b.round - a.round);
    const body = $('#history');
    if (rows.length === 0) {
      body.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: 7, text: 'No round completed yet.' })));
      return;
    }
    body.replaceChildren(
      ...rows.map((r) =>
        h(
          'tr',
          { 'data-round': r.round },
          h('td', { text: String(r.round) }),
          h('td', { class: 'num', text: String(r.participants) }),
          h('td', { class: 'num', text: formatCount(r.examples) }),
          h('td', { class: 'num', text: r.dLoss.toFixed(3) }),
          h('td', { class: 'num', text: r.gLoss.toFixed(3) }),
          h('td', { class: 'num', text: formatSeconds(r.seconds) }),
          h('td', { text: r.completedAt ? new Date(r.completedAt).toLocaleString('en-GB', { dateStyle: 'short', timeStyle: 'medium' }) : '' }),
        ),
      ),
    );
  }
}
