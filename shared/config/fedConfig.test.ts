import { describe, expect, it } from 'vitest';
import { ConfigError } from './configError.ts';
import { parseFedConfig, parseFedConfigText } from './fedConfig.ts';

describe('federation config', () => {
  it('has defaults for a two-hospital demo on browser GPUs', () => {
    const c = parseFedConfig({});
    expect(c).toMatchObject({ fraction: 1, minFit: 2, minAvailable: 2, minCompletion: 2, aggregator: { type: 'fedavg' }, batchNorm: 'average', localEpochs: 1 });
    expect(c.model.imageSize).toBe(64);
    expect(c.model.optimizerG.learningRate).toBe(2e-4);
    expect(c.maxUpdateNorm).toBeUndefined();
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

  it('reads YAML and JSON text', () => {
    expect(parseFedConfigText('rounds: 3\naggregator: {type: median}\n', 'f.yaml')).toMatchObject({ rounds: 3, aggregator: { type: 'median' } });
    expect(parseFedConfigText('{"rounds": 4, "model": {"gan": "wgan-gp"}}', 'f.json').model.optimizerG).toEqual({ learningRate: 1e-4, beta1: 0, beta2: 0.9 });
    expect(parseFedConfigText('', 'empty.yaml').rounds).toBe(20);
    expect(() => parseFedConfigText('rounds: [', 'broken.yaml')).toThrow(/invalid broken.yaml: \(root\): not valid JSON or YAML/);
  });
});
