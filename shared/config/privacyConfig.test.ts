import { describe, expect, it } from 'vitest';
import { ConfigError } from './configError.ts';
import { parseFedConfig, parseFedConfigText } from './fedConfig.ts';
import { roundConfig } from '../fed/strategy.ts';
import { roundConfigSchema } from '../protocol/messages.ts';

/** Messages of a config that must fail, path: message each. */
function problems(input: unknown): string[] {
  try {
    parseFedConfig(input);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  throw new Error('the config was accepted');
}

const DP_OK = { quality: { everyRounds: 0 }, privacy: { dp: { enabled: true, noiseMultiplier: 1.1 } } };

describe('privacy section of the federation config', () => {
  it('is off by default, with a clip norm of 1 and δ from the tile count', () => {
    const c = parseFedConfig({});
    expect(c.privacy.dp).toEqual({ enabled: false, clipNorm: 1, delta: null });
    expect(c.privacy.secureAggregation.enabled).toBe(false);
  });

  it('takes DP with a noise multiplier or a target ε (YAML too)', () => {
    expect(parseFedConfig(DP_OK).privacy.dp).toEqual({ enabled: true, noiseMultiplier: 1.1, clipNorm: 1, delta: null });
    const c = parseFedConfigText('quality: { everyRounds: 0 }\nprivacy:\n  dp: { enabled: true, targetEpsilon: 8, clipNorm: 0.5, delta: 1.0e-6 }\n', 'f.yaml');
    expect(c.privacy.dp).toEqual({ enabled: true, targetEpsilon: 8, clipNorm: 0.5, delta: 1e-6 });
  });

  it('needs exactly one of noiseMultiplier and targetEpsilon when enabled', () => {
    expect(problems({ quality: { everyRounds: 0 }, privacy: { dp: { enabled: true } } })).toEqual([
      'privacy.dp: DP is enabled but has no budget: set one of privacy.dp.noiseMultiplier (σ, the noise) or privacy.dp.targetEpsilon (the ε to reach over the planned rounds)',
    ]);
    expect(problems({ quality: { everyRounds: 0 }, privacy: { dp: { enabled: true, noiseMultiplier: 1, targetEpsilon: 3 } } })[0]).toMatch(/^privacy\.dp: set one of .*, not both/);
    // Off: settings may stay in the file.
    expect(parseFedConfig({ privacy: { dp: { enabled: false, noiseMultiplier: 1, targetEpsilon: 3 } } }).privacy.dp.enabled).toBe(false);
  });

  it('names bad values', () => {
    expect(problems({ privacy: { dp: { noiseMultiplier: 0 } } })).toEqual(['privacy.dp.noiseMultiplier: must be above 0 (σ = 0 adds no noise: no privacy)']);
    expect(problems({ privacy: { dp: { clipNorm: -1 } } })).toEqual(['privacy.dp.clipNorm: must be above 0']);
    expect(problems({ privacy: { dp: { delta: 0.5 } } })[0]).toMatch(/^privacy\.dp\.delta: must be at most 0\.01/);
    expect(problems({ privacy: { dp: { epsilon: 3 } } })).toEqual(['privacy.dp: unknown field(s) "epsilon"']);
    expect(problems({ privacy: { dpp: {} } })).toEqual(['privacy: unknown field(s) "dpp"']);
  });

  it('refuses DP with a batch-norm discriminator, saying why', () => {
    const p = problems({ ...DP_OK, model: { gan: 'acgan', discriminator: { type: 'resnet' } } });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^model\.discriminator\.type: differential privacy needs a discriminator without batch norm/);
    expect(p[0]).toMatch(/batch norm mixes the tiles of a batch, so no tile's gradient is its own to clip/);
    expect(p[0]).toMatch(/running statistics/);
    // WGAN-GP's resnet critic uses layer norm: accepted.
    expect(parseFedConfig({ ...DP_OK, model: { gan: 'wgan-gp', discriminator: { type: 'resnet' } } }).privacy.dp.enabled).toBe(true);
    // Without DP the resnet stays fine.
    expect(parseFedConfig({ model: { discriminator: { type: 'resnet' } } }).model.discriminator.type).toBe('resnet');
  });

  it('refuses DP with a spectrally normalised discriminator, naming the option', () => {
    expect(problems({ ...DP_OK, model: { gan: 'wgan-gp', discriminator: { type: 'cnn', spectralNorm: true } } })).toEqual([
      'model.discriminator.spectralNorm: differential privacy cannot train a spectrally normalised discriminator: each tile would need its own W / σ(W) and σ(W) through its own copy of the weights, which the per-example gradients do not compute. Turn discriminator.spectralNorm off',
    ]);
    expect(parseFedConfig({ model: { discriminator: { spectralNorm: true } } }).model.discriminator.spectralNorm).toBe(true);
  });

  it('refuses DP with the quality probe (its figure is computed on tiles and sent without noise)', () => {
    const p = problems({ privacy: { dp: { enabled: true, noiseMultiplier: 1 } } });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^quality\.everyRounds: must be 0 with privacy\.dp: .*without noise/);
  });

  it('refuses secure aggregation with robust aggregators and a numeric update-norm bound', () => {
    const p = problems({ aggregator: { type: 'median' }, maxUpdateNorm: 10, privacy: { secureAggregation: { enabled: true } } });
    expect(p.some((m) => /^aggregator\.type: median cannot be used with privacy\.secureAggregation: the server sees only the sum/.test(m))).toBe(true);
    expect(p.some((m) => /^maxUpdateNorm: a per-update norm bound cannot be checked/.test(m))).toBe(true);
    expect(problems({ aggregator: { type: 'trimmed-mean' }, privacy: { secureAggregation: { enabled: true } } })[0]).toMatch(/^aggregator\.type: trimmed-mean cannot/);
    // DP and secure aggregation together, with FedAvg and no numeric bound: accepted.
    const c = parseFedConfig({ ...DP_OK, maxUpdateNorm: null, privacy: { ...DP_OK.privacy, secureAggregation: { enabled: true, threshold: 2 } } });
    expect(c.privacy.secureAggregation).toMatchObject({ enabled: true, threshold: 2 });
  });

  it("reaches the hospitals in the round config's dp (and survives the client's parsing)", () => {
    const on = roundConfig(parseFedConfig({ ...DP_OK, privacy: { dp: { enabled: true, targetEpsilon: 4, clipNorm: 0.7, delta: 1e-6 } } }), 1, 1);
    expect(on.dp).toEqual({ clipNorm: 0.7, targetEpsilon: 4, delta: 1e-6 });
    expect(roundConfigSchema.parse(on).dp).toEqual({ clipNorm: 0.7, targetEpsilon: 4, delta: 1e-6 });
    expect(roundConfig(parseFedConfig(DP_OK), 1, 1).dp).toEqual({ clipNorm: 1, noiseMultiplier: 1.1 });
    expect('dp' in roundConfig(parseFedConfig({}), 1, 1)).toBe(false);
  });
});
