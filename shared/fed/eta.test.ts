import { describe, expect, it } from 'vitest';
import { federationEstimate, federationPace, roundEta, SPEED_CHECK, speedCheckDone, speedCheckSteps, StepSpeedMeter } from './eta.ts';

describe('StepSpeedMeter: seconds per step after the warm-up steps', () => {
  it('times the steps after the warm-up, from the reading that ended it to the latest', () => {
    const m = new StepSpeedMeter(2);
    m.record(0, 1000);
    m.record(1, 3000); // step 1 compiles the GPU programs: not timed
    expect(m.speed).toBeUndefined();
    m.record(2, 3500); // the warm-up ends here
    expect(m.speed).toBeUndefined();
    m.record(3, 3700);
    expect(m.speed).toEqual({ secondsPerStep: 0.2, steps: 1 });
    m.record(5, 4250); // readings may skip steps
    expect(m.speed).toEqual({ secondsPerStep: 0.25, steps: 3 }); // (4250 − 3500) ms / 3 steps
    expect(m.measuredSeconds).toBe(0.75);
  });

  it('without a warm-up times from the start; the first reading after the warm-up may come late', () => {
    const m = new StepSpeedMeter(0);
    m.record(0, 100);
    m.record(4, 900);
    expect(m.speed).toEqual({ secondsPerStep: 0.2, steps: 4 });
    const late = new StepSpeedMeter(2);
    late.record(3, 1000); // the first reading after the warm-up is step 3: the origin
    late.record(7, 3000);
    expect(late.speed).toEqual({ secondsPerStep: 0.5, steps: 4 });
  });

  it('refuses readings that go backwards and bad values, naming them', () => {
    const m = new StepSpeedMeter(1);
    m.record(2, 500);
    expect(() => m.record(1, 600)).toThrow('readings go forward: step 1 at 600 ms came after step 2 at 500 ms');
    expect(() => m.record(3, 400)).toThrow(/readings go forward/);
    expect(() => m.record(-1, 700)).toThrow('steps done must be a whole number ≥ 0, got -1');
    expect(() => m.record(3, NaN)).toThrow('the time of a reading must be finite, got NaN');
    expect(() => new StepSpeedMeter(-1)).toThrow('warmupSteps must be a whole number ≥ 0, got -1');
  });
});

describe('speed check: enough steps and time, or the most steps', () => {
  const meterAt = (steps: number, seconds: number) => {
    const m = new StepSpeedMeter(0);
    m.record(0, 0);
    m.record(steps, seconds * 1000);
    return m;
  };

  it('stops after maxSteps timed steps, or after minSteps once minSeconds have passed', () => {
    expect(SPEED_CHECK).toEqual({ warmupSteps: 2, minSteps: 3, minSeconds: 3, maxSteps: 10 });
    expect(speedCheckSteps()).toBe(12);
    expect(speedCheckDone(new StepSpeedMeter(0))).toBe(false);
    expect(speedCheckDone(meterAt(10, 0.5))).toBe(true); // a fast GPU: 10 steps in half a second
    expect(speedCheckDone(meterAt(9, 0.5))).toBe(false);
    expect(speedCheckDone(meterAt(3, 3))).toBe(true); // a slow computer: 3 steps of a second
    expect(speedCheckDone(meterAt(3, 2.9))).toBe(false);
    expect(speedCheckDone(meterAt(2, 30))).toBe(false); // never fewer than minSteps
  });
});

describe('federationEstimate: before a round', () => {
  it('is (rounds − completed) × localSteps × seconds per step', () => {
    // The defaults, 100 rounds × 200 steps, at 0.2 s a step: 20,000 steps, 4,000 s.
    expect(federationEstimate({ rounds: 100, completed: 0, localSteps: 200, secondsPerStep: 0.2 })).toEqual({ rounds: 100, steps: 20_000, seconds: 4000 });
    // 37 rounds done: 63 × 200 = 12,600 steps at 0.25 s = 3,150 s.
    expect(federationEstimate({ rounds: 100, completed: 37, localSteps: 200, secondsPerStep: 0.25 })).toEqual({ rounds: 63, steps: 12_600, seconds: 3150 });
    expect(federationEstimate({ rounds: 5, completed: 5, localSteps: 50, secondsPerStep: 1 })).toEqual({ rounds: 0, steps: 0, seconds: 0 });
    expect(federationEstimate({ rounds: 5, completed: 7, localSteps: 50, secondsPerStep: 1 }).rounds).toBe(0);
  });

  it('names a bad input', () => {
    expect(() => federationEstimate({ rounds: 0, completed: 0, localSteps: 200, secondsPerStep: 0.2 })).toThrow('rounds must be a whole number ≥ 1, got 0');
    expect(() => federationEstimate({ rounds: 5, completed: 0, localSteps: 1.5, secondsPerStep: 0.2 })).toThrow('localSteps must be a whole number ≥ 1, got 1.5');
    expect(() => federationEstimate({ rounds: 5, completed: 0, localSteps: 2, secondsPerStep: Infinity })).toThrow('seconds per step must be finite and ≥ 0, got Infinity');
  });
});

describe('roundEta: during a round', () => {
  it('is the rest of this round plus (rounds − round) whole rounds', () => {
    // Round 4 of 100, 50 of 200 steps done, 0.25 s a step: 150 steps (37.5 s) left in the round,
    // then 96 rounds × 200 = 19,200 steps: 19,350 steps, 4,837.5 s.
    expect(roundEta({ round: 4, rounds: 100, done: 50, total: 200, secondsPerStep: 0.25 })).toEqual({
      roundSteps: 150,
      roundSeconds: 37.5,
      roundsAfter: 96,
      totalSteps: 19_350,
      totalSeconds: 4837.5,
    });
    // The last round: nothing after it.
    expect(roundEta({ round: 20, rounds: 20, done: 10, total: 40, secondsPerStep: 0.5 })).toEqual({ roundSteps: 30, roundSeconds: 15, roundsAfter: 0, totalSteps: 30, totalSeconds: 15 });
    // Before the first step and after the last.
    expect(roundEta({ round: 1, rounds: 2, done: 0, total: 8, secondsPerStep: 1 })).toMatchObject({ roundSeconds: 8, totalSeconds: 16 });
    expect(roundEta({ round: 1, rounds: 2, done: 8, total: 8, secondsPerStep: 1 })).toMatchObject({ roundSeconds: 0, totalSeconds: 8 });
  });

  it('names a bad input', () => {
    expect(() => roundEta({ round: 0, rounds: 2, done: 0, total: 8, secondsPerStep: 1 })).toThrow('round must be a whole number ≥ 1, got 0');
    expect(() => roundEta({ round: 1, rounds: 2, done: -1, total: 8, secondsPerStep: 1 })).toThrow('steps done must be a whole number ≥ 0, got -1');
    expect(() => roundEta({ round: 1, rounds: 2, done: 0, total: 0, secondsPerStep: 1 })).toThrow('steps of the round must be a whole number ≥ 1, got 0');
    expect(() => roundEta({ round: 1, rounds: 2, done: 0, total: 8, secondsPerStep: -0.1 })).toThrow('seconds per step must be finite and ≥ 0, got -0.1');
  });
});

describe('federationPace: the whole federation at the pace of its completed rounds', () => {
  it('is the mean of the last `window` rounds’ durations × the rounds left', () => {
    // Last 5 of [100, 10, 20, 30, 40, 50] = 150 / 5 = 30 s a round; 7 rounds left = 210 s.
    expect(federationPace({ roundSeconds: [100, 10, 20, 30, 40, 50], roundsLeft: 7 })).toEqual({ measuredRounds: 5, secondsPerRound: 30, roundsLeft: 7, seconds: 210 });
    // Fewer rounds than the window: all of them. (12 + 18) / 2 = 15 s; × 3 = 45 s.
    expect(federationPace({ roundSeconds: [12, 18], roundsLeft: 3, window: 4 })).toEqual({ measuredRounds: 2, secondsPerRound: 15, roundsLeft: 3, seconds: 45 });
  });

  it('says nothing without a measured round or a round left, and refuses bad input', () => {
    expect(federationPace({ roundSeconds: [], roundsLeft: 3 })).toBeUndefined();
    expect(federationPace({ roundSeconds: [10], roundsLeft: 0 })).toBeUndefined();
    expect(() => federationPace({ roundSeconds: [10, -1], roundsLeft: 1 })).toThrow("a round's duration must be finite and ≥ 0 seconds, got -1");
    expect(() => federationPace({ roundSeconds: [10], roundsLeft: 1.5 })).toThrow('rounds left must be a whole number ≥ 0, got 1.5');
    expect(() => federationPace({ roundSeconds: [10], roundsLeft: 1, window: 0 })).toThrow('window must be a whole number ≥ 1, got 0');
  });
});
