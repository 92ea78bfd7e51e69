/** The audit log: a table filtered by event type, hospital and time (the server filters), and its export. */
import { $, h } from '../ui/dom.ts';
import { ConsoleError, type AuditEntry, type AuditFilter, type ConsoleApi } from './api.ts';
import { dateTime, say, saveFile } from './ui.ts';
import { auditDetails, auditTypeLabel } from './wording.ts';

/** Rows shown at most (the newest); the export holds everything. */
const MAX_ROWS = 500;

/** The time of an entry (`at`; `time` accepted too). */
const timeOf = (e: AuditEntry): string | undefined => (typeof e.at === 'string' ? e.at : typeof e.time === 'string' ? e.time : undefined);
const actorOf = (e: AuditEntry): string => (typeof e.actor === 'string' ? e.actor : typeof e.by === 'string' ? e.by : '–');

/** The `since` filter as an ISO time, from a datetime-local value (the browser's local time); '' for none. */
export function sinceIso(local: string): string {
  if (!local) return '';
  const t = new Date(local).getTime();
  return Number.isFinite(t) ? new Date(t).toISOString() : '';
}

export class AuditView {
  private readonly types = new Set<string>();
  private readonly hospitals = new Set<string>();

  constructor(
    private readonly api: () => ConsoleApi,
    private readonly onRefused: (e: ConsoleError) => void,
  ) {
    $('#audit-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.refresh();
    });
    $('#audit-export').addEventListener('click', () => void this.export());
  }

  /** Offer the hospitals of the federation in the filter (besides those seen in the log). */
  addHospitals(names: readonly string[]): void {
    let changed = false;
    for (const n of names) if (!this.hospitals.has(n)) (this.hospitals.add(n), (changed = true));
    if (changed) this.fillSelect($<HTMLSelectElement>('#audit-hospital'), this.hospitals, 'All hospitals', (x) => x);
  }

  private fillSelect(select: HTMLSelectElement, values: Set<string>, all: string, label: (v: string) => string): void {
    const current = select.value;
    select.replaceChildren(h('option', { value: '', text: all }), ...[...values].sort().map((v) => h('option', { value: v, text: label(v) })));
    select.value = values.has(current) ? current : '';
  }

  private filter(): AuditFilter {
    return {
      type: $<HTMLSelectElement>('#audit-type').value || undefined,
      hospital: $<HTMLSelectElement>('#audit-hospital').value || undefined,
      since: sinceIso($<HTMLInputElement>('#audit-since').value) || undefined,
    };
  }

  async refresh(): Promise<void> {
    const msg = $('#audit-msg');
    const filter = this.filter();
    let entries: AuditEntry[];
    try {
      entries = await this.api().audit(filter);
    } catch (e) {
      if (e instanceof ConsoleError && e.signInAgain) return this.onRefused(e);
      say(msg, `The audit log could not be read: ${e instanceof Error ? e.message : String(e)}`, 'error');
      return;
    }
    let newType = false;
    for (const e of entries) {
      if (!this.types.has(e.type)) (this.types.add(e.type), (newType = true));
    }
    if (newType) this.fillSelect($<HTMLSelectElement>('#audit-type'), this.types, 'All events', auditTypeLabel);
    this.addHospitals(entries.map((e) => e.hospital).filter((x): x is string => typeof x === 'string'));
    // Newest first (the log is in append order; equal times keep it reversed).
    const newest = [...entries].reverse().sort((a, b) => (timeOf(b) ?? '').localeCompare(timeOf(a) ?? '')).slice(0, MAX_ROWS);
    const body = $('#audit-rows');
    if (!newest.length) {
      body.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: 5, text: filter.type || filter.hospital || filter.since ? 'No event matches this filter.' : 'No event yet.' })));
    } else {
      body.replaceChildren(
        ...newest.map((e) =>
          h(
            'tr',
            { 'data-type': e.type },
            h('td', { class: 'when', text: dateTime(timeOf(e)) }),
            h('td', { text: auditTypeLabel(e.type) }),
            h('td', { class: 'who', text: actorOf(e) }),
            h('td', { class: 'who', text: typeof e.hospital === 'string' ? e.hospital : '–' }),
            h('td', { class: 'details', text: auditDetails(e) }),
          ),
        ),
      );
    }
    const shown = entries.length > MAX_ROWS ? `the newest ${MAX_ROWS} of ${entries.length} events (the export holds all)` : `${entries.length} event${entries.length === 1 ? '' : 's'}`;
    say(msg, `Showing ${shown}, newest first.`, 'neutral');
  }

  private async export(): Promise<void> {
    const msg = $('#audit-msg');
    try {
      const d = await this.api().auditExport();
      saveFile(d.blob, d.fileName);
      say(msg, `Saved ${d.fileName}: the whole log, one JSON line per event, with its hash chain.`, 'ok');
    } catch (e) {
      if (e instanceof ConsoleError && e.signInAgain) return this.onRefused(e);
      say(msg, `The audit log could not be exported: ${e instanceof Error ? e.message : String(e)}`, 'error');
    }
  }
}
