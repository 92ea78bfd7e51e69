import { describe, expect, it } from 'vitest';
import type { FederationInfo, FedStatus, MeasuredSpeed } from '../api.ts';
import { etaLine, formatDuration, formatStepTime } from './etaText.ts';

const INFO: FederationInfo = {
  classes: ['MSIH', 'nonMSIH'],
  imageSize: 64,
  ganType: 'acgan',
  rounds: 100,
  round: 0,
  phase: 'waiting',
  localSteps: 200,
  batchNorm: 'average',
  minAvailable: 2,
  parameters: 1,
  fingerprint: 'fp',
  model: {},
  history: [],
  live: true,
  fetchedAt: 0,
};
const CHECK: MeasuredSpeed = { secondsPerStep: 0.2, steps: 10, source: 'check', fingerprint: 'fp', at: 0 };
const WAITING: FedStatus = { joined: true, connection: 'connected', activity: 'waiting', hospital: 'hospital-a', round: 0, rounds: 100, phase: 'waiting' };
const training = (t: Partial<NonNullable<FedStatus['training']>>, over: Partial<FedStatus> = {}): FedStatus => ({
  ...WAITING,
  activity: 'training',
  phase: 'training',
  round: 3,
  training: { round: 4, attempt: 1, done: 50, total: 200, fraction: 0.25, ...t },
  ...over,
});

describe('formatDuration and formatStepTime', () => {
  it.each([
    [0, '0 s'],
    [0.4, '0 s'],
    [44.6, '45 s'],
    [59.4, '59 s'],
    [59.5, '1 min'],
    [200, '3 min 20 s'],
    [599.4, '9 min 59 s'],
    [600, '10 min'],
    [1500, '25 min'],
    [3569, '59 min'],
    [3570, '1 h'],
    [4000, '1 h 7 min'],
    [4837.5, '1 h 21 min'],
    [172_799, '48 h'],
    [172_800, '2 days'],
    [273_600, '3 days 4 h'],
  ])('%s s reads "%s"', (s, text) => {
    expect(formatDuration(s)).toBe(text);
  });

  it('refuses a negative or infinite duration, and words step times', () => {
    expect(() => formatDuration(-1)).toThrow('a duration must be finite and ≥ 0, got -1');
    expect(() => formatDuration(Infinity)).toThrow(/finite/);
    expect(formatStepTime(0.2121)).toBe('212 ms a step');
    expect(formatStepTime(1.5)).toBe('1.50 s a step');
    expect(formatStepTime(12.34)).toBe('12.3 s a step');
  });
});

describe('etaLine before training', () => {
  it('asks for a measurement until there is one', () => {
    expect(etaLine({ info: INFO })).toEqual({ text: 'Expected training time on this computer: not measured yet.', canMeasure: true });
    expect(etaLine({})).toEqual({ text: '', canMeasure: false });
  });

  it('is (rounds left) × localSteps × the measured seconds per step, saying where the speed comes from', () => {
    // 100 rounds × 200 steps × 0.2 s = 4,000 s.
    expect(etaLine({ info: INFO, speed: CHECK })).toEqual({
      text:
        'Expected training time on this computer: about 1 h 7 min for the 100 remaining rounds of 200 steps — 200 ms a step, ' +
        'estimated from 10 measured steps of a speed check. Waiting for the other hospitals and the transfers come on top.',
      canMeasure: true,
    });
    // 37 rounds done (the status knows more than the last /api/status): 63 × 200 × 0.2 s = 2,520 s; the
    // speed of round 37's own 198 timed steps.
    const fromRound: MeasuredSpeed = { secondsPerStep: 0.2, steps: 198, source: 'round', round: 37, fingerprint: 'fp', at: 0 };
    expect(etaLine({ info: INFO, status: { ...WAITING, round: 37 }, speed: fromRound }).text).toBe(
      'Expected training time on this computer: about 42 min for the 63 remaining rounds of 200 steps — 200 ms a step, ' +
        'estimated from 198 measured steps of round 37. Waiting for the other hospitals and the transfers come on top.',
    );
    expect(etaLine({ info: { ...INFO, round: 99 }, speed: CHECK }).text).toMatch(/^Expected training time on this computer: about 40 s for the 1 remaining round of 200 steps/);
  });

  it('ignores a speed measured with another model, and says when the server gives no step count', () => {
    expect(etaLine({ info: INFO, speed: { ...CHECK, fingerprint: 'old' } }).text).toBe('Expected training time on this computer: not measured yet.');
    const { localSteps: _, ...old } = INFO;
    expect(etaLine({ info: old, speed: CHECK })).toEqual({ text: 'Expected training time: unknown (the server’s federation config does not say how many steps a round has).', canMeasure: false });
  });

  it('shows a speed check in progress, and nothing once the federation is over', () => {
    expect(etaLine({ info: INFO, measuring: { done: 3, total: 12 } })).toEqual({ text: 'Measuring this computer’s speed with the federation’s model (step 3 of at most 12)…', canMeasure: false });
    expect(etaLine({ info: INFO, measuring: { done: 0, total: 12 } }).text).toBe('Measuring this computer’s speed with the federation’s model…');
    expect(etaLine({ info: { ...INFO, round: 100 }, speed: CHECK })).toEqual({ text: '', canMeasure: false });
    expect(etaLine({ info: INFO, speed: CHECK, status: { ...WAITING, connection: 'finished' } })).toEqual({ text: '', canMeasure: false });
  });
});

describe('etaLine during a round', () => {
  it('gives the time left in this round and in the federation from the round’s own speed', () => {
    // Round 4 of 100, 50 of 200 steps, 0.25 s a step: 150 steps = 37.5 s; then 96 × 200 more: 4,837.5 s.
    expect(etaLine({ info: INFO, speed: CHECK, status: training({ speed: { secondsPerStep: 0.25, steps: 47 } }) })).toEqual({
      text: 'About 38 s left in this round, about 1 h 21 min of training in the whole federation (96 more rounds of 200 steps after this one) — 250 ms a step, from 47 measured steps of this round.',
      canMeasure: false,
    });
  });

  it('uses the last measurement until this round’s steps are timed, and says when there is none', () => {
    // 160 steps × 0.2 s = 32 s; (160 + 96 × 200) × 0.2 s = 3,872 s.
    expect(etaLine({ info: INFO, speed: CHECK, status: training({ done: 40 }) }).text).toBe(
      'About 32 s left in this round, about 1 h 5 min of training in the whole federation (96 more rounds of 200 steps after this one) — 200 ms a step, from 10 measured steps of a speed check.',
    );
    expect(etaLine({ info: INFO, status: training({ done: 1 }) })).toEqual({ text: 'Time left: known once the first steps of this round are timed.', canMeasure: false });
  });

  it('says when this is the last round', () => {
    // 50 steps × 0.25 s = 12.5 s.
    expect(etaLine({ info: INFO, status: training({ round: 100, done: 150, speed: { secondsPerStep: 0.25, steps: 148 } }, { round: 99 }) }).text).toBe(
      'About 13 s left in this round, the federation’s last — 250 ms a step, from 148 measured steps of this round.',
    );
  });
});

describe('etaLine: the whole federation at its measured pace', () => {
  // Rounds 1–3 took 60, 90 and 120 s (the server's round durations): 90 s a round on average.
  const history = [90, 60, 120].map((seconds, i) => ({ round: [2, 1, 3][i], participants: 2, examples: 50, dLoss: 1, gLoss: 1, seconds }));
  const info = { ...INFO, rounds: 10, round: 3, history };

  it('adds the time the rounds left take at the pace of the completed ones, waits and transfers included', () => {
    // 7 rounds left × 200 steps × 0.2 s = 280 s of this computer's training; 7 × 90 s = 630 s at the federation's pace.
    expect(etaLine({ info, speed: CHECK, status: { ...WAITING, round: 3, rounds: 10 } }).text).toBe(
      'Expected training time on this computer: about 4 min 40 s for the 7 remaining rounds of 200 steps — 200 ms a step, estimated from 10 measured steps of a speed check. ' +
        'Waiting for the other hospitals and the transfers come on top. At the federation’s pace so far (about 1 min 30 s a round over its last 3 rounds, all hospitals and transfers included), the 7 rounds left take about 11 min.',
    );
  });

  it('during a round counts that round among the rounds left', () => {
    // Round 4 of 10: rounds 4–10 = 7 left, 630 s.
    expect(etaLine({ info, status: training({ speed: { secondsPerStep: 0.25, steps: 47 } }, { round: 3, rounds: 10 }) }).text).toMatch(
      /from 47 measured steps of this round\. At the federation’s pace so far \(about 1 min 30 s a round over its last 3 rounds, all hospitals and transfers included\), the 7 rounds left take about 11 min\.$/,
    );
  });
});
