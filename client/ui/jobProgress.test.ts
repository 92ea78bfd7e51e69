import { describe, expect, it } from 'vitest';
import { JobMeter } from '../job.ts';
import { formatRate, jobProgressText } from './jobProgress.ts';

describe('JobMeter', () => {
  it('measures items a second from the first reading of a stage, and the time left at that rate', () => {
    const m = new JobMeter(1, 500);
    m.record(0, 1000, 'generating', 10_000);
    expect(m.rate).toBeUndefined();
    m.record(32, 1000, 'generating', 10_400);
    expect(m.rate).toBeUndefined(); // under 500 ms measured
    m.record(64, 1000, 'generating', 12_000);
    // 64 items in 2 s = 32/s; 936 left → 29.25 s
    expect(m.rate).toEqual({ perSecond: 32, secondsLeft: 29.25 });
  });

  it('starts again when the stage changes (each stage has its own speed)', () => {
    const m = new JobMeter(1, 0);
    m.record(0, 100, 'Generating tiles', 0);
    m.record(50, 100, 'Generating tiles', 1000);
    expect(m.rate?.perSecond).toBe(50);
    m.record(50, 100, 'Features of your tiles', 1000);
    expect(m.rate).toBeUndefined();
    m.record(60, 100, 'Features of your tiles', 3000);
    // 10 items in 2 s = 5/s; 40 left → 8 s
    expect(m.rate).toEqual({ perSecond: 5, secondsLeft: 8 });
  });

  it('refuses readings that are not numbers', () => {
    expect(() => new JobMeter().record(Number.NaN, 1, 's', 0)).toThrow('job progress must be finite numbers (got NaN of 1 at 0 ms)');
  });
});

describe('jobProgressText', () => {
  it('says the stage, the count, the measured speed and the time left', () => {
    expect(jobProgressText('Generating', 1200, 40_000, { perSecond: 14.3, secondsLeft: 2713 }, 'images')).toBe('Generating: 1,200 of 40,000 images — 14.3 images/s, about 45 min left.');
    expect(jobProgressText('Generating', 0, 64, undefined, 'images')).toBe('Generating: 0 of 64 images — measuring the speed…');
    expect(jobProgressText('Generating', 64, 64, { perSecond: 300, secondsLeft: 0 }, 'images')).toBe('Generating: 64 of 64 images.');
  });

  it('words rates of every size', () => {
    expect(formatRate(0.4234)).toBe('0.42');
    expect(formatRate(14.26)).toBe('14.3');
    expect(formatRate(1234.4)).toBe('1,234');
  });
});
