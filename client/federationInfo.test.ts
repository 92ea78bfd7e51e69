import { describe, expect, it } from 'vitest';
import { federationInfoFromStatus, statusUrl } from './federationInfo.ts';

describe('federationInfoFromStatus', () => {
  it('reads classes, image size and history from /api/status', () => {
    const info = federationInfoFromStatus(
      {
        phase: 'waiting',
        round: 2,
        rounds: 5,
        fingerprint: 'f00d',
        parameters: 1234,
        config: { rounds: 5, localSteps: 40, batchNorm: 'local', minAvailable: 3, model: { imageSize: 32, classes: ['A', 'B', 'C'] } },
        history: [{ round: 1, participants: 3, hospitals: ['x'], examples: 10, dLoss: 1, gLoss: 2, seconds: 3, attempts: 1, completedAt: '2026-01-01T00:00:00Z' }],
      },
      42,
    );
    expect(info).toMatchObject({ classes: ['A', 'B', 'C'], imageSize: 32, ganType: 'acgan', rounds: 5, round: 2, localSteps: 40, batchNorm: 'local', minAvailable: 3, fingerprint: 'f00d', live: true, fetchedAt: 42 });
    expect(info.history).toEqual([{ round: 1, participants: 3, examples: 10, dLoss: 1, gLoss: 2, seconds: 3, completedAt: '2026-01-01T00:00:00Z' }]);
    // A server config without localSteps (no estimate can be made): left out, not guessed.
    expect('localSteps' in federationInfoFromStatus({ phase: 'waiting', config: { model: {} } })).toBe(false);
  });

  it('keeps the quality the server recorded in a history entry (the curve of the web app)', () => {
    const quality = { round: 5, kid: 0.031, kidStd: 0.004, hospitals: 2, examples: 40, features: 'mobilenet-v2' };
    const entry = { round: 6, participants: 2, hospitals: ['x', 'y'], examples: 40, dLoss: 1, gLoss: 2, seconds: 3, attempts: 1, completedAt: '2026-01-01T00:00:00Z' };
    const info = federationInfoFromStatus({ phase: 'waiting', config: { model: {} }, history: [{ ...entry, round: 5 }, { ...entry, quality }] });
    expect(info.history.map((h) => h.quality)).toEqual([undefined, quality]);
    expect('quality' in info.history[0]).toBe(false);
  });

  it("keeps the federation's quality schedule (quality.everyRounds), 0 included; leaves it out when absent or malformed", () => {
    const info = (quality: unknown) => federationInfoFromStatus({ phase: 'waiting', config: { model: {}, quality } });
    expect(info({ everyRounds: 5 }).qualityEveryRounds).toBe(5);
    expect(info({ everyRounds: 0 }).qualityEveryRounds).toBe(0);
    expect('qualityEveryRounds' in info(undefined)).toBe(false);
    expect('qualityEveryRounds' in info({ everyRounds: -1 })).toBe(false);
    expect('qualityEveryRounds' in info({ everyRounds: '5' })).toBe(false);
  });

  it('explains a server that is still loading or is not a federation server', () => {
    expect(() => federationInfoFromStatus({ phase: 'loading' })).toThrow('the federation server is still loading its model; try again in a moment');
    expect(() => federationInfoFromStatus({ phase: 'waiting' })).toThrow('the server status has no config.model (is this a fedgan-crc federation server?)');
    expect(() => federationInfoFromStatus({ config: { model: { imageSize: 12 } } })).toThrow(/imageSize/);
  });

  it('builds the status URL from the page URL', () => {
    expect(statusUrl('https://fed.example.org/app/?token=x')).toBe('https://fed.example.org/api/status');
  });
});
