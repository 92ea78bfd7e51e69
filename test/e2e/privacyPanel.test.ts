/**
 * The web app's privacy panel, end to end (issue 18.2): with the federation's DP on, staff see ε spent so far
 * and ε after the planned rounds in plain words, set their own stricter budget before joining, and a bad
 * entry is refused with its reason. The figures are the accountant's (checked here against
 * shared/privacy/accountant.ts for the same tiles and settings). Training with DP is test/e2e/privacy.test.ts.
 */
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { epsilonFor } from '../../shared/privacy/accountant.ts';
import { BUDGET_ORDERS, formatEpsilon } from '../../shared/privacy/budget.ts';
import { checkA11y } from './axe.ts';
import { e2eSkipReason, ensureBuilt, launchChromium, startServer, testIdText as text, tilesZip, TINY_MODEL, waitForTestIdText as waitForText, type ServerProcess } from './harness.ts';

const skip = e2eSkipReason();
const HOSPITAL = { hospital: 'hospital-p', token: 'token-p-0123456789abcdef' };
const CLASSES = ['MSIH', 'nonMSIH'];
const ROUNDS = 3;
const LOCAL_STEPS = 2;

describe.skipIf(!!skip)('the privacy panel of the web app', () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    ensureBuilt();
    server = await startServer({
      hospitals: [HOSPITAL],
      fed: { rounds: ROUNDS, minAvailable: 1, minFit: 1, minCompletion: 1, localSteps: LOCAL_STEPS, quality: { everyRounds: 0 }, privacy: { dp: { enabled: true, noiseMultiplier: 1.1, clipNorm: 1 } }, model: TINY_MODEL },
    });
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready=true]', { timeout: 90_000 });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.cleanup();
  });

  it("shows the federation's DP, then ε after the planned rounds once there are tiles", async () => {
    await waitForText(page, 'privacy-status', /^Differential privacy is on \(the federation asks for it\)/);
    expect(await text(page, 'privacy-epsilon-spent')).toBe('0.00');
    expect(await text(page, 'privacy-epsilon-planned')).toBe('– (import tiles first)');
    expect(await text(page, 'privacy-budget')).toBe('no ε limit: the noise is fixed, ε grows with every round');

    await page.getByTestId('tile-input').setInputFiles({ name: 'tiles.zip', mimeType: 'application/zip', buffer: Buffer.from(tilesZip(0, CLASSES, 12)) });
    await waitForText(page, 'import-summary', /^24 tiles added/, 60_000);
    // 24 tiles, batches of 8: q = 1/3, δ = 1/240, σ 1.1, 3 rounds × 2 steps.
    const planned = formatEpsilon(epsilonFor({ sampleRate: 8 / 24, noiseMultiplier: 1.1, steps: ROUNDS * LOCAL_STEPS, delta: 1 / 240, orders: BUDGET_ORDERS }));
    await waitForText(page, 'privacy-epsilon-planned', new RegExp(`^${planned.replace('.', '\\.')} \\(if this hospital trains all 3 remaining rounds\\)$`));
    expect(await text(page, 'privacy-noise')).toBe('1.10 × clip norm 1');
    await checkA11y(page, 'privacy panel with the federation’s DP');
  }, 180_000);

  it('takes a stricter budget of its own before joining, and refuses a bad one', async () => {
    await page.getByTestId('privacy-budget-epsilon').fill('abc');
    await page.getByTestId('privacy-save').click();
    await waitForText(page, 'privacy-msg', /^The ε limit must be a number above 0 \(or empty\)$/);

    await page.getByTestId('privacy-budget-epsilon').fill('0.5');
    await page.getByTestId('privacy-budget-clip').fill('0.5');
    await page.getByTestId('privacy-save').click();
    await waitForText(page, 'privacy-msg', /^Saved\. It applies from the next round this hospital trains\.$/);
    expect(await text(page, 'privacy-budget')).toBe('ε at most 0.50 (set here)');
    const planned = Number((await text(page, 'privacy-epsilon-planned')).split(' ')[0]);
    expect(planned).toBeLessThanOrEqual(0.5);
    expect(planned).toBeGreaterThan(0.45);
    // More noise than the federation's 1.1, to fit ε 0.5 over the 3 rounds.
    expect(Number((await text(page, 'privacy-noise')).split(' ')[0])).toBeGreaterThan(1.1);
    expect(await text(page, 'privacy-noise')).toMatch(/ × clip norm 0\.5$/);
    expect(await text(page, 'privacy-status')).toMatch(/^Differential privacy is on \(the federation asks for it and this hospital set its own budget\)/);
    // Kept across a reload (IndexedDB).
    await page.reload();
    await page.waitForSelector('body[data-ready=true]', { timeout: 90_000 });
    await waitForText(page, 'privacy-budget', /^ε at most 0\.50 \(set here\)$/);
    expect(await page.getByTestId('privacy-budget-epsilon').inputValue()).toBe('0.5');
    expect(await page.getByTestId('privacy-budget-clip').inputValue()).toBe('0.5');
    await checkA11y(page, 'privacy panel with a budget set here');
  }, 180_000);
});
