/**
 * How long a hospital's training takes: its measured seconds per generator step, and the arithmetic that
 * turns a speed into the expected time of the federation and an ETA during a round. Pure (clock readings
 * are inputs), so the numbers are unit-tested; the web app shows them (client/ui/etaText.ts).
 *
 * The figures count this hospital's training steps only: a federation round also waits for the slowest
 * sampled hospital and for the transfers, and a hospital that is not sampled in a round trains nothing
 * in it. They assume every remaining round samples this hospital and trains the same `localSteps`.
 */

/** A measured speed. */
export interface StepSpeed {
  /** Seconds per generator step (shared/gan/localTraining.ts: one batch, one generator update). */
  secondsPerStep: number;
  /** Timed steps it was measured over (the warm-up steps are not among them). */
  steps: number;
}

/**
 * Seconds per step from readings "step `done` had finished at `atMs`", leaving out the first `warmupSteps`
 * steps of a run: they include the compilation of the GPU programs and the first uploads, which later
 * steps do not pay. The speed is the time from the reading at which the warm-up was over to the latest
 * reading, over the steps in between. One meter per run (a round, a speed check): steps count from 0.
 */
export class StepSpeedMeter {
  private origin?: { done: number; atMs: number };
  private latest?: { done: number; atMs: number };

  constructor(readonly warmupSteps = 2) {
    if (!Number.isSafeInteger(warmupSteps) || warmupSteps < 0) throw new RangeError(`warmupSteps must be a whole number ≥ 0, got ${warmupSteps}`);
  }

  /** Step `done` (1-based; 0 = the start) had finished at `atMs` ms of a monotonic clock. Readings go forward. */
  record(done: number, atMs: number): void {
    if (!Number.isSafeInteger(done) || done < 0) throw new RangeError(`steps done must be a whole number ≥ 0, got ${done}`);
    if (!Number.isFinite(atMs)) throw new RangeError(`the time of a reading must be finite, got ${atMs}`);
    const last = this.latest ?? this.origin;
    if (last && (done < last.done || atMs < last.atMs)) {
      throw new RangeError(`readings go forward: step ${done} at ${atMs} ms came after step ${last.done} at ${last.atMs} ms`);
    }
    if (done < this.warmupSteps) return;
    if (!this.origin) this.origin = { done, atMs };
    else if (done > this.origin.done) this.latest = { done, atMs };
  }

  /** The speed so far; undefined until a step after the warm-up has finished. */
  get speed(): StepSpeed | undefined {
    if (!this.origin || !this.latest) return undefined;
    const steps = this.latest.done - this.origin.done;
    return { secondsPerStep: (this.latest.atMs - this.origin.atMs) / 1000 / steps, steps };
  }

  /** Seconds since the warm-up was over (0 before). */
  get measuredSeconds(): number {
    return this.origin && this.latest ? (this.latest.atMs - this.origin.atMs) / 1000 : 0;
  }
}

/**
 * The speed check the web app runs before training (client/localModel.ts measureSpeed): `warmupSteps`
 * untimed steps, then timed steps until at least `minSteps` of them and `minSeconds` have passed, at
 * most `maxSteps` (a fast GPU stops at `maxSteps` within a few seconds; a slow one after `minSteps`).
 */
export const SPEED_CHECK = { warmupSteps: 2, minSteps: 3, minSeconds: 3, maxSteps: 10 } as const;

/** Whether a speed check measured enough (see SPEED_CHECK). */
export function speedCheckDone(meter: StepSpeedMeter, check: { minSteps: number; minSeconds: number; maxSteps: number } = SPEED_CHECK): boolean {
  const s = meter.speed;
  if (!s) return false;
  return s.steps >= check.maxSteps || (s.steps >= check.minSteps && meter.measuredSeconds >= check.minSeconds);
}

/** Total steps of a speed check: the warm-up and at most maxSteps timed ones. */
export function speedCheckSteps(check: { warmupSteps: number; maxSteps: number } = SPEED_CHECK): number {
  return check.warmupSteps + check.maxSteps;
}

function checkSpeed(secondsPerStep: number): void {
  if (!Number.isFinite(secondsPerStep) || secondsPerStep < 0) throw new RangeError(`seconds per step must be finite and ≥ 0, got ${secondsPerStep}`);
}

function checkCount(name: string, n: number, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`${name} must be a whole number ≥ ${min}, got ${n}`);
}

/** This hospital's training time for the rest of a federation that has not started its next round yet. */
export interface FederationEstimate {
  /** Rounds left: rounds − rounds completed (0 when the federation is over). */
  rounds: number;
  /** rounds × localSteps. */
  steps: number;
  /** steps × seconds per step. */
  seconds: number;
}

/** Before a round: (rounds − completed) × localSteps steps at `secondsPerStep`. */
export function federationEstimate(p: { rounds: number; completed: number; localSteps: number; secondsPerStep: number }): FederationEstimate {
  checkCount('rounds', p.rounds, 1);
  checkCount('rounds completed', p.completed, 0);
  checkCount('localSteps', p.localSteps, 1);
  checkSpeed(p.secondsPerStep);
  const rounds = Math.max(0, p.rounds - p.completed);
  const steps = rounds * p.localSteps;
  return { rounds, steps, seconds: steps * p.secondsPerStep };
}

/** Time left while this hospital trains round `round` (1-based) of `rounds`, `done` of its `total` steps done. */
export interface RoundEta {
  /** Steps left in this round, and their time. */
  roundSteps: number;
  roundSeconds: number;
  /** Rounds after this one (rounds − round), each of `total` steps. */
  roundsAfter: number;
  /** The rest of this round plus the rounds after it. */
  totalSteps: number;
  totalSeconds: number;
}

export function roundEta(p: { round: number; rounds: number; done: number; total: number; secondsPerStep: number }): RoundEta {
  checkCount('round', p.round, 1);
  checkCount('rounds', p.rounds, 1);
  checkCount('steps of the round', p.total, 1);
  checkCount('steps done', p.done, 0);
  checkSpeed(p.secondsPerStep);
  const roundSteps = Math.max(0, p.total - p.done);
  const roundsAfter = Math.max(0, p.rounds - p.round);
  const totalSteps = roundSteps + roundsAfter * p.total;
  return { roundSteps, roundSeconds: roundSteps * p.secondsPerStep, roundsAfter, totalSteps, totalSeconds: totalSteps * p.secondsPerStep };
}

/** The whole federation's pace: what its completed rounds took, every hospital, wait and transfer included. */
export interface FederationPace {
  /** Completed rounds the pace is measured over (the most recent ones, at most `window`). */
  measuredRounds: number;
  /** Their mean duration (the server's round `seconds`). */
  secondsPerRound: number;
  /** Rounds left and their expected time at that pace. */
  roundsLeft: number;
  seconds: number;
}

/**
 * Time left for the whole federation at the pace of its last `window` completed rounds (their measured
 * durations): unlike the per-step figures above, it includes waiting for the slowest sampled hospital and
 * the transfers. Undefined without a measured round or with no round left.
 */
export function federationPace(p: { roundSeconds: readonly number[]; roundsLeft: number; window?: number }): FederationPace | undefined {
  checkCount('rounds left', p.roundsLeft, 0);
  const window = p.window ?? 5;
  checkCount('window', window, 1);
  for (const s of p.roundSeconds) if (!Number.isFinite(s) || s < 0) throw new RangeError(`a round's duration must be finite and ≥ 0 seconds, got ${s}`);
  const recent = p.roundSeconds.slice(-window);
  if (recent.length === 0 || p.roundsLeft === 0) return undefined;
  const secondsPerRound = recent.reduce((a, b) => a + b, 0) / recent.length;
  return { measuredRounds: recent.length, secondsPerRound, roundsLeft: p.roundsLeft, seconds: secondsPerRound * p.roundsLeft };
}
