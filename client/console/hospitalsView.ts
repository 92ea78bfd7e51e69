/**
 * Hospitals: add one (its join link is shown once, with a copy button), revoke one (asks first; its
 * connection closes and its token stops working at once) and rotate a token (the old link stops working,
 * the new one is shown once). The table's rows are updated in place, so a live update never takes the
 * keyboard focus away from a button.
 */
import { $, h } from '../ui/dom.ts';
import { ConsoleError, type ConsoleApi, type HospitalView, type JoinLink } from './api.ts';
import { confirmAction, copyText, dateTime, fieldError, say } from './ui.ts';
import { ago, hospitalState } from './wording.ts';

/** The tokens file's rule for hospital names (server/auth.ts TOKENS_FILE_FORMAT.hospitalPattern). */
export const HOSPITAL_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function hospitalNameProblem(name: string): string | null {
  if (!name) return 'Enter the hospital’s name.';
  if (name.length > 64) return `The name is ${name.length} characters long; at most 64.`;
  if (!HOSPITAL_NAME.test(name)) return 'Use only letters, digits, dots, dashes and underscores (no spaces).';
  return null;
}

export class HospitalsView {
  private readonly rows = new Map<string, HTMLTableRowElement>();
  private list: HospitalView[] = [];

  constructor(
    private readonly api: () => ConsoleApi,
    private readonly onRefused: (e: ConsoleError) => void,
    private readonly refresh: () => Promise<void>,
  ) {
    $('#add-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.add();
    });
    $('#new-hospital').addEventListener('input', () => fieldError($('#new-hospital'), $('#new-hospital-error'), ''));
    $('#copy-link').addEventListener('click', () => void this.copy());
    $('#hide-link').addEventListener('click', () => this.hideLink(true));
  }

  get names(): string[] {
    return this.list.map((x) => x.name);
  }

  render(list: HospitalView[], now = Date.now()): void {
    this.list = list;
    const body = $('#manage-rows');
    if (!list.length) {
      this.rows.clear();
      body.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: 4, text: 'No hospital yet.' })));
      return;
    }
    body.querySelector('tr.empty')?.remove();
    const seen = new Set<string>();
    list.forEach((x, i) => {
      seen.add(x.name);
      let row = this.rows.get(x.name);
      if (!row) {
        row = this.newRow(x.name);
        this.rows.set(x.name, row);
      }
      if (body.children[i] !== row) body.insertBefore(row, body.children[i] ?? null);
      const state = hospitalState(x);
      const pill = row.querySelector<HTMLElement>('.pill')!;
      pill.className = `pill tone-${state.tone}`;
      pill.textContent = x.revoked ? 'Revoked: its token no longer works' : `Active · ${state.text.toLowerCase()}`;
      const last = row.querySelector<HTMLElement>('.last')!;
      last.textContent = ago(x.lastUpdateAt, now);
      last.title = x.lastUpdateAt ? dateTime(x.lastUpdateAt) : '';
      for (const b of row.querySelectorAll<HTMLButtonElement>('button')) b.disabled = x.revoked;
    });
    for (const [name, row] of this.rows) {
      if (!seen.has(name)) {
        row.remove();
        this.rows.delete(name);
      }
    }
  }

  private newRow(name: string): HTMLTableRowElement {
    // The hospital's name completes each button's name for screen readers (its visible text comes first).
    const rotate = h('button', { class: 'btn compact', type: 'button', 'data-testid': `rotate-${name}` }, 'Rotate token…', h('span', { class: 'visually-hidden', text: ` (${name})` }));
    const revoke = h('button', { class: 'btn compact danger', type: 'button', 'data-testid': `revoke-${name}` }, 'Revoke…', h('span', { class: 'visually-hidden', text: ` (${name})` }));
    rotate.addEventListener('click', () => void this.rotate(name));
    revoke.addEventListener('click', () => void this.revoke(name));
    return h(
      'tr',
      { 'data-hospital': name },
      h('th', { scope: 'row', text: name }),
      h('td', {}, h('span', { class: 'pill', 'data-testid': `access-${name}` })),
      h('td', { class: 'last' }),
      h('td', {}, h('div', { class: 'actions-cell' }, rotate, revoke)),
    );
  }

  private async add(): Promise<void> {
    const input = $<HTMLInputElement>('#new-hospital');
    const error = $('#new-hospital-error');
    const msg = $('#add-msg');
    say(msg, '');
    const name = input.value.trim();
    const problem = hospitalNameProblem(name);
    if (problem) {
      fieldError(input, error, problem);
      input.focus();
      return;
    }
    fieldError(input, error, '');
    const button = $<HTMLButtonElement>('#add-hospital');
    button.disabled = true;
    try {
      const link = await this.api().addHospital(name);
      input.value = '';
      this.showLink(link, `Join link for ${link.name || name}`);
      say(msg, `${link.name || name} was added. It can join as soon as it opens the link.`, 'ok');
      await this.refresh();
    } catch (e) {
      if (e instanceof ConsoleError && e.signInAgain) return this.onRefused(e);
      if (e instanceof ConsoleError && (e.status === 400 || e.status === 409)) {
        fieldError(input, error, e.message);
        input.focus();
      } else say(msg, `The hospital was not added: ${e instanceof Error ? e.message : String(e)}`, 'error');
    } finally {
      button.disabled = false;
    }
  }

  private async revoke(name: string): Promise<void> {
    const ok = await confirmAction({
      title: `Revoke ${name}?`,
      text: `${name}’s connection closes now and its token stops working at once. If it is training in the round in flight, its update is lost: the round goes on without it if enough other hospitals complete it, and is tried again otherwise. This cannot be undone: to let ${name} back in, add it again with a new link.`,
      confirm: `Revoke ${name}`,
    });
    const msg = $('#manage-msg');
    if (!ok) return say(msg, `${name} was not revoked.`, 'neutral');
    try {
      await this.api().revoke(name);
      say(msg, `${name} was revoked: its token no longer works.`, 'ok');
      await this.refresh();
    } catch (e) {
      this.refused(e, msg, `${name} was not revoked`);
    }
  }

  private async rotate(name: string): Promise<void> {
    const ok = await confirmAction({
      title: `Make a new token for ${name}?`,
      text: `${name}’s current join link and token stop working at once (it is disconnected if it is online). You get a new link to send to ${name}.`,
      confirm: 'Make a new token',
    });
    const msg = $('#manage-msg');
    if (!ok) return say(msg, `${name}’s token was not changed.`, 'neutral');
    try {
      const link = await this.api().rotate(name);
      this.showLink(link, `New join link for ${name}`);
      say(msg, `${name} has a new token: send it the new link.`, 'ok');
      await this.refresh();
    } catch (e) {
      this.refused(e, msg, `${name}’s token was not changed`);
    }
  }

  private showLink(link: JoinLink, title: string): void {
    const box = $('#join-link-box');
    $('#join-link-title').textContent = title;
    $<HTMLInputElement>('#join-link').value = link.joinLink;
    say($('#copy-msg'), '');
    box.hidden = false;
    box.scrollIntoView({ block: 'nearest' });
    $('#join-link-title').focus();
  }

  private hideLink(focusBack: boolean): void {
    $<HTMLInputElement>('#join-link').value = '';
    $('#join-link-box').hidden = true;
    say($('#copy-msg'), '');
    if (focusBack) $('#new-hospital').focus();
  }

  private async copy(): Promise<void> {
    const input = $<HTMLInputElement>('#join-link');
    const ok = await copyText(input.value, input);
    say($('#copy-msg'), ok ? 'Copied to the clipboard.' : 'The browser did not allow copying: the link is selected, press Ctrl+C (⌘C on a Mac).', ok ? 'ok' : 'warn');
  }

  private refused(e: unknown, msg: HTMLElement, what: string): void {
    if (e instanceof ConsoleError && e.signInAgain) return this.onRefused(e);
    say(msg, `${what}: ${e instanceof Error ? e.message : String(e)}`, 'error');
  }
}
