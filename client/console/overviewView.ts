/**
 * The Overview section: the federation's state, each hospital's part, and the rounds so far (the loss and
 * quality charts are the hospital app's, client/ui/lossChart.ts and qualityChart.ts).
 */
import { $, h, progressBox, setProgress } from '../ui/dom.ts';
import { LossChart } from '../ui/lossChart.ts';
import { QualityChart } from '../ui/qualityChart.ts';
import type { HistoryView, HospitalView, Overview } from './api.ts';
import { dateTime } from './ui.ts';
import { ago, duration, engineText, epsilonText, failureText, federationHeadline, hospitalState, phaseLabel, timeLeft } from './wording.ts';

export class OverviewView {
  private readonly loss = new LossChart($<HTMLCanvasElement>('#loss-chart'));
  private readonly quality = new QualityChart($<HTMLCanvasElement>('#quality-chart'));
  private last: Overview | null = null;
  private historyKey = '';

  render(o: Overview, now = Date.now()): void {
    this.last = o;
    const f = o.federation;
    const head = federationHeadline(f, o.hospitals, now);
    if (f.checkpointPending) {
      head.text += ` The server could not save round ${f.checkpointPending.round} yet (${f.checkpointPending.failures} tries: ${f.checkpointPending.lastError}); it keeps trying.`;
      head.tone = 'error';
    }
    const el = $('#fed-headline');
    if (el.textContent !== head.text) el.textContent = head.text;
    el.className = `status tone-${head.tone}`;
    $('#kpi-phase').textContent = phaseLabel(f);
    $('#kpi-round').textContent = `${f.round} of ${f.totalRounds}`;
    $('#kpi-attempt').textContent = f.attempt === null ? '–' : String(f.attempt);
    this.tick(now);
    this.renderHospitals(o.hospitals, now);
    const every = (o.quality as { everyRounds?: unknown } | undefined)?.everyRounds;
    this.quality.setSchedule(typeof every === 'number' ? every : undefined, f.totalRounds);
    this.renderHistory(o.history);
  }

  /** Once a second: the time left and "… ago" texts. */
  tick(now = Date.now()): void {
    const o = this.last;
    if (!o) return;
    const f = o.federation;
    const left = timeLeft(f.deadline, now);
    $('#kpi-deadline').textContent = f.deadline && left ? `${dateTime(f.deadline).slice(-8)} (${left})` : '–';
    for (const cell of document.querySelectorAll<HTMLElement>('#hospital-rows [data-ago]')) cell.textContent = ago(cell.dataset.ago || null, now);
  }

  private renderHospitals(list: HospitalView[], now: number): void {
    const body = $('#hospital-rows');
    const table = body.closest('table')!;
    const anyEpsilon = list.some((x) => x.epsilon !== null && x.epsilon !== undefined);
    table.classList.toggle('no-eps', !anyEpsilon);
    if (list.length === 0) {
      body.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: 8, text: 'No hospital yet: add one under Hospitals.' })));
      return;
    }
    const rows = list.map((x) => {
      const state = hospitalState(x);
      let progressCell: Node = document.createTextNode('–');
      if (x.sampled && x.progress !== null && x.progress !== undefined) {
        const box = progressBox(`Training progress of ${x.name}`);
        box.hidden = false;
        box.classList.add('thin');
        setProgress(box, x.progress, `${Math.round(x.progress * 100)} %`);
        progressCell = box;
      }
      const engine = engineText(x.agent);
      const failures = x.failures.length
        ? h('ul', { class: 'failures' }, ...x.failures.slice(0, 3).map((f) => h('li', { text: failureText(f) })), x.failures.length > 3 ? h('li', { text: `and ${x.failures.length - 3} earlier` }) : null)
        : document.createTextNode('none');
      return h(
        'tr',
        { 'data-hospital': x.name },
        h('th', { scope: 'row', text: x.name }),
        h(
          'td',
          {},
          h('span', { class: `pill tone-${state.tone}`, 'data-testid': `online-${x.name}`, text: state.text }),
          x.online && engine ? h('span', { class: 'engine', 'data-testid': `engine-${x.name}`, text: engine }) : null,
        ),
        h('td', { 'data-testid': `sampled-${x.name}`, text: x.sampled ? 'Sampled' : '–' }),
        h('td', { 'data-testid': `progress-${x.name}` }, progressCell),
        h('td', { 'data-ago': x.lastUpdateAt ?? '', title: x.lastUpdateAt ? dateTime(x.lastUpdateAt) : undefined, text: ago(x.lastUpdateAt, now) }),
        h('td', { class: 'num', text: x.examplesDeclared === null || x.examplesDeclared === undefined ? '–' : x.examplesDeclared.toLocaleString('en-US') }),
        h('td', { 'data-testid': `failures-${x.name}` }, failures),
        h('td', { class: 'num eps', 'data-testid': `epsilon-${x.name}`, text: epsilonText(x.epsilon) }),
      );
    });
    body.replaceChildren(...rows);
  }

  private renderHistory(history: HistoryView[]): void {
    const key = history.map((r) => `${r.round}:${r.completedAt ?? ''}:${r.quality?.kid ?? ''}`).join('|');
    if (key === this.historyKey) return;
    this.historyKey = key;
    this.loss.clear();
    this.quality.clear();
    for (const r of history) {
      this.loss.setRound(r);
      this.quality.setRound(r);
    }
    const body = $('#history');
    if (history.length === 0) {
      body.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: 9, text: 'No round completed yet.' })));
      return;
    }
    body.replaceChildren(
      ...[...history].reverse().map((r) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row', text: String(r.round) }),
          h('td', { class: 'num', text: String(r.participants) }),
          h('td', { class: 'num', text: r.examples.toLocaleString('en-US') }),
          h('td', { class: 'num', text: r.dLoss.toFixed(3) }),
          h('td', { class: 'num', text: r.gLoss.toFixed(3) }),
          h('td', { class: 'num', text: r.quality ? `${r.quality.kid.toPrecision(3)} (model ${r.quality.round})` : '–' }),
          h('td', { class: 'num', text: r.attempts === undefined ? '–' : String(r.attempts) }),
          h('td', { class: 'num', text: duration(r.seconds) }),
          h('td', { text: dateTime(r.completedAt) }),
        ),
      ),
    );
  }
}
