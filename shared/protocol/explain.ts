/**
 * Plain-words explanations of what happened to a round, for hospital staff (the web app) and operators
 * (cli/remote.ts). One wording for every host: built from the protocol messages only (no DOM, no Node).
 */
import type { RoundClosed, RoundFailed } from './messages.ts';

/** "12 s", "3 min", "2 h 5 min": a duration for people. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return 'an unknown time';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const min = Math.round(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  const rest = min % 60;
  return rest ? `${h} h ${rest} min` : `${h} h`;
}

const updates = (n: number) => `${n} update${n === 1 ? '' : 's'}`;

/** "in about 4 s", or "in a moment" under a second. */
const inAbout = (seconds: number) => (seconds < 1 ? 'in a moment' : `in about ${formatDuration(seconds)}`);

/** "Round 3" or "Round 3 (attempt 2)". */
function roundName(round: number, attempt: number): string {
  return attempt > 1 ? `Round ${round} (attempt ${attempt})` : `Round ${round}`;
}

/**
 * What a `round-failed` means and what comes next, in two or three plain sentences, e.g.
 * "Round 2 stopped early: it can no longer collect the 2 updates it needs, because hospitals chosen for it
 * declined, left or had their updates refused (1 arrived). The server tries the round again in about 4 s
 * (once enough hospitals are connected); the hospitals chosen for it then train again."
 */
export function explainRoundFailed(msg: RoundFailed): string {
  const name = roundName(msg.round, msg.attempt);
  const got = msg.received === 0 ? `none of the ${updates(msg.needed)} it needed arrived` : `${msg.received} of the ${updates(msg.needed)} it needed arrived`;
  let what: string;
  switch (msg.reason) {
    case 'deadline':
      what = `${name} ran out of time: ${msg.received === 0 ? '' : 'only '}${got} before the deadline.`;
      break;
    case 'unreachable':
      what = `${name} stopped early: it can no longer collect the ${updates(msg.needed)} it needs, because hospitals chosen for it declined, left or had their updates refused (${msg.received} arrived).`;
      break;
    case 'save-failed':
      what = `${name} was combined from ${updates(msg.received)}, but the server could not save the result (its storage is failing). The result is kept in the server's memory: nothing is lost and nobody needs to train again.`;
      break;
    case 'internal':
      what = `${name} failed on the server: combining the ${updates(msg.received)} went wrong (a server error, not a problem at this hospital).`;
      break;
    case 'secure-aggregation':
      what = `${name} could not be completed under secure aggregation: too few of the hospitals chosen for it stayed to the end for the server to unmask the sum of their updates (nobody's update was revealed).${msg.detail ? ` ${msg.detail}` : ''}`;
      break;
  }
  const wait = msg.nextAttemptInSeconds;
  let next: string;
  if (msg.reason === 'save-failed') {
    next =
      wait === null
        ? 'The server is not retrying the save; its operator needs to free or fix the storage.'
        : `The server tries to save it again ${inAbout(wait)}; if this repeats, its operator needs to free or fix the storage.`;
  } else if (wait === null) {
    next = 'Too many attempts in a row failed, so the server has paused this round; it tries again when a hospital (re)connects.';
  } else {
    next = `The server tries the round again ${inAbout(wait)} (once enough hospitals are connected); the hospitals chosen for it then train again.`;
  }
  return `${what} ${next}`;
}

/**
 * What a `round-closed` means for the hospital that receives it (its part in that attempt is over).
 * `deadline`: its update did not arrive in time; `aborted`: the attempt was abandoned (a `round-failed`
 * with the reason follows); `disconnected`: its connection was lost for longer than the reconnect grace.
 */
export function explainRoundClosed(msg: RoundClosed): string {
  const name = roundName(msg.round, msg.attempt);
  switch (msg.reason) {
    case 'deadline':
      return `${name} closed at its deadline before this hospital's update arrived; this hospital's training for it is discarded.`;
    case 'aborted':
      return `${name} was stopped before this hospital finished, because the round can no longer succeed; this hospital's training for it is discarded.`;
    case 'disconnected':
      return `${name} went on without this hospital: its connection was lost for too long.`;
  }
}

/**
 * The round was sent again after this hospital reconnected (a `round` frame with `resumed: true`):
 * what it trained before the connection dropped (a reload, a closed tab, a network break) is lost, and
 * it trains the same attempt again from the start while the other hospitals keep going.
 */
export function explainResume(round: { round: number; attempt: number; deadlineSeconds?: number }): string {
  const name = roundName(round.round, round.attempt);
  const left = round.deadlineSeconds !== undefined ? ` ${formatDuration(round.deadlineSeconds)} remain before its deadline.` : '';
  return `Reconnected during ${name.charAt(0).toLowerCase()}${name.slice(1)}: the training done before the connection was lost (for example by a reload) is lost, so this hospital trains the round again from the start. The other hospitals kept training.${left}`;
}
