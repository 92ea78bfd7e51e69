import { judgeOutput, latestProbe } from '../../shared/metrics/verdict.ts';
import type { ActivityEntry, FederationInfo, FedStatus, LossPoint, MeasuredSpeed, RoundRecord } from '../api.ts';
import { $, formatCount, formatSeconds, formatTime, h, setProgress } from './dom.ts';
import { etaLine } from './etaText.ts';
import { LossChart } from './lossChart.ts';
import { QualityChart } from './qualityChart.ts';
import { renderSamples, type SamplesMessage } from './sampleGrid.ts';
import { connectionBadge, statusLine, type StatusContext } from './statusText.ts';

export interface TrainingPanelDeps {
  /** Run the speed check (the worker's measureSpeed); rejects with a message to show. */
  measureSpeed(): Promise<unknown>;
  /** Stop the speed check in progress. */
  stopSpeedCheck(): Promise<void>;
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
  /** Whether this hospital has usable tiles (undefined until known): the first step asks for them first. */
  private hasTiles?: boolean;

  constructor(private readonly deps?: TrainingPanelDeps) {
    $('#measure-speed').addEventListener('click', () => {
      if (!this.deps) return;
      // While a check runs the button stops it: no progress without a way out.
      if (this.measuring) {
        void this.deps.stopSpeedCheck();
        return;
      }
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

  /** Whether this hospital has tiles the federation can train on. */
  setTiles(hasTiles: boolean): void {
    if (this.hasTiles === hasTiles) return;
    this.hasTiles = hasTiles;
    this.renderLine();
  }

  /** The worker's status snapshot; undefined: not taking part (a new hospital after "Delete my data"). */
  setStatus(s: FedStatus | undefined): void {
    this.status = s;
    this.render();
    // Count down the reconnect delay while the server is away (or the token is in use elsewhere).
    const countdown = s?.retryAt !== undefined && (s.connection === 'retrying' || s.connection === 'token-in-use');
    if (countdown && !this.ticker) this.ticker = setInterval(() => this.renderLine(), 1000);
    if (!countdown && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }

  setInfo(info: FederationInfo): void {
    this.info = info;
    this.qualityChart.setSchedule(info.qualityEveryRounds, info.rounds);
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

  /** What this browser kept from before a reload: the activity log (oldest first) and the loss lines. */
  restoreHistory(log: ActivityEntry[], losses: LossPoint[]): void {
    for (const p of losses) this.chart.addLocal(p.x, p.dLoss, p.gLoss);
    for (const e of log) this.log(e.level, e.message, e.at);
  }

  samples(s: SamplesMessage): void {
    renderSamples($('#samples'), $('#samples-caption'), s);
  }

  log(level: 'info' | 'warn' | 'error', message: string, at: number): void {
    const list = $('#activity');
    list.prepend(h('li', { class: level }, h('time', { text: formatTime(at) }), message));
    while (list.childElementCount > 200) list.lastElementChild!.remove();
  }

  /** A new hospital ("Delete my data"): nothing of the old one stays on the page. */
  reset(): void {
    this.status = undefined;
    this.speed = undefined;
    this.measuring = undefined;
    this.speedError = undefined;
    this.history.clear();
    this.chart.clear();
    this.qualityChart.clear();
    this.historyDirty = true;
    $('#samples').replaceChildren();
    $('#activity').replaceChildren();
    // The federation's public round history stays, as on a freshly opened page.
    if (this.info) for (const r of this.info.history) this.addRound(r, false);
    $('#samples-caption').textContent = 'Samples from the global model appear after joining.';
    this.render();
  }

  /** At the finish: the plain-language verdict on the final model's images (never green from rounds alone). */
  private context(): StatusContext {
    const ctx: StatusContext = this.hasTiles !== undefined ? { hasTiles: this.hasTiles } : {};
    const s = this.status;
    if (s?.connection !== 'finished') return ctx;
    const info = this.info;
    const history = [...this.history.values()];
    const verdict = judgeOutput({
      model: { round: s.round, rounds: s.rounds || info?.rounds || s.round, ...(info?.localSteps !== undefined ? { localSteps: info.localSteps } : {}) },
      ...(latestProbe(history) ? { probe: latestProbe(history) } : {}),
    });
    return { ...ctx, verdict: { text: verdict.headline, level: verdict.level } };
  }

  private renderLine(): void {
    const line = statusLine(this.status, Date.now(), this.context());
    const el = $('#round-status');
    el.textContent = line.text;
    el.className = `status tone-${line.tone}`;
    const bar = $('#train-progress');
    bar.hidden = line.progress === undefined;
    if (line.progress !== undefined) setProgress(bar, line.progress);
  }

  private renderEta(): void {
    const view = etaLine({ status: this.status, info: this.info, speed: this.speed, measuring: this.measuring });
    const el = $('#eta');
    el.textContent = this.speedError ?? view.text;
    el.classList.toggle('tone-error', this.speedError !== undefined);
    const button = $<HTMLButtonElement>('#measure-speed');
    if (this.measuring && this.deps) {
      button.hidden = false;
      button.disabled = false;
      button.textContent = 'Stop the speed check';
      button.title = 'Stop measuring; the training time stays unknown until it is measured';
      return;
    }
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
