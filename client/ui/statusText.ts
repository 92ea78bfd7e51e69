import type { FedStatus } from '../api.ts';
import { plural } from '../plural.ts';

/**
 * The words on the status line and the connection badge, from the worker's status snapshot. Pure, so the
 * wording is unit-tested: staff read these to know whether the machine is doing its job, and what to do
 * next. Every state that waits says what it waits for; the page offers a button for each (trainingPanel.ts,
 * main.ts).
 */

export type Tone = 'neutral' | 'busy' | 'ok' | 'warn' | 'error';

export interface StatusLine {
  text: string;
  tone: Tone;
  /** 0–1 for the progress bar, or undefined to hide it. */
  progress?: number;
}

/** What the page knows besides the worker's status: what the first step needs, and the verdict at the finish. */
export interface StatusContext {
  /** Whether this hospital has usable tiles (the first step asks for them before the token). */
  hasTiles?: boolean;
  /** The plain-language verdict on the final model's images (shared/metrics/verdict.ts), shown at the finish. */
  verdict?: { text: string; level: 'usable' | 'not-yet' | 'unknown' };
}

function roundsDone(s: FedStatus): string {
  return s.rounds ? `${s.round} of ${plural(s.rounds, 'round')} complete` : `${plural(s.round, 'round')} complete`;
}

/** The first step, in the order it is checked: tiles first (training needs them), then the token. */
export function notJoinedLine(hasTiles: boolean | undefined): StatusLine {
  if (hasTiles === false) return { text: 'Not taking part yet. First import this hospital’s tiles (step 3), then enter the access token and press “Join the federation”.', tone: 'neutral' };
  return { text: 'Not taking part yet. Enter the access token and press “Join the federation”.', tone: 'neutral' };
}

export function statusLine(s: FedStatus | undefined, now = Date.now(), ctx: StatusContext = {}): StatusLine {
  if (!s || (!s.joined && s.connection === 'offline')) return notJoinedLine(ctx.hasTiles);
  switch (s.connection) {
    case 'refused':
      return { text: s.error ?? 'The federation server refused this hospital.', tone: 'error' };
    case 'finished': {
      const done = `The federation is finished: ${s.rounds === 1 ? 'its round is' : `all ${s.rounds} rounds are`} complete.`;
      // Rounds done say nothing about whether the images look like tissue: only a measured verdict may sound green.
      if (ctx.verdict) return { text: `${done} ${ctx.verdict.text}`, tone: ctx.verdict.level === 'usable' ? 'ok' : ctx.verdict.level === 'not-yet' ? 'warn' : 'neutral' };
      return { text: `${done} Whether its images are usable is not known yet: run the quality check (step 6) before using an export.`, tone: 'neutral' };
    }
    case 'token-in-use': {
      const why = 'This hospital’s access token is in use on another computer or in another browser, and only one may take part with it at a time.';
      if (s.retryAt === undefined) return { text: `${why} This page stopped trying. Leave the federation on the other computer, then press “Try again”.`, tone: 'error' };
      const secs = Math.max(0, Math.ceil((s.retryAt - now) / 1000));
      return { text: `${why} Trying again ${secs > 0 ? `in ${secs} s` : 'now'}, in case it has left; press “Stop trying” to give up here.`, tone: 'warn' };
    }
    case 'retrying': {
      const secs = s.retryAt ? Math.max(0, Math.ceil((s.retryAt - now) / 1000)) : 0;
      return { text: `The federation server cannot be reached. Retrying ${secs > 0 ? `in ${secs} s` : 'now'}… Your tiles and the last model are safe on this computer.`, tone: 'warn' };
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
    case 'token-in-use':
      return { text: 'Token in use elsewhere', tone: 'error' };
    case 'refused':
      return { text: 'Refused', tone: 'error' };
    case 'finished':
      return { text: s.hospital ? `${s.hospital} · finished` : 'Finished', tone: 'ok' };
    default:
      return { text: s.hospital ? `Connected as ${s.hospital}` : 'Connected', tone: 'ok' };
  }
}

/**
 * The button the status offers, so that no state waits without a way out: `stop` (Leave / Stop trying)
 * while connecting, retrying or waiting on a token in use; `join` (Join / Try again) when not taking part,
 * refused, or stopped trying; none once the federation is finished (the export is the next step).
 */
export function accessAction(s: FedStatus | undefined): { action: 'join' | 'stop' | 'none'; label: string } {
  if (!s || !s.joined || s.connection === 'offline' || s.connection === 'refused') return { action: 'join', label: 'Join the federation' };
  if (s.connection === 'finished') return { action: 'none', label: '' };
  if (s.connection === 'token-in-use') return s.retryAt === undefined ? { action: 'join', label: 'Try again' } : { action: 'stop', label: 'Stop trying' };
  return { action: 'stop', label: 'Leave' };
}

/** The training engines (shared/backend.ts BackendName) as staff read their names. */
export const ENGINE_LABELS: Record<string, string> = { webgpu: 'WebGPU', webgl: 'WebGL', wasm: 'WebAssembly', cpu: 'CPU' };

/**
 * The page's error when no training engine started (`reason`: each engine tried and why it failed). An
 * engine forced in the page address (`?backend=`) is named as the cause, with the way out.
 */
export function engineFailure(reason: string, forced: boolean): string {
  if (forced) return `The training engine chosen in the page address could not start (${reason}). Open the page without “?backend=” to let it choose one that works.`;
  return `No training engine could start in this browser (${reason}). Use a recent Chrome or Edge with hardware acceleration enabled.`;
}

/**
 * The training engine's note next to its name (step 1): which hardware trains, truthfully. WebGPU on a
 * software renderer (SwiftShader, llvmpipe, WARP, a fallback adapter) runs on the processor and is
 * labelled so, never as the fast graphics card.
 */
export function hardwareNote(b: { backend: string; softwareRenderer?: string }, forced = false): { text: string; tone: Tone } {
  let note: { text: string; tone: Tone };
  if (b.backend === 'webgpu' && b.softwareRenderer) {
    const name = b.softwareRenderer === 'a software renderer' ? 'a software renderer' : `a software renderer (${b.softwareRenderer})`;
    note = { text: `WebGPU on ${name}: training will be slow`, tone: 'warn' };
  } else if (b.backend === 'webgpu') note = { text: 'uses the graphics card (fastest)', tone: 'ok' };
  else if (b.backend === 'webgl') note = { text: 'slower than WebGPU: training rounds will take longer', tone: 'warn' };
  else if (b.backend === 'wasm') note = { text: 'Warning: training runs on the processor (WebAssembly), not the graphics card, and will be slow', tone: 'error' };
  else note = { text: 'Warning: training runs on the processor, not the graphics card, and will be very slow', tone: 'error' };
  if (forced) note.text += ' (chosen in the page address)';
  return note;
}
