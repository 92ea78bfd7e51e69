import { describe, expect, it } from 'vitest';
import type { FederationView, HospitalView } from './api.ts';
import { changedSettings, fieldOfRefusal, fieldSentence } from './controlView.ts';
import { ConsoleError } from './api.ts';
import { hospitalNameProblem } from './hospitalsView.ts';
import { webAppAgent } from '../agent.ts';
import { sinceIso } from './auditView.ts';
import { ago, auditDetails, duration, engineText, epsilonText, failureText, federationHeadline, phaseLabel, timeLeft } from './wording.ts';

const fed = (over: Partial<FederationView> = {}): FederationView => ({ phase: 'training', paused: false, stopped: false, round: 2, totalRounds: 5, attempt: 1, deadline: null, ...over });
const hospital = (name: string, online: boolean, over: Partial<HospitalView> = {}): HospitalView => ({ name, online, sampled: false, progress: null, lastUpdateAt: null, examplesDeclared: null, failures: [], epsilon: null, revoked: false, ...over });

describe('console wording', () => {
  it('says what the federation does and what it waits for', () => {
    expect(federationHeadline(fed())).toEqual({ text: 'Training round 3 of 5.', tone: 'busy' });
    expect(federationHeadline(fed({ attempt: 2 })).text).toBe('Training round 3 of 5 (attempt 2).');
    expect(federationHeadline(fed({ paused: true })).text).toBe('Paused by the operator (2 of 5 rounds complete). The round in flight finishes; no new round starts until you resume.');
    expect(federationHeadline(fed({ paused: true, phase: 'waiting', attempt: null })).text).toBe('Paused by the operator (2 of 5 rounds complete). No new round starts until you resume.');
    expect(federationHeadline(fed({ stopped: true, paused: true }))).toEqual({ text: 'Stopped by the operator (2 of 5 rounds complete). No round runs until you resume; the last global model is kept and can be downloaded.', tone: 'error' });
    const now = Date.parse('2026-12-02T22:00:00Z');
    expect(federationHeadline(fed({ phase: 'waiting', attempt: null, nextAttemptAt: '2026-12-02T22:00:12Z' }), [], now).text).toBe('The last attempt at round 3 of 5 failed; the next attempt starts in 12 s if enough hospitals are online.');
    expect(federationHeadline(fed({ phase: 'waiting', attempt: null, retryStopped: true }), [], now).tone).toBe('error');
    expect(federationHeadline(fed({ phase: 'finished', round: 5 })).text).toBe('Finished: all 5 rounds are complete. Extend the rounds (Control) to train further.');
    expect(federationHeadline(fed({ phase: 'waiting', minAvailable: 2 }), [hospital('a', true), hospital('b', false), hospital('c', true, { revoked: true })]).text).toBe(
      'Waiting for hospitals to connect before round 3 of 5 starts (1 of the 2 needed are online).',
    );
    expect(phaseLabel(fed({ paused: true }))).toBe('Training · paused');
    expect(phaseLabel(fed({ phase: 'aggregating' }))).toBe('Combining updates');
  });

  it('counts time left and time since in plain units', () => {
    const now = Date.parse('2026-12-02T22:00:00Z');
    expect(timeLeft('2026-12-02T22:04:12Z', now)).toBe('4 min 12 s left');
    expect(timeLeft('2026-12-02T21:59:00Z', now)).toBe('past the deadline');
    expect(timeLeft(null, now)).toBeNull();
    expect(duration(59)).toBe('59 s');
    expect(duration(120)).toBe('2 min');
    expect(duration(7500)).toBe('2 h 5 min');
    expect(ago('2026-12-02T21:59:48Z', now)).toBe('12 s ago');
    expect(ago('2026-12-02T21:57:00Z', now)).toBe('3 min ago');
    expect(ago('2026-12-02T21:59:58Z', now)).toBe('just now');
    expect(ago(null, now)).toBe('never');
  });

  it('explains a hospital’s failures, and shows ε only as a number', () => {
    expect(failureText({ round: 3, attempt: 1, reason: 'deadline' })).toBe('Round 3: did not send its update before the deadline');
    expect(failureText({ round: 3, attempt: 2, reason: 'disconnected' })).toBe('Round 3, attempt 2: its connection dropped during the round and it did not come back in time');
    expect(failureText({ round: 5, attempt: 1, reason: 'stopped' })).toBe('Round 5: the operator stopped the federation during the round');
    expect(failureText({ round: 4, attempt: 1, reason: 'its update was 3.2 times the allowed norm' })).toBe('Round 4: its update was 3.2 times the allowed norm');
    expect(epsilonText(1.23456)).toBe('1.23');
    expect(epsilonText(null)).toBe('–');
    expect(auditDetails({ at: 't', type: 'x', actor: 'operator', hash: 'abc', prev: 'def', seq: 3, details: { totalRounds: 8, from: { a: 1 } } })).toBe('totalRounds: 8, from: {"a":1}');
    expect(auditDetails({ at: 't', type: 'round-aggregated', details: { round: 4, hospitals: ['h1', 'h2'], dLoss: 2.8168298403422036 } })).toBe('round: 4, hospitals: h1 + h2, dLoss: 2.817');
  });

  it('says what a connected hospital trains on, from what its software said of itself', () => {
    expect(engineText('fedgan-web/0.1 (webgpu)')).toBe('Web app, WebGPU (the graphics card)');
    expect(engineText('fedgan-web/0.1 (webgpu; software renderer)')).toBe('Web app, WebGPU on a software renderer (the processor)');
    expect(engineText('fedgan-web/0.1 (webgl)')).toBe('Web app, WebGL (the graphics card)');
    expect(engineText('fedgan-web/0.1 (wasm)')).toBe('Web app, WebAssembly (the processor)');
    expect(engineText('fedgan-web/0.1 (cpu)')).toBe('Web app, CPU (the processor)');
    // What the web app sends (client/agent.ts) reads back.
    expect(engineText(webAppAgent('wasm', false))).toBe('Web app, WebAssembly (the processor)');
    expect(engineText(webAppAgent('webgpu', true))).toBe('Web app, WebGPU on a software renderer (the processor)');
    expect(webAppAgent('webgl', false)).toBe('fedgan-web/0.1 (webgl)');
    expect(engineText('fedgan-simulate')).toBe('Node hospital (command line)');
    // Other software's own words, cut; nothing said, nothing shown.
    expect(engineText('clinic-tool/2 (custom)')).toBe('clinic-tool/2 (custom)');
    expect(engineText('x'.repeat(80))).toBe(`${'x'.repeat(59)}…`);
    expect(engineText(null)).toBeNull();
    expect(engineText('')).toBeNull();
  });
});

describe('console forms', () => {
  const current = { fraction: 1, minFit: 2, minCompletion: 2, roundDeadlineSeconds: 300, localSteps: 20, aggregator: { type: 'fedavg', beta: 0.1 } };

  it('sends only the changed round settings, and refuses what is not a number before asking the server', () => {
    const same = { fraction: '1', minFit: '2', minCompletion: '2', roundDeadlineSeconds: '300', localSteps: '20', 'aggregator.type': 'fedavg', 'aggregator.beta': '0.1' };
    expect(changedSettings(same, current)).toEqual({ patch: {}, invalid: {} });
    expect(changedSettings({ ...same, localSteps: '40', 'aggregator.type': 'trimmed-mean' }, current)).toEqual({ patch: { localSteps: 40, aggregator: { type: 'trimmed-mean', beta: 0.1 } }, invalid: {} });
    expect(changedSettings({ ...same, localSteps: '2.5', fraction: 'abc' }, current).invalid).toEqual({ fraction: 'Enter a number.', localSteps: 'Enter a whole number.' });
  });

  it('puts a refusal next to the field it is about', () => {
    expect(fieldOfRefusal(new ConsoleError('must be at least 1', 400, 'localSteps'))).toBe('localSteps');
    expect(fieldOfRefusal(new ConsoleError('must be below 0.5', 400, 'aggregator.beta'))).toBe('aggregator.beta');
    expect(fieldOfRefusal(new ConsoleError('roundDeadlineSeconds: must be positive', 400))).toBe('roundDeadlineSeconds');
    expect(fieldOfRefusal(new ConsoleError('minCompletion (3) cannot exceed minFit (2)', 400))).toBe('minCompletion');
    expect(fieldOfRefusal(new ConsoleError('model.imageSize cannot change during a federation', 400))).toBeUndefined();
    expect(fieldSentence(new ConsoleError('settings refused: localSteps: must be at least 1', 400, 'localSteps'), 'localSteps')).toBe('Must be at least 1.');
    expect(fieldSentence(new ConsoleError('settings refused', 400, 'fraction', undefined, 'fraction: must be at most 1'), 'fraction')).toBe('Must be at most 1.');
    expect(fieldSentence(new ConsoleError('settings refused: localSteps: must be at least 1', 400, 'localSteps', undefined, 'must be at least 1'), 'localSteps')).toBe('Must be at least 1.');
    expect(fieldSentence(new ConsoleError('minCompletion (3) cannot exceed minFit (2)', 400), 'minCompletion')).toBe('minCompletion (3) cannot exceed minFit (2)');
  });

  it('checks a new hospital’s name like the tokens file does', () => {
    expect(hospitalNameProblem('st-marys_2.b')).toBeNull();
    expect(hospitalNameProblem('')).toBe('Enter the hospital’s name.');
    expect(hospitalNameProblem('St Mary')).toBe('Use only letters, digits, dots, dashes and underscores (no spaces).');
    expect(hospitalNameProblem('x'.repeat(65))).toBe('The name is 65 characters long; at most 64.');
  });

  it('turns the "since" filter (local time) into an ISO time', () => {
    expect(sinceIso('')).toBe('');
    expect(Date.parse(sinceIso('2026-12-02T10:30'))).toBe(new Date(2026, 11, 2, 10, 30).getTime());
    expect(sinceIso('not a time')).toBe('');
  });
});
