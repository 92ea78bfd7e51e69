import { describe, expect, it } from 'vitest';
import { parseFedConfig } from './fedConfig.ts';
import { parseGanConfig, RECIPE_DEFAULTS, withRecipeDefaults } from './ganConfig.ts';

describe('the recipe is the product default', () => {
  it('a federation config without model options trains with DiffAugment (color, translation, cutout) and a 0.999 generator EMA', () => {
    const m = parseFedConfig({}).model;
    expect(m.augment.policy).toEqual(['color', 'translation', 'cutout']);
    expect(m.ema).toEqual({ decay: 0.999 });
    expect(parseFedConfig({ model: { gan: 'wgan-gp' } }).model.augment.policy).toEqual(['color', 'translation', 'cutout']);
  });

  it("the discriminator trains without dropout (DiffAugment regularises it); its other fields keep their defaults, an explicit dropout wins", () => {
    const m = parseFedConfig({}).model;
    expect(m.discriminator.dropout).toBe(0);
    expect(m.discriminator.type).toBe('cnn');
    expect(m.discriminator.baseChannels).toBe(32);
    const swin = parseFedConfig({ model: { discriminator: { type: 'swin', patchSize: 4 } } }).model.discriminator;
    expect([swin.type, swin.patchSize, swin.dropout]).toEqual(['swin', 4, 0]);
    expect(parseFedConfig({ model: { discriminator: { dropout: 0.25 } } }).model.discriminator.dropout).toBe(0.25);
  });

  it('mode seeking is in the recipe at λ 0.3 (the 3,000-step runs at 0, 0.3 and 1: docs/recipe.md); a config sets another λ or turns it off', () => {
    expect(parseFedConfig({}).model.modeSeeking).toEqual({ lambda: 0.3 });
    expect(parseFedConfig({ model: { gan: 'wgan-gp' } }).model.modeSeeking).toEqual({ lambda: 0.3 });
    expect(parseFedConfig({ model: { modeSeeking: { lambda: 0.5 } } }).model.modeSeeking).toEqual({ lambda: 0.5 });
    expect(parseFedConfig({ model: { modeSeeking: null } }).model.modeSeeking).toBeNull();
    expect(parseGanConfig({}).modeSeeking).toBeNull(); // the GAN config's own default stays off
  });

  it('explicit values win: ema null and an empty policy turn the options off, another decay is kept', () => {
    const off = parseFedConfig({ model: { ema: null, augment: { policy: [] } } }).model;
    expect(off.ema).toBeNull();
    expect(off.augment.policy).toEqual([]);
    expect(parseFedConfig({ model: { ema: { decay: 0.99 } } }).model.ema).toEqual({ decay: 0.99 });
  });

  it('the GAN config itself stays plain (a config spells out what it trains), and bad input is left to the parser', () => {
    const plain = parseGanConfig({});
    expect(plain.ema).toBeNull();
    expect(plain.augment.policy).toEqual([]);
    expect(withRecipeDefaults(null)).toBeNull();
    expect(withRecipeDefaults({ gan: 'cgan' })).toEqual({ augment: { policy: ['color', 'translation', 'cutout'] }, ema: { decay: 0.999 }, modeSeeking: { lambda: 0.3 }, gan: 'cgan', discriminator: { dropout: 0 } });
    expect(withRecipeDefaults({ discriminator: 'cnn' })).toEqual({ augment: { policy: ['color', 'translation', 'cutout'] }, ema: { decay: 0.999 }, modeSeeking: { lambda: 0.3 }, discriminator: 'cnn' });
    expect(() => parseFedConfig({ model: { discriminator: 'cnn' } })).toThrow(/model\.discriminator/);
    expect(parseGanConfig({}).discriminator.dropout).toBe(0.25);
    // The defaults object is not shared with the configs made from it.
    const a = withRecipeDefaults({}) as { augment: { policy: string[] } };
    a.augment.policy.push('x');
    expect(RECIPE_DEFAULTS.augment.policy).toEqual(['color', 'translation', 'cutout']);
  });
});
