import { describe, expect, it } from 'vitest';
import type { FedStatus } from '../api.ts';
import { accessAction, connectionBadge, engineFailure, hardwareNote, statusLine } from './statusText.ts';

const base: FedStatus = { joined: true, connection: 'connected', activity: 'waiting', hospital: 'hospital-a', round: 3, rounds: 20, phase: 'waiting', connectedHospitals: 2, minAvailable: 2 };

describe('statusLine', () => {
  it('says what to do before joining', () => {
    expect(statusLine(undefined).text).toBe('Not taking part yet. Enter the access token and press “Join the federation”.');
  });

  it('asks for what the first step needs first: tiles, then the token', () => {
    expect(statusLine(undefined, 0, { hasTiles: false })).toEqual({
      text: 'Not taking part yet. First import this hospital’s tiles (step 3), then enter the access token and press “Join the federation”.',
      tone: 'neutral',
    });
    expect(statusLine(undefined, 0, { hasTiles: true }).text).toBe('Not taking part yet. Enter the access token and press “Join the federation”.');
    // After Leave (not joined, offline) the same first step, not "Connecting…".
    expect(statusLine({ ...base, joined: false, connection: 'offline', activity: 'idle' }, 0, { hasTiles: true }).text).toBe('Not taking part yet. Enter the access token and press “Join the federation”.');
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
    expect(statusLine({ ...base, connection: 'refused', joined: false, error: 'bad token' })).toEqual({ text: 'bad token', tone: 'error' });
  });

  it('a token in use elsewhere is its own state, not "server unreachable", and says what to do', () => {
    const now = 1_000_000;
    expect(statusLine({ ...base, connection: 'token-in-use', retryAt: now + 7600 }, now)).toEqual({
      text: 'This hospital’s access token is in use on another computer or in another browser, and only one may take part with it at a time. Trying again in 8 s, in case it has left; press “Stop trying” to give up here.',
      tone: 'warn',
    });
    expect(statusLine({ ...base, connection: 'token-in-use' }, now)).toEqual({
      text: 'This hospital’s access token is in use on another computer or in another browser, and only one may take part with it at a time. This page stopped trying. Leave the federation on the other computer, then press “Try again”.',
      tone: 'error',
    });
    expect(connectionBadge({ ...base, connection: 'token-in-use' })).toEqual({ text: 'Token in use elsewhere', tone: 'error' });
  });

  it('never says in green that the finished federation’s images can be used without a measured verdict', () => {
    const finished: FedStatus = { ...base, connection: 'finished', round: 20 };
    expect(statusLine(finished)).toEqual({
      text: 'The federation is finished: all 20 rounds are complete. Whether its images are usable is not known yet: run the quality check (step 6) before using an export.',
      tone: 'neutral',
    });
    expect(statusLine(finished, 0, { verdict: { text: 'The images are not usable yet: noise.', level: 'not-yet' } })).toEqual({
      text: 'The federation is finished: all 20 rounds are complete. The images are not usable yet: noise.',
      tone: 'warn',
    });
    expect(statusLine(finished, 0, { verdict: { text: 'The images look usable.', level: 'usable' } }).tone).toBe('ok');
    expect(statusLine(finished, 0, { verdict: { text: 'Not known yet.', level: 'unknown' } }).tone).toBe('neutral');
    expect(statusLine({ ...finished, rounds: 1, round: 1 }).text).toMatch(/^The federation is finished: its round is complete\. /);
  });
});

describe('accessAction', () => {
  it('offers a way out of every state', () => {
    expect(accessAction(undefined)).toEqual({ action: 'join', label: 'Join the federation' });
    expect(accessAction({ ...base, joined: false, connection: 'offline' })).toEqual({ action: 'join', label: 'Join the federation' });
    expect(accessAction({ ...base, joined: false, connection: 'refused' })).toEqual({ action: 'join', label: 'Join the federation' });
    expect(accessAction({ ...base, connection: 'connecting' })).toEqual({ action: 'stop', label: 'Leave' });
    expect(accessAction({ ...base, connection: 'retrying', retryAt: 5 })).toEqual({ action: 'stop', label: 'Leave' });
    expect(accessAction(base)).toEqual({ action: 'stop', label: 'Leave' });
    expect(accessAction({ ...base, connection: 'token-in-use', retryAt: 5 })).toEqual({ action: 'stop', label: 'Stop trying' });
    expect(accessAction({ ...base, connection: 'token-in-use' })).toEqual({ action: 'join', label: 'Try again' });
    expect(accessAction({ ...base, connection: 'finished' })).toEqual({ action: 'none', label: '' });
  });
});

describe('connectionBadge', () => {
  it('names the hospital when connected', () => {
    expect(connectionBadge(base)).toEqual({ text: 'Connected as hospital-a', tone: 'ok' });
    expect(connectionBadge({ ...base, connection: 'retrying' })).toEqual({ text: 'Server unreachable', tone: 'warn' });
    expect(connectionBadge(undefined)).toEqual({ text: 'Not connected', tone: 'neutral' });
  });
});

describe('hardwareNote', () => {
  it('labels a software renderer as such, never as the fast graphics card', () => {
    expect(hardwareNote({ backend: 'webgpu', softwareRenderer: 'SwiftShader' })).toEqual({ text: 'WebGPU on a software renderer (SwiftShader): training will be slow', tone: 'warn' });
    expect(hardwareNote({ backend: 'webgpu', softwareRenderer: 'a software renderer' }).text).toBe('WebGPU on a software renderer: training will be slow');
    expect(hardwareNote({ backend: 'webgpu' })).toEqual({ text: 'uses the graphics card (fastest)', tone: 'ok' });
    expect(hardwareNote({ backend: 'webgl' }, true)).toEqual({ text: 'slower than WebGPU: training rounds will take longer (chosen in the page address)', tone: 'warn' });
    expect(hardwareNote({ backend: 'cpu' }).tone).toBe('error');
    expect(engineFailure('no tfjs backend could be initialised: wasm: failed', true)).toBe('The training engine chosen in the page address could not start (no tfjs backend could be initialised: wasm: failed). Open the page without “?backend=” to let it choose one that works.');
    expect(engineFailure('no tfjs backend could be initialised: cpu: failed', false)).toBe('No training engine could start in this browser (no tfjs backend could be initialised: cpu: failed). Use a recent Chrome or Edge with hardware acceleration enabled.');
    expect(hardwareNote({ backend: 'wasm' })).toEqual({ text: 'Warning: training runs on the processor (WebAssembly), not the graphics card, and will be slow', tone: 'error' });
  });
});
