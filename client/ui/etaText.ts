import { federationEstimate, federationPace, roundEta } from '../../shared/fed/eta.ts';
import type { FederationInfo, FedStatus, MeasuredSpeed } from '../api.ts';
import { plural } from '../plural.ts';

/**
 * The words of the training-time line (step 4, under the status line): before training, the expected
 * training time of this hospital for the rest of the federation; during a round, the time left in it and
 * in the federation. The arithmetic is shared/fed/eta.ts; this module only words it. Pure, unit-tested.
 */

/** A duration as staff read it: "45 s", "3 min 20 s", "25 min", "1 h 7 min", "3 days 4 h". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`a duration must be finite and ≥ 0, got ${seconds}`);
  if (seconds < 59.5) return `${Math.round(seconds)} s`;
  if (seconds < 600) {
    const total = Math.round(seconds);
    const m = Math.floor(total / 60);
    const s = total - 60 * m;
    return s ? `${m} min ${s} s` : `${m} min`;
  }
  if (seconds < 3570) return `${Math.round(seconds / 60)} min`;
  if (seconds < 48 * 3600) {
    const total = Math.round(seconds / 60);
    const h = Math.floor(total / 60);
    const m = total - 60 * h;
    return m ? `${h} h ${m} min` : `${h} h`;
  }
  const total = Math.round(seconds / 3600);
  const d = Math.floor(total / 24);
  const h = total - 24 * d;
  return h ? `${d} days ${h} h` : `${d} days`;
}

/** Seconds per step as staff read it: "212 ms a step", "1.50 s a step", "12.3 s a step". */
export function formatStepTime(secondsPerStep: number): string {
  if (secondsPerStep < 1) return `${Math.round(secondsPerStep * 1000)} ms a step`;
  return `${secondsPerStep.toFixed(secondsPerStep < 10 ? 2 : 1)} s a step`;
}

export interface EtaView {
  /** Empty when there is nothing to say (the federation is over). */
  text: string;
  /** Whether the "Measure speed" button makes sense now (not training, not measuring, federation not over). */
  canMeasure: boolean;
}

export interface EtaInput {
  status?: FedStatus;
  info?: FederationInfo;
  /** The latest measurement of this computer's speed (worker `speed` event). */
  speed?: MeasuredSpeed;
  /** A speed check in progress. */
  measuring?: { done: number; total: number };
}

/**
 * The whole federation at the pace of its completed rounds (their measured durations, every hospital and
 * transfer included): a sentence to append, or '' without a measured round or a round left.
 */
function paceSentence(info: FederationInfo | undefined, roundsLeft: number): string {
  if (!info) return '';
  const seconds = [...info.history].sort((a, b) => a.round - b.round).map((r) => r.seconds);
  const pace = federationPace({ roundSeconds: seconds, roundsLeft: Math.max(0, roundsLeft) });
  if (!pace) return '';
  return (
    ` At the federation’s pace so far (about ${formatDuration(pace.secondsPerRound)} a round over its last ${plural(pace.measuredRounds, 'round')}, ` +
    `all hospitals and transfers included), the ${plural(pace.roundsLeft, 'round')} left take about ${formatDuration(pace.seconds)}.`
  );
}

function source(s: MeasuredSpeed, round?: number): string {
  const steps = plural(s.steps, 'measured step');
  if (s.source === 'check') return `${steps} of a speed check`;
  return s.round !== undefined && s.round === round ? `${steps} of this round` : `${steps} of round ${s.round ?? '?'}`;
}

/** The training-time line for the page's state. */
export function etaLine({ status, info, speed, measuring }: EtaInput): EtaView {
  const finished = status?.connection === 'finished' || (info !== undefined && info.rounds > 0 && info.round >= info.rounds);
  if (finished) return { text: '', canMeasure: false };
  if (measuring) {
    const step = measuring.done > 0 ? ` (step ${measuring.done} of at most ${measuring.total})` : '';
    return { text: `Measuring this computer’s speed with the federation’s model${step}…`, canMeasure: false };
  }
  // A measurement made with another model (the federation changed it) says nothing about this one.
  const known = speed && (!info?.fingerprint || speed.fingerprint === info.fingerprint) ? speed : undefined;
  const t = status?.activity === 'training' ? status.training : undefined;
  if (t) {
    const s: MeasuredSpeed | undefined = t.speed ? { ...t.speed, source: 'round', round: t.round, fingerprint: '', at: 0 } : known;
    const rounds = Math.max(status?.rounds || info?.rounds || t.round, t.round);
    if (!s) return { text: 'Time left: known once the first steps of this round are timed.', canMeasure: false };
    const eta = roundEta({ round: t.round, rounds, done: t.done, total: t.total, secondsPerStep: s.secondsPerStep });
    const after = eta.roundsAfter
      ? `, about ${formatDuration(eta.totalSeconds)} of training in the whole federation (${plural(eta.roundsAfter, 'more round')} of ${t.total.toLocaleString('en-US')} steps after this one)`
      : ', the federation’s last';
    const pace = paceSentence(info, rounds - t.round + 1);
    return { text: `About ${formatDuration(eta.roundSeconds)} left in this round${after} — ${formatStepTime(s.secondsPerStep)}, from ${source(s, t.round)}.${pace}`, canMeasure: false };
  }
  const canMeasure = !measuring;
  if (!info) return { text: '', canMeasure: false };
  if (info.localSteps === undefined) return { text: 'Expected training time: unknown (the server’s federation config does not say how many steps a round has).', canMeasure: false };
  if (!known) return { text: 'Expected training time on this computer: not measured yet.', canMeasure };
  const completed = Math.max(info.round, status?.round ?? 0);
  const est = federationEstimate({ rounds: info.rounds, completed, localSteps: info.localSteps, secondsPerStep: known.secondsPerStep });
  return {
    text:
      `Expected training time on this computer: about ${formatDuration(est.seconds)} for the ${plural(est.rounds, 'remaining round')} of ` +
      `${info.localSteps.toLocaleString('en-US')} steps — ${formatStepTime(known.secondsPerStep)}, estimated from ${source(known)}. ` +
      `Waiting for the other hospitals and the transfers come on top.${paceSentence(info, est.rounds)}`,
    canMeasure,
  };
}
