import { describe, expect, it } from 'vitest';
import { BARELY_TRAINED_STEPS, checkFiguresOf, DIVERSITY_MIN_RATIO, FID_FLOOR_FACTOR, judgeCheck, judgeOutput, latestProbe, PROBE_KID_FAR, type CheckFigures } from './verdict.ts';

/** A quality check of the round-`round` model: FID `ratio`× a floor of 0.1, diversity `div` of real, p5 distances. */
function check(round: number, ratio: number, div = 0.9, p5: [number, number] = [0.6, 0.5]): CheckFigures {
  return {
    round,
    extractor: 'inception-v3',
    fid: 0.1 * ratio,
    floorFid: 0.1,
    kid: 0.01,
    floorKid: 0.001,
    diversity: { MSIH: { synthetic: div * 2, real: 2 }, nonMSIH: { synthetic: 2, real: 2 } },
    memorization: { syntheticToReal: { p5: p5[0] }, realToReal: { p5: p5[1] } },
  };
}

const probe = (kid: number, round = 1, features = 'mobilenet-v2') => ({ round, kid, kidStd: 0.004, features });

describe('judgeOutput', () => {
  it('says a barely trained model is not usable, how far it is, and why (the issue’s example)', () => {
    const v = judgeOutput({ model: { round: 1, rounds: 80, localSteps: 250 }, probe: probe(0.09) });
    expect(v.level).toBe('not-yet');
    expect(v.headline).toBe('These images are not yet usable: the model has trained 250 of the 20,000 steps the federation plans and its images are still far from real tissue.');
    expect(v.reasons).toEqual([
      'It is barely trained: 250 of the 20,000 generator steps the federation plans; under 1,000 steps this project’s models still draw blobs, not tissue.',
      'The federation’s quality probe finds the images still far from real tissue (KID 0.090 ± 0.004 of the round-1 model on mobilenet-v2 features; 0.04 or more means far).',
    ]);
  });

  it('calls a finished but tiny federation barely trained without any quality figure', () => {
    const v = judgeOutput({ model: { round: 2, rounds: 2, localSteps: 3 } });
    expect(v.level).toBe('not-yet');
    expect(v.headline).toBe('These images are not yet usable: the model has trained only 6 steps, too few to draw tissue.');
  });

  it('is unknown, and says to run the quality check, when trained long enough and the probe does not rule it out', () => {
    const v = judgeOutput({ model: { round: 100, rounds: 100, localSteps: 200 }, probe: probe(0.01, 100) });
    expect(v.level).toBe('unknown');
    expect(v.headline).toBe('Not known yet whether these images are usable: run the quality check (step 6) to find out before relying on them.');
    expect(v.reasons[0]).toBe('The model has trained all 20,000 generator steps the federation planned.');
    expect(v.reasons).toContain('No quality check of this model has been run in this browser.');
  });

  it('is unknown with nothing at all measured', () => {
    expect(judgeOutput({}).level).toBe('unknown');
  });

  it('judges the probe KID against its threshold, inclusive, and only for the features it was measured with', () => {
    const model = { round: 40, rounds: 100, localSteps: 200 };
    expect(judgeOutput({ model, probe: probe(PROBE_KID_FAR) }).level).toBe('not-yet');
    expect(judgeOutput({ model, probe: probe(PROBE_KID_FAR) }).headline).toBe('These images are not yet usable: they are still far from real tissue.');
    expect(judgeOutput({ model, probe: probe(0.0399) }).level).toBe('unknown');
    expect(judgeOutput({ model, probe: probe(0.5, 1, 'inception-v3') }).level).toBe('unknown');
  });

  it('calls the output usable when the quality check meets every goal, even early in the federation', () => {
    const v = judgeOutput({ model: { round: 2, rounds: 80, localSteps: 250 }, probe: probe(0.09, 2), check: check(2, FID_FLOOR_FACTOR, DIVERSITY_MIN_RATIO, [0.5, 0.5]) });
    expect(v.level).toBe('usable');
    expect(v.headline).toBe('These images pass the checks this app can make: close to real tissue, as varied as your tiles, and no sign of copying. Check a few by eye before use.');
    expect(v.reasons).toContain('Generated tiles are about as close to your tiles as other real tiles are (quality check on inception-v3 features: FID 0.30 against 0.10 for real tiles, 3.0×; at most 3× counts as close).');
  });

  it('refuses noise even though nothing is copied: memorisation OK is not "good"', () => {
    const v = judgeOutput({ model: { round: 36, rounds: 36, localSteps: 25 }, check: check(36, 63) });
    expect(v.level).toBe('not-yet');
    expect(v.headline).toBe('These images are not yet usable: the model has trained only 900 steps and they are still far from real tissue.');
    expect(v.reasons).toContain('No sign of copying — but that says nothing good while the images do not look like tissue.');
    expect(v.reasons).toContain('Generated tiles are still far from real tissue (quality check on inception-v3 features: FID 6.30 against 0.10 for real tiles, 63.0×; at most 3× counts as close).');
  });

  it('names each failed goal: not close enough, too little variety, possible copies', () => {
    const v = judgeOutput({ model: { round: 100, rounds: 100, localSteps: 200 }, check: check(100, 5, 0.5, [0.3, 0.5]) });
    expect(v.level).toBe('not-yet');
    expect(v.headline).toBe('These images are not yet usable: some look like copies of your tiles, they are not yet close enough to real tissue and they vary less than real tiles.');
    expect(v.reasons).toContain('Generated MSIH tiles vary less than yours (MSIH 0.50 of your tiles’ variety; at least 0.8 needed).');
  });

  it('ignores a quality check of an older model, and says so', () => {
    const v = judgeOutput({ model: { round: 100, rounds: 100, localSteps: 200 }, check: check(99, 1) });
    expect(v.level).toBe('unknown');
    expect(v.reasons).toContain('The last quality check was of the round-99 model, not this one (round 100): run it again.');
  });

  it('refuses figures that are not numbers', () => {
    expect(() => judgeOutput({ model: { round: Number.NaN, rounds: 2 } })).toThrow('verdict: round must be a finite number, got NaN');
  });

  it('takes the probe of the newest model from a round history', () => {
    expect(latestProbe([{ quality: probe(0.1, 4) }, {}, { quality: probe(0.2, 9) }, { quality: probe(0.3, 5) }])).toEqual(probe(0.2, 9));
    expect(latestProbe([{}])).toBeUndefined();
  });

  it('pins its thresholds (the quality report’s goals take the same constants: eval/report/goals.test.ts)', () => {
    expect(FID_FLOOR_FACTOR).toBe(3);
    expect(DIVERSITY_MIN_RATIO).toBe(0.8);
    expect(BARELY_TRAINED_STEPS).toBe(1000);
  });

  it('takes a Quality panel report’s figures: FID and KID at the floor’s sample size', () => {
    const report = {
      round: 3,
      extractor: { name: 'mobilenet-v2', description: 'x' },
      fid: 9,
      floor: { n: 40, fid: 0.5, kid: 0.001, syntheticFid: 2, syntheticKid: 0.02 },
      diversity: { A: { synthetic: 1, real: 2 } },
      memorization: { syntheticToReal: { p5: 0.4, median: 1 }, realToReal: { p5: 0.3, median: 1 } },
    };
    expect(checkFiguresOf(report)).toEqual({
      round: 3,
      extractor: 'mobilenet-v2',
      fid: 2,
      floorFid: 0.5,
      kid: 0.02,
      floorKid: 0.001,
      diversity: { A: { synthetic: 1, real: 2 } },
      memorization: { syntheticToReal: { p5: 0.4 }, realToReal: { p5: 0.3 } },
    });
    // 4× the floor: not close, not far; diversity 0.5; no copies.
    expect(judgeCheck(checkFiguresOf(report))).toMatchObject({ close: false, far: false, varied: false, copies: false, memorization: 'No sign of copying: generated tiles are not closer to your tiles than your tiles are to each other.' });
  });
});
