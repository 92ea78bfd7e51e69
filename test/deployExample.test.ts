import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV, loadSettings } from '../server/config.ts';

/** deploy/federation.yaml, the laptop demo of README and docs/configuration.md: valid, and small. */

const ROOT = new URL('..', import.meta.url).pathname;
const FILE = join(ROOT, 'deploy', 'federation.yaml');

describe('deploy/federation.yaml', () => {
  it('is a valid FED_CONFIG (every field known) that the server loads', () => {
    const s = loadSettings({ [ENV.FED_CONFIG]: FILE, [ENV.STATE_DIR]: join(ROOT, 'state-unused') });
    expect(s.fedConfigFile).toBe(FILE);
    expect(s.demoFederation).toBe(false);
    // Runs with the two demo hospitals the server generates without TOKENS_FILE.
    expect(s.fed.minAvailable).toBeLessThanOrEqual(2);
  });

  it('finishes in minutes on a laptop: a small step budget of a small model, no quality probe', () => {
    const { fed } = loadSettings({ [ENV.FED_CONFIG]: FILE, [ENV.STATE_DIR]: join(ROOT, 'state-unused') });
    // Generator steps along the federation: ≤ 200 (the demo of `npm start` is 250 steps of the 64 px model).
    expect(fed.rounds * fed.localSteps).toBeLessThanOrEqual(200);
    expect(fed.model.imageSize).toBeLessThanOrEqual(32);
    expect(fed.model.generator.baseChannels).toBeLessThanOrEqual(32);
    expect(fed.model.discriminator.baseChannels).toBeLessThanOrEqual(16);
    expect(fed.model.batchSize).toBeLessThanOrEqual(16);
    expect(fed.model.gan).not.toBe('wgan-gp'); // nCritic critic updates a step
    expect(fed.quality.everyRounds).toBe(0);
    // The deadline leaves the slowest laptop (CPU fallback, ~2 s a step at this size) room for a round.
    expect(fed.roundDeadlineSeconds).toBeGreaterThanOrEqual(fed.localSteps * 2);
  });

  it('is linked from the README and docs/configuration.md', () => {
    for (const doc of ['README.md', 'docs/configuration.md']) expect(readFileSync(join(ROOT, doc), 'utf8'), doc).toContain('deploy/federation.yaml');
  });
});
