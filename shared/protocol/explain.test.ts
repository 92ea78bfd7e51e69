import { describe, expect, it } from 'vitest';
import { explainResume, explainRoundClosed, explainRoundFailed, formatDuration } from './explain.ts';
import type { RoundFailed } from './messages.ts';

const failed = (over: Partial<RoundFailed>): RoundFailed => ({ type: 'round-failed', round: 2, attempt: 1, received: 1, needed: 2, reason: 'deadline', nextAttemptInSeconds: 4, ...over });

describe('plain-words explanations', () => {
  it('formats durations for people', () => {
    expect([0.4, 12, 59.4, 60, 150, 3600, 3900, -1, NaN].map(formatDuration)).toEqual(['0 s', '12 s', '59 s', '1 min', '3 min', '1 h', '1 h 5 min', 'an unknown time', 'an unknown time']);
  });

  it('says why a round failed and what comes next, for every reason', () => {
    expect(explainRoundFailed(failed({}))).toBe(
      'Round 2 ran out of time: only 1 of the 2 updates it needed arrived before the deadline. The server tries the round again in about 4 s (once enough hospitals are connected); the hospitals chosen for it then train again.',
    );
    expect(explainRoundFailed(failed({ reason: 'unreachable', attempt: 3, received: 0, nextAttemptInSeconds: 90 }))).toBe(
      'Round 2 (attempt 3) stopped early: it can no longer collect the 2 updates it needs, because hospitals chosen for it declined, left or had their updates refused (0 arrived). The server tries the round again in about 2 min (once enough hospitals are connected); the hospitals chosen for it then train again.',
    );
    expect(explainRoundFailed(failed({ received: 0, nextAttemptInSeconds: 0.02 }))).toBe(
      'Round 2 ran out of time: none of the 2 updates it needed arrived before the deadline. The server tries the round again in a moment (once enough hospitals are connected); the hospitals chosen for it then train again.',
    );
    expect(explainRoundFailed(failed({ reason: 'unreachable', nextAttemptInSeconds: null }))).toMatch(/paused this round; it tries again when a hospital \(re\)connects\.$/);
    const save = explainRoundFailed(failed({ reason: 'save-failed', received: 2, nextAttemptInSeconds: 8 }));
    expect(save).toMatch(/^Round 2 was combined from 2 updates, but the server could not save the result/);
    expect(save).toMatch(/nothing is lost and nobody needs to train again\. The server tries to save it again in about 8 s/);
    expect(explainRoundFailed(failed({ reason: 'internal', received: 1 }))).toMatch(/combining the 1 update went wrong \(a server error, not a problem at this hospital\)/);
    expect(explainRoundFailed(failed({ reason: 'secure-aggregation', received: 2, detail: 'Only 2 of the 3 hospitals needed answered the unmasking request.' }))).toBe(
      'Round 2 could not be completed under secure aggregation: too few of the hospitals chosen for it stayed to the end for the server to unmask the sum of their updates (nobody\'s update was revealed). Only 2 of the 3 hospitals needed answered the unmasking request. The server tries the round again in about 4 s (once enough hospitals are connected); the hospitals chosen for it then train again.',
    );
  });

  it('explains round-closed and a resumed round', () => {
    expect(explainRoundClosed({ type: 'round-closed', round: 1, attempt: 2, reason: 'aborted' })).toMatch(/^Round 1 \(attempt 2\) was stopped before this hospital finished/);
    expect(explainRoundClosed({ type: 'round-closed', round: 1, attempt: 1, reason: 'deadline' })).toMatch(/closed at its deadline/);
    expect(explainResume({ round: 3, attempt: 1, deadlineSeconds: 240 })).toBe(
      'Reconnected during round 3: the training done before the connection was lost (for example by a reload) is lost, so this hospital trains the round again from the start. The other hospitals kept training. 4 min remain before its deadline.',
    );
  });
});
