import { describe, expect, it } from 'vitest';
import { ConfigError } from './configError.ts';
import { parseFedConfig, parseFedConfigText } from './fedConfig.ts';

describe('federation config', () => {
  it('has defaults for two hospitals, sized in generator steps: 100 rounds × 200 local steps = 20,000 along the federation', () => {
    const c = parseFedConfig({});
    expect(c).toMatchObject({ fraction: 1, minFit: 2, minAvailable: 2, minCompletion: 2, aggregator: { type: 'fedavg' }, batchNorm: 'average', rounds: 100, localSteps: 200 });
    expect(c.rounds * c.localSteps).toBe(20_000);
    expect('localEpochs' in c).toBe(false);
    expect(c.model.imageSize).toBe(64);
    expect(c.model.optimizerG.learningRate).toBe(2e-4);
    // Robust by default: the update-norm bound derived from the model (shared/fed/strategy.ts autoMaxUpdateNorm).
    expect(c.maxUpdateNorm).toBe('auto');
  });

  it('takes maxUpdateNorm as "auto", a positive number or null (no bound), and names a bad one', () => {
    expect(parseFedConfig({ maxUpdateNorm: 'auto' }).maxUpdateNorm).toBe('auto');
    expect(parseFedConfig({ maxUpdateNorm: 25 }).maxUpdateNorm).toBe(25);
    expect(parseFedConfig({ maxUpdateNorm: null }).maxUpdateNorm).toBeNull();
    expect(parseFedConfigText('maxUpdateNorm: null\n', 'f.yaml').maxUpdateNorm).toBeNull();
    expect(() => parseFedConfig({ maxUpdateNorm: 0 })).toThrow(/maxUpdateNorm: /);
    expect(() => parseFedConfig({ maxUpdateNorm: Infinity })).toThrow('maxUpdateNorm: must be "auto", a positive number or null (no bound)');
    expect(() => parseFedConfig({ maxUpdateNorm: 'off' })).toThrow('maxUpdateNorm: must be "auto", a positive number or null (no bound)');
  });

  it('caps example counts at 4 × the previous round\'s median by default (examples.medianFactor): a number ≥ 1 or null, a bad one named', () => {
    expect(parseFedConfig({}).examples).toEqual({ min: 1, max: 10_000_000, medianFactor: 4 });
    // Setting min or max keeps the default factor.
    expect(parseFedConfig({ examples: { max: 5000 } }).examples).toEqual({ min: 1, max: 5000, medianFactor: 4 });
    expect(parseFedConfig({ examples: { medianFactor: 2.5 } }).examples.medianFactor).toBe(2.5);
    expect(parseFedConfigText('examples: { medianFactor: null }\n', 'f.yaml').examples.medianFactor).toBeNull();
    for (const bad of [0.5, 0, -1, Infinity, 'off', '4']) {
      expect(() => parseFedConfig({ examples: { medianFactor: bad } })).toThrow('examples.medianFactor: must be a number of at least 1, or null (no median cap)');
    }
  });

  it('names every bad field, including the model and cross-field rules', () => {
    try {
      parseFedConfig({ rounds: 0, fraction: 2, minFit: 5, minAvailable: 3, aggregator: { type: 'trimmed-mean', beta: 0.5 }, model: { imageSize: 20 }, extra: 1 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const paths = (e as ConfigError).problems.map((p) => p.path);
      expect(paths).toEqual(expect.arrayContaining(['rounds', 'fraction', 'aggregator.beta', '', 'model.imageSize']));
    }
    expect(() => parseFedConfig({ minFit: 3 })).toThrow('minFit: must be at most minAvailable (2)');
    expect(() => parseFedConfig({ minCompletion: 3, minFit: 2 })).toThrow('minCompletion: must be at most minFit (2)');
    expect(() => parseFedConfig({ examples: { min: 10, max: 5 } })).toThrow('examples.min');
  });

  it('takes localSteps as the round budget and names a bad one', () => {
    expect(parseFedConfig({ rounds: 3, localSteps: 7 })).toMatchObject({ rounds: 3, localSteps: 7 });
    expect(() => parseFedConfig({ localSteps: 0 })).toThrow('invalid federation config: localSteps: must be at least 1');
    expect(() => parseFedConfig({ localSteps: 2.5 })).toThrow(/localSteps: /);
    expect(() => parseFedConfig({ localSteps: '200' })).toThrow(/localSteps: /);
  });

  it('refuses the old localEpochs with a message naming what replaced it, alongside the other problems', () => {
    expect(() => parseFedConfig({ localEpochs: 1 })).toThrow(
      'invalid federation config: localEpochs: no longer a setting: a round is sized in generator steps; set localSteps instead (default 200)',
    );
    try {
      parseFedConfig({ localEpochs: 2, localSteps: 50, rounds: 0 }, 'f.yaml');
      expect.unreachable();
    } catch (e) {
      expect((e as ConfigError).problems.map((p) => p.path).sort()).toEqual(['localEpochs', 'rounds']);
    }
  });

  it('reads YAML and JSON text', () => {
    expect(parseFedConfigText('rounds: 3\naggregator: {type: median}\n', 'f.yaml')).toMatchObject({ rounds: 3, aggregator: { type: 'median' } });
    expect(parseFedConfigText('{"rounds": 4, "model": {"gan": "wgan-gp"}}', 'f.json').model.optimizerG).toEqual({ learningRate: 1e-4, beta1: 0, beta2: 0.9 });
    expect(parseFedConfigText('', 'empty.yaml')).toMatchObject({ rounds: 100, localSteps: 200 });
    expect(() => parseFedConfigText('rounds: [', 'broken.yaml')).toThrow(/invalid broken.yaml: \(root\): not valid JSON or YAML/);
  });
});
