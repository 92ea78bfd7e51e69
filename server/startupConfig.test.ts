/**
 * Start-up checks of server/main.ts (issue 15 finding 5, issue 16 finding 9): a federation whose minimum
 * counts exceed its hospitals is refused with a clear error; the log says which config file was loaded
 * (or that the demo or the defaults run); the demo still starts; join links carry the token in the fragment.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../shared/config/configError.ts';
import { sha256Hex } from './auth.ts';
import { checkFederationFitsTokens, ENV } from './config.ts';
import { memoryLogger } from './log.ts';
import { main } from './main.ts';
import { tinyWeights } from './testing/federation.ts';

const dir = mkdtempSync(join(tmpdir(), 'fedgan-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOKENS = '- hospital: north\n  token: north-token-0123456789\n- hospital: south\n  token: south-token-0123456789\n';
const base = (name: string) => ({ HOST: '127.0.0.1', PORT: '0', STATE_DIR: join(dir, name) });

describe('server start-up', () => {
  it('refuses minAvailable (or minFit, minCompletion) above the hospitals in the tokens file, naming both numbers', async () => {
    const tokens = join(dir, 'tokens.yaml');
    writeFileSync(tokens, TOKENS);
    const fed = join(dir, 'three.yaml');
    writeFileSync(fed, 'minAvailable: 3\nminFit: 3\nminCompletion: 2\n');
    const log = memoryLogger();
    const run = main({ env: { ...base('three'), [ENV.TOKENS_FILE]: tokens, [ENV.FED_CONFIG]: fed }, log, initialWeights: async () => tinyWeights(0) });
    await expect(run).rejects.toThrow(ConfigError);
    await expect(run).rejects.toThrow(
      `invalid federation config: minAvailable: is 3 but TOKENS_FILE ${tokens} lists only 2 hospital(s), so no round could ever start: lower minAvailable or add hospitals; ` +
        `minFit: is 3 but TOKENS_FILE ${tokens} lists only 2 hospital(s)`,
    );
    expect(() => checkFederationFitsTokens({ minAvailable: 2, minFit: 2, minCompletion: 2 }, 2, 'x')).not.toThrow();
  });

  it('logs the config file it loaded, and starts', async () => {
    const tokens = join(dir, 'tokens2.yaml');
    writeFileSync(tokens, TOKENS);
    const fed = join(dir, 'fed.yaml');
    writeFileSync(fed, 'rounds: 3\nlocalSteps: 10\nmodel:\n  imageSize: 16\n');
    const log = memoryLogger();
    const s = await main({ env: { ...base('file'), [ENV.TOKENS_FILE]: tokens, [ENV.FED_CONFIG]: fed }, log, initialWeights: async () => tinyWeights(0) });
    await s.close();
    expect(log.lines).toContain(
      `INFO federation config loaded from FED_CONFIG ${fed}: 3 rounds × 10 local steps, acgan 16 px, aggregator fedavg, minAvailable 2, minFit 2, minCompletion 2`,
    );
    expect(log.lines.some((l) => l.startsWith('INFO no operator token in OPERATOR_TOKEN or TOKENS_FILE: the console\'s own operator token'))).toBe(true);
    // Created on this first start and shown once, with the console's link; only its SHA-256 is stored.
    const created = log.lines.filter((l) => l.includes('operator token created'));
    expect(created).toHaveLength(1);
    const token = /#token=([A-Za-z0-9_-]{32})$/.exec(created[0])?.[1];
    expect(token).toBeDefined();
    const stored = readFileSync(join(base('file')[ENV.STATE_DIR]!, 'console', 'console.json'), 'utf8');
    expect(stored).not.toContain(token);
    expect(stored).toContain(sha256Hex(token!));
  });

  it('the demo federation (no configuration) still starts, says it runs the demo, and prints join links with #token=', async () => {
    const log = memoryLogger();
    const s = await main({ env: { ...base('demo'), [ENV.PUBLIC_URL]: 'https://fed.example.org/' }, log, initialWeights: async () => tinyWeights(0) });
    await s.close();
    expect(log.lines.some((l) => l.startsWith('INFO federation config: the demo federation (server/config.ts DEMO_FED_CONFIG, no file loaded): 5 rounds × 50 local steps'))).toBe(true);
    const links = log.lines.filter((l) => l.includes('join link'));
    expect(links).toHaveLength(2);
    for (const l of links) expect(l).toMatch(/^INFO join link for hospital-[ab]: https:\/\/fed\.example\.org\/#token=[A-Za-z0-9_-]{32}$/);
  });
});
