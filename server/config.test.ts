import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_FED_CONFIG, demoFederationNotice, loadSettings } from './config.ts';

const dir = mkdtempSync(join(tmpdir(), 'fedgan-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the federation config the server runs', () => {
  it('with no configuration at all runs the demo federation, small on purpose, and says so', () => {
    const s = loadSettings({ STATE_DIR: dir });
    expect(DEMO_FED_CONFIG).toEqual({ rounds: 5, localSteps: 50 });
    expect(s.demoFederation).toBe(true);
    expect(s.fed).toMatchObject({ rounds: 5, localSteps: 50 });
    expect(s.fed.model.imageSize).toBe(64); // the default model
    expect(demoFederationNotice(s.fed)).toBe(
      'FED_CONFIG and TOKENS_FILE are not set: running the demo federation, 5 rounds × 50 local steps (250 generator steps a hospital: ' +
        'a try-out, far too few for useful tiles). Set FED_CONFIG for a real federation (an empty file gives the defaults: 100 rounds × 200 steps).',
    );
  });

  it('with a tokens file or a FED_CONFIG file (even an empty one) runs the defaults, sized in generator steps', () => {
    const tokens = loadSettings({ STATE_DIR: dir, TOKENS_FILE: join(dir, 'tokens.yaml') });
    expect(tokens.demoFederation).toBe(false);
    expect(tokens.fed).toMatchObject({ rounds: 100, localSteps: 200 });
    const empty = join(dir, 'fed.yaml');
    writeFileSync(empty, '');
    const file = loadSettings({ STATE_DIR: dir, FED_CONFIG: empty });
    expect(file.demoFederation).toBe(false);
    expect(file.fed).toMatchObject({ rounds: 100, localSteps: 200 });
    writeFileSync(empty, 'rounds: 3\nlocalSteps: 7\n');
    expect(loadSettings({ STATE_DIR: dir, FED_CONFIG: empty }).fed).toMatchObject({ rounds: 3, localSteps: 7 });
  });

  it('names the old localEpochs of a FED_CONFIG file', () => {
    const old = join(dir, 'old.yaml');
    writeFileSync(old, 'rounds: 20\nlocalEpochs: 1\n');
    expect(() => loadSettings({ STATE_DIR: dir, FED_CONFIG: old })).toThrow(
      `invalid FED_CONFIG ${old}: localEpochs: no longer a setting: a round is sized in generator steps; set localSteps instead (default 200)`,
    );
  });
});
