/**
 * The Quality panel's privacy audit end to end (issue 18.4): staff keep 1 tile in 10 out of training
 * before joining; the round trains on the others only (the server's history counts them); the quality
 * check then runs the membership-inference audit of the tiles trained on against the held-out ones and
 * says what it found in plain words. Tiny model, one hospital, one round of 2 steps, on WebAssembly
 * (harness.ts WASM_BACKEND).
 */
import { createHash } from 'node:crypto';
import { unzipSync } from 'fflate';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHeldOutForAudit } from '../../shared/privacy/auditHoldout.ts';
import { checkA11y } from './axe.ts';
import { e2eSkipReason, ensureBuilt, launchChromium, startServer, testIdText as text, tilesZip, TINY_MODEL, waitForTestIdText as waitForText, type ServerProcess, WASM_BACKEND } from './harness.ts';

const skip = e2eSkipReason();
const HOSPITAL = { hospital: 'hospital-p', token: 'token-p-0123456789abcdef' };
const CLASSES = ['MSIH', 'nonMSIH'];
const PER_CLASS = 40;

describe.skipIf(!!skip)('the privacy audit in the web app', () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  const zip = tilesZip(3, CLASSES, PER_CLASS);
  // Which tiles the app holds out: the rule is a function of each file's SHA-256 (the tile store's hash).
  const hashes = Object.values(unzipSync(zip)).map((b) => createHash('sha256').update(b).digest('hex'));
  const heldOut = hashes.filter((h) => isHeldOutForAudit(h)).length;

  beforeAll(async () => {
    ensureBuilt();
    server = await startServer({
      hospitals: [HOSPITAL],
      fed: { rounds: 1, minAvailable: 1, minFit: 1, minCompletion: 1, localSteps: 2, roundDeadlineSeconds: 300, model: TINY_MODEL, quality: { everyRounds: 0, perClass: 32, features: 'tiny', seed: 1, subsets: 20 } },
    });
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
    await page.goto(`${server.url}/?qualityExtractors=all&${WASM_BACKEND}`);
    await page.waitForSelector('body[data-ready=true]', { timeout: 90_000 });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.cleanup();
  });

  it('with the hold-out ticked before joining, the round trains on all tiles but the held-out ones', async () => {
    expect(heldOut).toBeGreaterThanOrEqual(5);
    expect(hashes.length - heldOut).toBeGreaterThanOrEqual(5);
    await page.getByTestId('tile-input').setInputFiles({ name: 'site.zip', mimeType: 'application/zip', buffer: Buffer.from(zip) });
    await waitForText(page, 'import-summary', new RegExp(`^${2 * PER_CLASS} tiles added`));
    expect(await text(page, 'audit-holdout-status')).toMatch(/^Off: all (80 of )?your tiles are used in training\.$/);
    await page.getByTestId('audit-holdout').check();
    expect(await waitForText(page, 'audit-holdout-status', /^On since/)).toMatch(
      new RegExp(`^On since .+: ${heldOut} of your tiles \\(1 in 10, chosen by each tile’s fingerprint, the same after every reload\\) are kept out of training; ${80 - heldOut} are trained on\\.$`),
    );
    await checkA11y(page, 'audit hold-out on');
    await page.getByTestId('access-token').fill(HOSPITAL.token);
    await page.getByTestId('join-federation').click();
    await waitForText(page, 'global-round', /^1 \/ 1$/, 300_000);
    // The server counted the tiles the hospital trained on: all but the held-out ones.
    const status = (await (await fetch(`${server.url}/api/status`)).json()) as { history: { round: number; examples: number }[] };
    expect(status.history.find((h) => h.round === 1)?.examples).toBe(80 - heldOut);
  }, 420_000);

  it('audits the tiles trained on against the held-out ones and says what it found in plain words', async () => {
    await page.getByTestId('quality-extractor').selectOption('tiny');
    await page.getByTestId('quality-count').fill('8');
    await page.getByTestId('run-quality').click();
    await page.waitForSelector('[data-testid=quality-result] table', { timeout: 120_000 });
    const result = await waitForText(page, 'membership-result', /leakage/, 30_000);
    expect(result).toMatch(new RegExp(`^(No detectable leakage: neither attack tells the ${80 - heldOut} tiles trained on from the ${heldOut} held out better than chance\\.|Weak leakage: |Clear leakage: )`));
    const panel = await page.getByTestId('quality-result').innerText();
    expect(panel).toMatch(/GAN-Leaks \(distance to the nearest generated tile\)\s+\d\.\d{3} \(95 %: \d\.\d{3}–\d\.\d{3}\)/);
    expect(panel).toMatch(/LOGAN \(discriminator score\)\s+\d\.\d{3} \(95 %: \d\.\d{3}–\d\.\d{3}\)/);
    await checkA11y(page, 'privacy audit result');
  }, 300_000);
});
