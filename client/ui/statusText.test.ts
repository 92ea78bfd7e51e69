import { describe, expect, it } from 'vitest';
import type { FedStatus } from '../api.ts';
import { connectionBadge, statusLine } from './statusText.ts';

const base: FedStatus = { joined: true, connection: 'connected', activity: 'waiting', hospital: 'hospital-a', round: 3, rounds: 20, phase: 'waiting', connectedHospitals: 2, minAvailable: 2 };

describe('statusLine', () => {
  it('says what to do before joining', () => {
    expect(statusLine(undefined).text).toBe('Not taking part yet. Enter the access token and press “Join the federation”.');
  });

  it('walks through waiting → training round k → uploading → waiting', () => {
    expect(statusLine({ ...base, connectedHospitals: 1 })).toEqual({ text: 'Waiting for hospitals to connect (1 of the 2 needed). 3 of 20 rounds complete.', tone: 'neutral' });
    expect(statusLine(base).text).toBe('Waiting for the next round. 3 of 20 rounds complete.');
    const training: FedStatus = { ...base, activity: 'training', phase: 'training', training: { round: 4, attempt: 1, done: 50, total: 200, fraction: 0.25 } };
    expect(statusLine(training)).toEqual({ text: 'Training round 4 on this computer — step 50 of 200', tone: 'busy', progress: 0.25 });
    expect(statusLine({ ...training, training: { ...training.training!, done: 1500, total: 2000, fraction: 0.75 } }).text).toBe('Training round 4 on this computer — step 1,500 of 2,000');
    expect(statusLine({ ...training, training: { ...training.training!, attempt: 2, done: 0, fraction: 0 } }).text).toBe('Training round 4 (attempt 2) on this computer — preparing');
    expect(statusLine({ ...base, activity: 'uploading', phase: 'training', uploadBytes: 2_500_000 })).toEqual({ text: 'Uploading this hospital’s model update (2.5 MB of model weights)…', tone: 'busy', progress: 1 });
    expect(statusLine({ ...base, phase: 'training', sampled: true }).text).toBe('Waiting for the other hospitals to finish round 4. 3 of 20 rounds complete.');
    expect(statusLine({ ...base, phase: 'training', sampled: false }).text).toBe('Waiting: the other hospitals are training round 4. 3 of 20 rounds complete.');
  });

  it('says plainly when the server is gone, refused the token, or the federation is over', () => {
    const now = 1_000_000;
    expect(statusLine({ ...base, connection: 'retrying', retryAt: now + 4200, lastClose: { code: 1006, reason: '' } }, now)).toEqual({
      text: 'The federation server cannot be reached. Retrying in 5 s… Your tiles and the last model are safe on this computer.',
      tone: 'warn',
    });
    expect(statusLine({ ...base, connection: 'retrying', retryAt: now - 1, lastClose: { code: 4009, reason: '' } }, now).text).toMatch(/^Another computer is connected with this hospital’s token\. Retrying now…/);
    expect(statusLine({ ...base, connection: 'refused', joined: false, error: 'bad token' })).toEqual({ text: 'bad token', tone: 'error' });
    expect(statusLine({ ...base, connection: 'finished', round: 20 }).tone).toBe('ok');
  });
});

describe('connectionBadge', () => {
  it('names the hospital when connected', () => {
    expect(connectionBadge(base)).toEqual({ text: 'Connected as hospital-a', tone: 'ok' });
    expect(connectionBadge({ ...base, connection: 'retrying' })).toEqual({ text: 'Server unreachable', tone: 'warn' });
    expect(connectionBadge(undefined)).toEqual({ text: 'Not connected', tone: 'neutral' });
  });
});
