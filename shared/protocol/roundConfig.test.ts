import { describe, expect, it } from 'vitest';
import { parseFedConfig } from '../config/fedConfig.ts';
import { configureRound } from '../fed/strategy.ts';
import { PROTOCOL_VERSION, roundConfigSchema, SUPPORTED_PROTOCOL_VERSIONS } from './messages.ts';
import { roundConfig } from './testDoubles.ts';
import { describeIssues } from './validation.ts';

/** The round's budget on the wire: RoundConfig.localSteps (protocol version 2). */
describe('RoundConfig carries localSteps', () => {
  const issues = (v: unknown) => {
    const r = roundConfigSchema.safeParse(v);
    return r.success ? '' : describeIssues(r.error.issues);
  };

  it('requires a whole number of steps ≥ 1 and names the field otherwise', () => {
    expect(roundConfigSchema.parse({ ...roundConfig, localSteps: 200 }).localSteps).toBe(200);
    const { localSteps: _, ...without } = roundConfig;
    expect(issues(without)).toMatch(/^localSteps: /);
    expect(issues({ ...roundConfig, localSteps: 0 })).toMatch(/^localSteps: /);
    expect(issues({ ...roundConfig, localSteps: 2.5 })).toMatch(/^localSteps: /);
    // A version-1 round (whole epochs) is not a version-2 round.
    expect(issues({ ...without, localEpochs: 1 })).toMatch(/^localSteps: /);
  });

  it('is what configureRound sends from the federation config, in protocol version 2 and later', () => {
    const fed = parseFedConfig({ rounds: 4, localSteps: 37, model: { imageSize: 16 } });
    const { config } = configureRound(fed, { round: 2, attempt: 1, available: ['a', 'b'] });
    expect(config.localSteps).toBe(37);
    expect(roundConfigSchema.parse(JSON.parse(JSON.stringify(config))).localSteps).toBe(37);
    expect(parseFedConfig({}).localSteps).toBe(200);
    expect([PROTOCOL_VERSION, [...SUPPORTED_PROTOCOL_VERSIONS]]).toEqual([3, [3, 2]]);
  });
});
