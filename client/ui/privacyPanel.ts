import type { HospitalDpBudget } from '../../shared/privacy/budget.ts';
import { formatDelta, formatEpsilon, NO_HOSPITAL_BUDGET } from '../../shared/privacy/budget.ts';
import type { PrivacyState } from '../api.ts';
import { $ } from './dom.ts';

/**
 * The privacy panel: this hospital's differential-privacy budget, set by staff before joining, and the ε
 * its tiles have spent so far and would have spent after all the planned rounds, in plain words. The
 * worker computes the figures (shared/privacy/budget.ts previewPrivacy, the privacy ledger in IndexedDB);
 * this renders them and checks the form. Stable test ids (docs: /work/notes/privacy-api.md): privacy-panel,
 * privacy-status, privacy-epsilon-spent, privacy-epsilon-planned, privacy-budget, privacy-noise,
 * privacy-budget-epsilon, privacy-budget-noise, privacy-budget-clip, privacy-save, privacy-msg.
 */

export type Tone = 'ok' | 'warn' | 'error' | 'neutral';

/** ε as the panel prints it: two decimals below 10 ("0.00" before any round), "–" when unknown. */
export function epsilonText(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : formatEpsilon(x);
}

/** The panel's first sentence: is DP on, and why (the federation, this hospital, or a stop). */
export function privacyHeadline(s: PrivacyState): { text: string; tone: Tone } {
  if (s.stopped) {
    const why = s.stopped.replace(/^privacy budget:\s*/, '');
    return { text: `Training has stopped to stay within this hospital’s privacy budget: ${why}.`, tone: 'warn' };
  }
  if (!s.on) {
    return s.roundsTrained > 0
      ? { text: 'Differential privacy is off now; earlier rounds of this hospital were trained with it (their ε is below).', tone: 'neutral' }
      : { text: 'Differential privacy is off: the federation does not ask for it and no budget is set here. You can set one before joining.', tone: 'neutral' };
  }
  const who = s.federation ? (hasOwn(s.budget) ? 'the federation asks for it and this hospital set its own budget' : 'the federation asks for it') : 'this hospital set a budget';
  return { text: `Differential privacy is on (${who}): each training step adds noise, so what leaves this computer reveals very little about any single tile.`, tone: 'ok' };
}

function hasOwn(b: HospitalDpBudget): boolean {
  return b.epsilon !== null || b.noiseMultiplier !== null;
}

/** "ε after the planned rounds" with the number of rounds it covers. */
export function plannedText(s: PrivacyState): string {
  if (s.planned === null) return s.on && s.tiles === 0 ? '– (import tiles first)' : '–';
  const left = s.rounds !== null && s.nextRound !== null ? Math.max(1, s.rounds - s.nextRound + 1) : null;
  return left !== null ? `${epsilonText(s.planned)} (if this hospital trains all ${left} remaining round${left === 1 ? '' : 's'})` : epsilonText(s.planned);
}

/** The budget line: the ε cap and where it comes from. */
export function budgetText(s: PrivacyState): string {
  if (s.budgetEpsilon === null) return s.on ? 'no ε limit: the noise is fixed, ε grows with every round' : 'none';
  const own = s.budget.epsilon !== null && s.budget.epsilon === s.budgetEpsilon;
  return `ε at most ${epsilonText(s.budgetEpsilon)} (${own ? 'set here' : 'the federation’s'})`;
}

/** The noise line (σ and the clip norm the next round uses). */
export function noiseText(s: PrivacyState): string {
  if (s.noiseMultiplier === null) return '–';
  return `${s.noiseMultiplier.toFixed(2)} × clip norm ${s.clipNorm ?? 1}`;
}

/** δ in words. */
export function deltaText(s: PrivacyState): string {
  return s.delta === null ? '' : `at δ = ${formatDelta(s.delta)} (the small chance that the guarantee does not hold)`;
}

/**
 * The form's budget from its fields (ε limit, noise multiplier, clip norm; empty: not set), or the reason it
 * is not valid. δ is kept from `previous`.
 */
export function budgetFromForm(fields: { epsilon: string; noise: string; clip?: string }, previous: HospitalDpBudget = NO_HOSPITAL_BUDGET): { budget: HospitalDpBudget } | { error: string } {
  const read = (text: string, what: string, max: number): number | null | string => {
    const t = text.trim().replace(',', '.');
    if (t === '') return null;
    const v = Number(t);
    if (!Number.isFinite(v) || v <= 0) return `${what} must be a number above 0 (or empty)`;
    if (v > max) return `${what} must be at most ${max}`;
    return v;
  };
  const epsilon = read(fields.epsilon, 'The ε limit', 1000);
  if (typeof epsilon === 'string') return { error: epsilon };
  const noise = read(fields.noise, 'The noise multiplier', 1000);
  if (typeof noise === 'string') return { error: noise };
  const clip = fields.clip === undefined ? previous.clipNorm : read(fields.clip, 'The clip norm', 1e6);
  if (typeof clip === 'string') return { error: clip };
  return { budget: { ...previous, epsilon, noiseMultiplier: noise, clipNorm: clip } };
}

/** Renders the panel and runs its form. */
export class PrivacyPanel {
  private state?: PrivacyState;
  private joined = false;

  constructor(private readonly deps: { save(budget: HospitalDpBudget): Promise<PrivacyState> }) {
    $<HTMLFormElement>('#privacy-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.save();
    });
  }

  /** Joined: the budget is fixed until the hospital leaves. */
  setJoined(joined: boolean): void {
    this.joined = joined;
    this.renderForm();
  }

  render(s: PrivacyState): void {
    const first = !this.state;
    this.state = s;
    const head = privacyHeadline(s);
    const status = $('#privacy-status');
    status.textContent = head.text;
    status.className = `status tone-${head.tone}`;
    $('#privacy-epsilon-spent').textContent = epsilonText(s.spent);
    $('#privacy-spent-note').textContent = [s.roundsTrained > 0 ? `after ${s.roundsTrained} round${s.roundsTrained === 1 ? '' : 's'} trained with noise` : 'no round trained with noise yet', deltaText(s)].filter(Boolean).join(', ');
    $('#privacy-epsilon-planned').textContent = plannedText(s);
    $('#privacy-budget').textContent = budgetText(s);
    $('#privacy-noise').textContent = noiseText(s);
    if (first) {
      $<HTMLInputElement>('#privacy-budget-epsilon').value = s.budget.epsilon === null ? '' : String(s.budget.epsilon);
      $<HTMLInputElement>('#privacy-budget-noise').value = s.budget.noiseMultiplier === null ? '' : String(s.budget.noiseMultiplier);
      $<HTMLInputElement>('#privacy-budget-clip').value = s.budget.clipNorm === null ? '' : String(s.budget.clipNorm);
    }
    this.renderForm();
  }

  private renderForm(): void {
    for (const id of ['#privacy-budget-epsilon', '#privacy-budget-noise', '#privacy-budget-clip', '#privacy-save']) ($(id) as HTMLInputElement | HTMLButtonElement).disabled = this.joined;
    $('#privacy-form-note').textContent = this.joined ? 'The budget is fixed while this hospital takes part; leave the federation to change it.' : 'Set before joining. Empty fields follow the federation’s settings; a hospital can be stricter than the federation, never looser.';
  }

  private async save(): Promise<void> {
    const msg = $('#privacy-msg');
    const r = budgetFromForm(
      { epsilon: $<HTMLInputElement>('#privacy-budget-epsilon').value, noise: $<HTMLInputElement>('#privacy-budget-noise').value, clip: $<HTMLInputElement>('#privacy-budget-clip').value },
      this.state?.budget,
    );
    if ('error' in r) {
      msg.textContent = r.error;
      msg.className = 'msg tone-error';
      return;
    }
    try {
      const s = await this.deps.save(r.budget);
      this.render(s);
      msg.textContent = r.budget.epsilon === null && r.budget.noiseMultiplier === null ? 'Saved: this hospital follows the federation’s privacy settings.' : 'Saved. It applies from the next round this hospital trains.';
      msg.className = 'msg tone-ok';
    } catch (e) {
      msg.textContent = `Not saved: ${(e as Error).message.replace(/^.*Error: /, '')}`;
      msg.className = 'msg tone-error';
    }
  }
}
