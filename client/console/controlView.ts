/**
 * Control: pause, resume and stop (stop asks first), the number of rounds, and the round settings that may
 * change between rounds. The server validates every change with the FED_CONFIG schema; its reason for a
 * refusal is shown next to the field it names.
 */
import { $, h } from '../ui/dom.ts';
import { ConsoleError, type ConsoleApi, type FederationView, type RoundSettings, type SettingsView } from './api.ts';
import { confirmAction, fieldError, say } from './ui.ts';
import { federationHeadline } from './wording.ts';

interface FieldSpec {
  /** Path in the settings (`aggregator.beta`). */
  path: string;
  label: string;
  hint: string;
  kind: 'number' | 'integer' | 'aggregator';
  min?: number;
  max?: number;
  step?: number;
}

const AGGREGATORS: [string, string][] = [
  ['fedavg', 'FedAvg'],
  ['median', 'Median'],
  ['trimmed-mean', 'Trimmed mean'],
];

export const SETTINGS_FIELDS: FieldSpec[] = [
  { path: 'fraction', label: 'Share of hospitals sampled per round', hint: 'Above 0, at most 1 (1: every online hospital).', kind: 'number', min: 0, max: 1, step: 0.05 },
  { path: 'minFit', label: 'Hospitals sampled per round, at least', hint: 'A whole number, at least 1.', kind: 'integer', min: 1, step: 1 },
  { path: 'minCompletion', label: 'Updates needed to complete a round', hint: 'Fewer by the deadline: the round is tried again.', kind: 'integer', min: 1, step: 1 },
  { path: 'roundDeadlineSeconds', label: 'Round deadline (seconds)', hint: 'How long hospitals have to train and send their update.', kind: 'number', min: 1, step: 1 },
  { path: 'localSteps', label: 'Training steps per hospital per round', hint: 'Generator steps each sampled hospital trains.', kind: 'integer', min: 1, step: 1 },
  { path: 'aggregator.type', label: 'How updates are combined', hint: 'FedAvg: the mean weighted by tiles. The median and trimmed mean resist a bad update.', kind: 'aggregator' },
  { path: 'aggregator.beta', label: 'Trimmed share at each end', hint: 'Trimmed mean only: from 0 up to (not including) 0.5.', kind: 'number', min: 0, max: 0.49, step: 0.05 },
];

const inputId = (path: string) => `set-${path.replace(/\./g, '-')}`;

/** `localSteps 20 → 40, aggregator.type fedavg → median`: the fields that differ. */
export function describeChanges(from: RoundSettings, to: RoundSettings): string {
  const parts: string[] = [];
  for (const f of SETTINGS_FIELDS) {
    const a = get(from, f.path);
    const b = get(to, f.path);
    if (a !== b && b !== undefined) parts.push(`${f.label.toLowerCase()} ${String(a)} → ${String(b)}`);
  }
  return parts.length ? parts.join(', ') : 'none of the fields shown here';
}

function get(settings: RoundSettings, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), settings);
}

/** The changed fields of `form` against `current`, as a partial settings object; or the fields that are not numbers. */
export function changedSettings(values: Record<string, string>, current: RoundSettings | null): { patch: Partial<RoundSettings>; invalid: Record<string, string> } {
  const patch: Record<string, unknown> = {};
  const invalid: Record<string, string> = {};
  for (const f of SETTINGS_FIELDS) {
    const raw = (values[f.path] ?? '').trim();
    if (raw === '') continue;
    let v: string | number = raw;
    if (f.kind !== 'aggregator') {
      v = Number(raw);
      if (!Number.isFinite(v)) {
        invalid[f.path] = 'Enter a number.';
        continue;
      }
      if (f.kind === 'integer' && !Number.isInteger(v)) {
        invalid[f.path] = 'Enter a whole number.';
        continue;
      }
    }
    if (current && get(current, f.path) === v) continue;
    const [a, b] = f.path.split('.');
    if (b) {
      const base = (patch[a] as Record<string, unknown> | undefined) ?? { ...((current?.[a as keyof RoundSettings] as object | undefined) ?? {}) };
      base[b] = v;
      patch[a] = base;
    } else patch[a] = v;
  }
  return { patch: patch as Partial<RoundSettings>, invalid };
}

/** The settings field a refusal is about: the server's `field`, or a field named at the start of its message. */
export function fieldOfRefusal(e: ConsoleError): string | undefined {
  const paths = SETTINGS_FIELDS.map((f) => f.path);
  if (e.field) {
    const f = e.field.replace(/^settings\./, '');
    if (paths.includes(f)) return f;
    if (f === 'aggregator') return 'aggregator.type';
  }
  // Else the first field the message names (`localSteps: must be at least 1`).
  let first: { path: string; at: number } | undefined;
  for (const p of paths) {
    const at = new RegExp(`\\b${p.replace('.', '\\.')}\\b`).exec(e.message)?.index;
    if (at !== undefined && (!first || at < first.at)) first = { path: p, at };
  }
  return first?.path;
}

/**
 * The refusal as it reads next to its field: the server's words for that field without the field's name in
 * front (`settings refused: localSteps: must be at least 1` → `Must be at least 1.`).
 */
export function fieldSentence(e: ConsoleError, field: string): string {
  const said = e.fieldMessage ?? e.message;
  const at = said.lastIndexOf(`${field}:`);
  // The server's whole sentence, when it did not say this field's part apart.
  if (at < 0 && e.fieldMessage === undefined) return said;
  let text = (at < 0 ? said : said.slice(at + field.length + 1)).trim();
  if (!text) return e.message;
  text = text[0].toUpperCase() + text.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

export class ControlView {
  private fed: FederationView | null = null;
  private settings: RoundSettings | null = null;
  private dirty = false;
  private roundsDirty = false;

  constructor(
    private readonly api: () => ConsoleApi,
    private readonly onRefused: (e: ConsoleError) => void,
    private readonly refresh: () => Promise<void>,
  ) {
    this.buildSettingsForm();
    $('#pause').addEventListener('click', () => void this.run('pause'));
    $('#resume').addEventListener('click', () => void this.run('resume'));
    $('#stop').addEventListener('click', () => void this.stop());
    $('#rounds-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.setRounds();
    });
    $('#total-rounds').addEventListener('input', () => (this.roundsDirty = true));
  }

  private buildSettingsForm(): void {
    const form = $<HTMLFormElement>('#settings-form');
    const fields = SETTINGS_FIELDS.map((f) => {
      const id = inputId(f.path);
      const control =
        f.kind === 'aggregator'
          ? h('select', { id, name: f.path, 'data-testid': id, 'aria-describedby': `${id}-hint ${id}-error` }, ...AGGREGATORS.map(([v, label]) => h('option', { value: v, text: label })))
          : h('input', { id, name: f.path, 'data-testid': id, type: 'number', inputmode: f.kind === 'integer' ? 'numeric' : 'decimal', step: f.step ?? 'any', min: f.min, max: f.max, 'aria-describedby': `${id}-hint ${id}-error` });
      control.addEventListener('input', () => {
        this.dirty = true;
        fieldError(control, $(`#${id}-error`), '');
      });
      return h('div', { class: 'field' }, h('label', { for: id, class: 'label', text: f.label }), control, h('p', { id: `${id}-hint`, class: 'small muted', text: f.hint }), h('p', { id: `${id}-error`, class: 'field-error', 'data-testid': `${id}-error`, role: 'alert' }));
    });
    form.replaceChildren(
      ...fields,
      h('div', { class: 'row actions' }, h('button', { class: 'btn primary', type: 'submit', id: 'save-settings', 'data-testid': 'save-settings', text: 'Save settings for the next round' }), h('button', { class: 'btn', type: 'button', id: 'reset-settings', text: 'Undo my changes' })),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.saveSettings();
    });
    $('#reset-settings').addEventListener('click', () => {
      this.dirty = false;
      this.clearErrors();
      this.fillSettings();
      say($('#settings-msg'), '');
    });
  }

  /** The federation's state (the live overview): which buttons make sense, the rounds field, the settings. */
  update(fed: FederationView, settings: SettingsView | undefined): void {
    this.fed = fed;
    const head = federationHeadline(fed);
    const state = $('#control-state');
    state.textContent = head.text;
    state.className = `status tone-${head.tone}`;
    const finished = fed.phase === 'finished';
    $<HTMLButtonElement>('#pause').disabled = fed.paused || fed.stopped || finished;
    $<HTMLButtonElement>('#resume').disabled = !(fed.paused || fed.stopped) || finished;
    $<HTMLButtonElement>('#stop').disabled = fed.stopped || finished;
    const input = $<HTMLInputElement>('#total-rounds');
    const floor = Math.max(1, fed.roundInFlight ?? fed.round);
    input.min = String(floor);
    if (!this.roundsDirty && document.activeElement !== input) input.value = String(fed.totalRounds);
    $('#total-rounds-hint').textContent =
      `Now ${fed.totalRounds} in total, ${fed.round} complete. More rounds continue a finished federation; fewer end it sooner ` +
      `(not below ${floor}: the rounds complete${fed.roundInFlight ? ' and the one in flight' : ''}).`;
    if (settings) {
      this.setSettings(settings.pending ?? settings.effective);
      $('#settings-pending').textContent = settings.pending ? `Saved changes wait for the next round: ${describeChanges(settings.effective, settings.pending)}.` : '';
    }
  }

  setSettings(s: RoundSettings): void {
    this.settings = s;
    if (!this.dirty) this.fillSettings();
  }

  private fillSettings(): void {
    const s = this.settings;
    if (!s) return;
    for (const f of SETTINGS_FIELDS) {
      const el = document.getElementById(inputId(f.path)) as HTMLInputElement | HTMLSelectElement | null;
      const v = get(s, f.path);
      if (el && v !== undefined && v !== null) el.value = String(v);
    }
  }

  private clearErrors(): void {
    for (const f of SETTINGS_FIELDS) fieldError($(`#${inputId(f.path)}`), $(`#${inputId(f.path)}-error`), '');
  }

  private async run(action: 'pause' | 'resume'): Promise<void> {
    const msg = $('#run-msg');
    say(msg, action === 'pause' ? 'Pausing…' : 'Resuming…', 'busy');
    try {
      await this.api()[action]();
      say(msg, action === 'pause' ? 'Paused. The round in flight (if any) finishes; no new round starts until you press Resume.' : 'Resumed. The next round starts as soon as enough hospitals are online.', 'ok');
      await this.refresh();
    } catch (e) {
      this.refused(e, msg, action === 'pause' ? 'The federation could not be paused' : 'The federation could not be resumed');
    }
  }

  private async stop(): Promise<void> {
    const ok = await confirmAction({
      title: 'Stop the federation now?',
      text:
        'The round in flight ends at once: the hospitals are told, and the work they did in it is dropped. No new round starts until you press Resume. ' +
        'The global model of the last completed round is kept and can be downloaded. To let the round in flight finish first, use Pause instead.',
      confirm: 'Stop now',
    });
    const msg = $('#run-msg');
    if (!ok) return say(msg, 'Not stopped.', 'neutral');
    say(msg, 'Stopping…', 'busy');
    try {
      await this.api().stop();
      say(msg, 'Stopped. No round runs until you press Resume.', 'ok');
      await this.refresh();
    } catch (e) {
      this.refused(e, msg, 'The federation could not be stopped');
    }
  }

  private async setRounds(): Promise<void> {
    const input = $<HTMLInputElement>('#total-rounds');
    const error = $('#total-rounds-error');
    const msg = $('#rounds-msg');
    say(msg, '');
    const raw = input.value.trim();
    const n = Number(raw);
    if (raw === '' || !Number.isInteger(n) || n < 1) {
      fieldError(input, error, 'Enter a whole number of rounds, at least 1.');
      input.focus();
      return;
    }
    fieldError(input, error, '');
    try {
      await this.api().setRounds(n);
      this.roundsDirty = false;
      say(msg, `The federation now runs ${n} rounds in total.`, 'ok');
      await this.refresh();
    } catch (e) {
      if (e instanceof ConsoleError && e.status === 400) {
        fieldError(input, error, e.message);
        input.focus();
      } else this.refused(e, msg, 'The number of rounds was not changed');
    }
  }

  private async saveSettings(): Promise<void> {
    const msg = $('#settings-msg');
    this.clearErrors();
    const values: Record<string, string> = {};
    for (const f of SETTINGS_FIELDS) values[f.path] = ($(`#${inputId(f.path)}`) as HTMLInputElement).value;
    const { patch, invalid } = changedSettings(values, this.settings);
    const bad = Object.entries(invalid);
    if (bad.length) {
      for (const [path, text] of bad) fieldError($(`#${inputId(path)}`), $(`#${inputId(path)}-error`), text);
      $(`#${inputId(bad[0][0])}`).focus();
      say(msg, 'Nothing was saved: correct the marked field.', 'error');
      return;
    }
    if (Object.keys(patch).length === 0) return say(msg, 'Nothing changed.', 'neutral');
    say(msg, 'Saving…', 'busy');
    try {
      const result = await this.api().patchSettings(patch);
      this.dirty = false;
      const from = (result as { appliesFrom?: unknown } | undefined)?.appliesFrom;
      say(msg, typeof from === 'number' ? `Saved. The new settings apply from round ${from}.` : 'Saved. The new settings apply from the next round.', 'ok');
      await this.refresh();
    } catch (e) {
      if (e instanceof ConsoleError && e.status === 400) {
        const field = fieldOfRefusal(e);
        if (field) {
          const el = $(`#${inputId(field)}`);
          fieldError(el, $(`#${inputId(field)}-error`), fieldSentence(e, field));
          el.focus();
          say(msg, 'Nothing was saved: the server refused the marked field.', 'error');
          return;
        }
      }
      this.refused(e, msg, 'The settings were not saved');
    }
  }

  private refused(e: unknown, msg: HTMLElement, what: string): void {
    if (e instanceof ConsoleError && e.signInAgain) return this.onRefused(e);
    say(msg, `${what}: ${e instanceof Error ? e.message : String(e)}`, 'error');
  }
}
