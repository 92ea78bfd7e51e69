/**
 * The console's words: the federation's state, time left, why a hospital failed a round, how long ago
 * something happened, audit events. Pure, so the wording is unit-tested: an operator reads these to decide
 * what to do next.
 */
import { plural } from '../plural.ts';
import { readWebAppAgent } from '../agent.ts';
import { ENGINE_LABELS } from '../ui/statusText.ts';
import type { FederationView, HospitalFailure, HospitalView } from './api.ts';

export type Tone = 'neutral' | 'busy' | 'ok' | 'warn' | 'error';

export interface Headline {
  text: string;
  tone: Tone;
}

/** One line on the federation as a whole: what it is doing, and what it waits for. */
export function federationHeadline(f: FederationView, hospitals: readonly HospitalView[] = [], now = Date.now()): Headline {
  const done = `${f.round} of ${plural(f.totalRounds, 'round')} complete`;
  if (f.stopped) return { text: `Stopped by the operator (${done}). No round runs until you resume; the last global model is kept and can be downloaded.`, tone: 'error' };
  if (f.phase === 'finished') return { text: `Finished: ${f.totalRounds === 1 ? 'its round is' : `all ${f.totalRounds} rounds are`} complete. Extend the rounds (Control) to train further.`, tone: 'ok' };
  if (f.paused) {
    const inFlight = f.phase === 'training' || f.phase === 'aggregating';
    return {
      text: inFlight
        ? `Paused by the operator (${done}). The round in flight finishes; no new round starts until you resume.`
        : `Paused by the operator (${done}). No new round starts until you resume.`,
      tone: 'warn',
    };
  }
  if (f.phase === 'loading') return { text: 'The server is loading its state…', tone: 'busy' };
  if (f.phase === 'training') {
    const round = f.round + 1;
    const attempt = f.attempt && f.attempt > 1 ? ` (attempt ${f.attempt})` : '';
    return { text: `Training round ${round} of ${f.totalRounds}${attempt}.`, tone: 'busy' };
  }
  if (f.phase === 'aggregating') return { text: `Combining the hospitals’ updates of round ${f.round + 1} of ${f.totalRounds}.`, tone: 'busy' };
  if (f.phase === 'waiting' && f.retryStopped) {
    return { text: `Round ${f.round + 1} of ${f.totalRounds} failed too many times in a row: the server tries again when a hospital joins.`, tone: 'error' };
  }
  if (f.phase === 'waiting' && f.nextAttemptAt) {
    const s = Math.max(0, Math.round((Date.parse(f.nextAttemptAt) - now) / 1000));
    return { text: `The last attempt at round ${f.round + 1} of ${f.totalRounds} failed; the next attempt starts ${s > 0 ? `in ${duration(s)}` : 'now'} if enough hospitals are online.`, tone: 'warn' };
  }
  if (f.phase === 'waiting') {
    const online = hospitals.filter((h) => h.online && !h.revoked).length;
    const need = f.minAvailable !== undefined ? ` (${online} of the ${f.minAvailable} needed are online)` : ` (${plural(online, 'hospital')} online)`;
    return { text: `Waiting for hospitals to connect before round ${f.round + 1} of ${f.totalRounds} starts${need}.`, tone: 'neutral' };
  }
  return { text: `${f.phase} (${done}).`, tone: 'neutral' };
}

/** The phase in a word or two. */
export function phaseLabel(f: FederationView): string {
  if (f.stopped) return 'Stopped';
  if (f.phase === 'finished') return 'Finished';
  const base = { loading: 'Loading', waiting: 'Waiting for hospitals', training: 'Training', aggregating: 'Combining updates' }[f.phase] ?? f.phase;
  return f.paused ? `${base} · paused` : base;
}

/** `4 min 12 s left`, `past the deadline`; null without a deadline. */
export function timeLeft(deadline: string | null, now: number): string | null {
  if (!deadline) return null;
  const t = Date.parse(deadline);
  if (!Number.isFinite(t)) return null;
  const s = Math.round((t - now) / 1000);
  if (s <= 0) return 'past the deadline';
  return `${duration(s)} left`;
}

/** Seconds as `45 s`, `4 min 12 s`, `2 h 5 min`. */
export function duration(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h} h${m ? ` ${m} min` : ''}`;
}

/** `just now`, `12 s ago`, `3 min ago`, `2 h ago`, or the date for older; `never` for null. */
export function ago(iso: string | null | undefined, now: number): string {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return 'unknown';
  const s = Math.round((now - t) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toISOString().slice(0, 10);
}

const FAILURE_REASONS: Record<string, string> = {
  deadline: 'did not send its update before the deadline',
  disconnected: 'its connection dropped during the round and it did not come back in time',
  declined: 'declined the round (for example, it had no usable tiles)',
  rejected: 'its update was refused by the server’s checks (wrong size, too far from the global model, or a bad example count)',
  'grant-expired': 'did not finish uploading its update in the time it was given',
  aborted: 'the attempt ended before its update arrived (other hospitals failed, or the operator stopped it)',
  revoked: 'its access was revoked by the operator during the round',
  stopped: 'the operator stopped the federation during the round',
};

/** A failure's reason in words (a code the server uses, or the server's own sentence as it is). */
export function failureReason(reason: string): string {
  return FAILURE_REASONS[reason] ?? reason;
}

/** `Round 3, attempt 2: did not send its update before the deadline`. */
export function failureText(f: HospitalFailure): string {
  return `Round ${f.round}${f.attempt > 1 ? `, attempt ${f.attempt}` : ''}: ${failureReason(f.reason)}`;
}

/** What the hospital is doing, in a few words, for its row of the table. */
export function hospitalState(h: HospitalView): { text: string; tone: Tone } {
  if (h.revoked) return { text: 'Revoked', tone: 'error' };
  if (!h.online) return { text: 'Offline', tone: 'neutral' };
  return { text: 'Online', tone: 'ok' };
}

/**
 * What a connected hospital trains on, in words, from what its software said of itself (HospitalView.agent):
 * the web app says `fedgan-web/<version> (<engine>[; software renderer])` (../agent.ts), the Node hospitals
 * `fedgan-simulate`. Other software's words are shown as they are (cut to 60 characters); null when it said
 * nothing.
 */
export function engineText(agent: string | null | undefined): string | null {
  if (!agent) return null;
  const web = readWebAppAgent(agent);
  if (web) {
    const engine = ENGINE_LABELS[web.engine];
    const where = web.engine === 'wasm' || web.engine === 'cpu' || web.softwareRenderer ? 'the processor' : 'the graphics card';
    return `Web app, ${engine}${web.softwareRenderer ? ' on a software renderer' : ''} (${where})`;
  }
  if (/^fedgan-simulate\b/.test(agent)) return 'Node hospital (command line)';
  return agent.length > 60 ? `${agent.slice(0, 59)}…` : agent;
}

/** ε with two decimals (`ε 1.25`), or a dash when privacy is off. */
export function epsilonText(e: number | null | undefined): string {
  return e === null || e === undefined || !Number.isFinite(e) ? '–' : e.toFixed(2);
}

const AUDIT_TYPES: Record<string, string> = {
  'operator-pause': 'Operator paused the federation',
  'operator-resume': 'Operator resumed the federation',
  'operator-stop': 'Operator stopped the federation',
  'operator-rounds': 'Operator changed the number of rounds',
  'operator-settings': 'Operator changed the round settings',
  'hospital-added': 'Hospital added',
  'hospital-revoked': 'Hospital revoked',
  'hospital-rotated': 'Hospital token rotated',
  'hospital-joined': 'Hospital joined',
  'hospital-left': 'Hospital left',
  'round-aggregated': 'Round aggregated',
  'round-failed': 'Round attempt failed',
  'server-started': 'Server started',
  'operator-token-created': 'Operator token created',
};

/** An audit event type in words (an unknown type is shown as it is). */
export function auditTypeLabel(type: string): string {
  return AUDIT_TYPES[type] ?? type;
}

/** An audit entry's details (its `details` object and any other field besides time, type, who and the chain), as `key: value` pairs. */
export function auditDetails(entry: Record<string, unknown>): string {
  const skip = new Set(['time', 'at', 'type', 'actor', 'by', 'hospital', 'hash', 'prev', 'prevHash', 'seq', 'details']);
  const details = entry.details && typeof entry.details === 'object' && !Array.isArray(entry.details) ? (entry.details as Record<string, unknown>) : {};
  return [...Object.entries(details), ...Object.entries(entry).filter(([k]) => !skip.has(k))]
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k}: ${detailValue(v)}`)
    .join(', ');
}

/** A detail's value: numbers to 4 significant digits, lists of names joined, objects as JSON. */
function detailValue(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) return v.join(' + ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
