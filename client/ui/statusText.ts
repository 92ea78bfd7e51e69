import type { FedStatus } from '../api.ts';
import { plural } from '../plural.ts';

/**
 * The words on the status line and the connection badge, from the worker's status snapshot. Pure, so the
 * wording is unit-tested: staff read these to know whether the machine is doing its job.
 */

export type Tone = 'neutral' | 'busy' | 'ok' | 'warn' | 'error';

export interface StatusLine {
  text: string;
  tone: Tone;
  /** 0–1 for the progress bar, or undefined to hide it. */
  progress?: number;
}

function roundsDone(s: FedStatus): string {
  return s.rounds ? `${s.round} of ${plural(s.rounds, 'round')} complete` : `${plural(s.round, 'round')} complete`;
}

export function statusLine(s: FedStatus | undefined, now = Date.now()): StatusLine {
  if (!s || (!s.joined && s.connection === 'offline')) return { text: 'Not taking part yet. Enter the access token and press “Join the federation”.', tone: 'neutral' };
  switch (s.connection) {
    case 'refused':
      return { text: s.error ?? 'The federation server refused this hospital.', tone: 'error' };
    case 'finished':
      return { text: `The federation is finished: ${s.rounds === 1 ? 'its round is' : `all ${s.rounds} rounds are`} complete. You can export synthetic images below.`, tone: 'ok' };
    case 'retrying': {
      const secs = s.retryAt ? Math.max(0, Math.ceil((s.retryAt - now) / 1000)) : 0;
      const why = s.lastClose?.code === 4009 ? 'Another computer is connected with this hospital’s token' : 'The federation server cannot be reached';
      return { text: `${why}. Retrying ${secs > 0 ? `in ${secs} s` : 'now'}… Your tiles and the last model are safe on this computer.`, tone: 'warn' };
    }
    case 'connecting':
      return { text: 'Connecting to the federation server…', tone: 'busy' };
    case 'offline':
      return { text: 'Not connected.', tone: 'neutral' };
    case 'connected':
      break;
  }
  if (s.activity === 'training' && s.training) {
    const t = s.training;
    const attempt = t.attempt > 1 ? ` (attempt ${t.attempt})` : '';
    const detail = t.done > 0 ? ` — step ${t.done.toLocaleString('en-US')} of ${t.total.toLocaleString('en-US')}` : ' — preparing';
    return { text: `Training round ${t.round}${attempt} on this computer${detail}`, tone: 'busy', progress: t.fraction };
  }
  if (s.activity === 'uploading') {
    const size = s.uploadBytes ? ` (${(s.uploadBytes / 1e6).toFixed(1)} MB of model weights)` : '';
    return { text: `Uploading this hospital’s model update${size}…`, tone: 'busy', progress: 1 };
  }
  if (s.phase === 'training' && s.sampled === false) {
    return { text: `Waiting: the other hospitals are training round ${s.round + 1}. ${roundsDone(s)}.`, tone: 'neutral' };
  }
  if (s.phase === 'training' || s.phase === 'aggregating') {
    return { text: `Waiting for the other hospitals to finish round ${s.round + 1}. ${roundsDone(s)}.`, tone: 'neutral' };
  }
  if (s.connectedHospitals !== undefined && s.minAvailable !== undefined && s.connectedHospitals < s.minAvailable) {
    return { text: `Waiting for hospitals to connect (${s.connectedHospitals} of the ${s.minAvailable} needed). ${roundsDone(s)}.`, tone: 'neutral' };
  }
  return { text: `Waiting for the next round. ${roundsDone(s)}.`, tone: 'neutral' };
}

/** The badge in the top bar. */
export function connectionBadge(s: FedStatus | undefined): { text: string; tone: Tone } {
  if (!s || s.connection === 'offline') return { text: 'Not connected', tone: 'neutral' };
  switch (s.connection) {
    case 'connecting':
      return { text: 'Connecting…', tone: 'busy' };
    case 'retrying':
      return { text: 'Server unreachable', tone: 'warn' };
    case 'refused':
      return { text: 'Refused', tone: 'error' };
    case 'finished':
      return { text: s.hospital ? `${s.hospital} · finished` : 'Finished', tone: 'ok' };
    default:
      return { text: s.hospital ? `Connected as ${s.hospital}` : 'Connected', tone: 'ok' };
  }
}
