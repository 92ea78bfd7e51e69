/**
 * The operator console end to end: the real federation server (server/main.ts) with an operator token,
 * Node hospitals (the shared client library and hospital round, ./consoleSupport.ts: much faster than
 * browser hospitals) as the federation's members, and Debian's Chromium driven by playwright-core as the
 * operator's browser. A tiny 16 px model and 2 local steps keep each round under a few seconds on 2 cores.
 * The tests run in order on one federation; each says what it needs and waits for it. axe-core (./axe.ts)
 * checks every state the page reaches; keyboard use is driven with key presses.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateTiles, loadCheckpoint } from '../../eval/checkpoint.ts';
import { checkA11y } from './axe.ts';
import { OPERATOR_TOKEN, overview, startNodeHospital, syntheticTiles, textOf, until, waitForText, type NodeHospital } from './consoleSupport.ts';
import { e2eSkipReason, ensureBuilt, launchChromium, startServer, TINY_MODEL, type ServerProcess } from './harness.ts';

const skip = e2eSkipReason();
if (skip) console.warn(`\n${'!'.repeat(100)}\n!! ${skip}\n${'!'.repeat(100)}\n`);

const HOSPITALS = [
  { hospital: 'h1', token: 'token-h1-0123456789abcdef' },
  { hospital: 'h2', token: 'token-h2-0123456789abcdef' },
];
const SIZE = TINY_MODEL.imageSize;

/** A checksum of the pixels of an <img> as the page shows it. */
async function imageChecksum(page: Page, selector: string): Promise<{ round: string; sum: number; width: number }> {
  await page.waitForFunction((sel) => {
    const img = document.querySelector<HTMLImageElement>(sel);
    return !!img && !img.hidden && img.complete && img.naturalWidth > 0;
  }, selector);
  return page.evaluate((sel) => {
    const img = document.querySelector<HTMLImageElement>(sel)!;
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const ctx = c.getContext('2d')!;
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let sum = 0;
    for (let i = 0; i < d.length; i++) sum = (Math.imul(sum, 31) + d[i]) >>> 0;
    return { round: img.dataset.round ?? '', sum, width: c.width };
  }, selector);
}

describe.skipIf(!!skip)('operator console in Chromium', () => {
  let server: ServerProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const hospitals = new Map<string, NodeHospital>();
  const work = mkdtempSync(join(tmpdir(), 'fedgan-console-e2e-'));
  const log: string[] = [];

  const startHospital = (name: string, token: string, seed: number): NodeHospital => {
    const h = startNodeHospital({ wsUrl: server.url.replace(/^http/, 'ws') + '/ws', name, token, tiles: syntheticTiles(6, SIZE, seed), imageSize: SIZE, numClasses: 2, log: (l) => log.push(l) });
    hospitals.set(name, h);
    return h;
  };
  const tab = (name: string) => page.getByTestId(`tab-${name}`);
  const releaseAll = () => {
    for (const h of hospitals.values()) h.release();
  };
  /** Let h1's and h2's held updates of the round in flight go; they hold their next ones again. */
  const stepFounders = () => {
    for (const name of ['h1', 'h2']) hospitals.get(name)!.step();
  };
  const fed = async () => (await overview(server.url)).federation;

  beforeAll(async () => {
    const build = ensureBuilt();
    if (build.built) console.log(`e2e: built dist/ in ${build.seconds.toFixed(1)} s`);
    server = await startServer({
      hospitals: HOSPITALS,
      // No reconnect grace: a revoked hospital's place in the round ends at once. No quality probes (fast
      // rounds; they cannot run with DP). Differential privacy on: the console shows each hospital's ε.
      fed: {
        rounds: 2,
        minAvailable: 2,
        minFit: 2,
        minCompletion: 2,
        roundDeadlineSeconds: 120,
        localSteps: 2,
        model: TINY_MODEL,
        quality: { everyRounds: 0 },
        privacy: { dp: { enabled: true, noiseMultiplier: 1.5, clipNorm: 1 } },
        limits: { reconnectGraceSeconds: 0 },
      },
      env: { OPERATOR_TOKEN },
    });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    page = await context.newPage();
  }, 180_000);

  // A failed test leaves no hospital held (the next tests need rounds to go on), and says what the server did.
  afterEach(async (ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    releaseAll();
    console.log(`server log (end):\n${server?.output().slice(-4000)}`);
    if (page) console.log(`page: ${page.url()}\n${(await page.locator('main').innerText().catch(() => '')).slice(0, 3000)}`);
  });

  afterAll(async () => {
    for (const h of hospitals.values()) h.stop();
    await browser?.close();
    if (log.length) console.log(`console e2e, hospital events:\n${log.join('\n')}`);
    await server?.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  it('refuses a missing or wrong operator token, and a hospital token, with a message that says which', async () => {
    await page.goto(`${server.url}/console`);
    await page.waitForSelector('body[data-ready=true]');
    await page.getByTestId('signin').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.locator('#console').isHidden()).toBe(true);
    // The sign-in field has the keyboard focus.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('operator-token');
    await checkA11y(page, 'sign-in');

    // Nothing typed: the page asks for the token without calling the server.
    await page.keyboard.press('Enter');
    expect(await textOf(page, '#signin-msg')).toBe('Enter the operator token.');

    await page.keyboard.type('not-the-operator-token-at-all');
    await page.keyboard.press('Enter');
    await waitForText(page, '#signin-msg', /^This operator token is not accepted\. Check that you copied all of it/);
    expect(await page.locator('#console').isHidden()).toBe(true);
    await checkA11y(page, 'sign-in refused');

    // A hospital's token, typed, then from a link: refused as a hospital token, and never left in the address bar.
    await page.getByTestId('operator-token').fill(HOSPITALS[0].token);
    await page.getByTestId('sign-in').click();
    await waitForText(page, '#signin-msg', /^This is a hospital’s access token: it opens the hospital app, not the operator console/);
    await page.goto('about:blank');
    await page.goto(`${server.url}/console#token=${HOSPITALS[1].token}`);
    await page.waitForSelector('body[data-ready=true]');
    await waitForText(page, '#signin-msg', /hospital’s access token/);
    expect(page.url()).not.toContain('token');
    expect(await page.locator('#console').isHidden()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.getItem('fedgan-console-token'))).toBeNull();
    // Three refusals from this address: the server's backoff (3 free tries) is not reached by the sign-in below.
  });

  it('signs in from a /console#token= link (then gone from the address bar) and shows the hospitals live', async () => {
    const [h1, h2] = HOSPITALS.map((x, i) => startHospital(x.hospital, x.token, 11 + i));
    h1.hold();
    h2.hold();
    // The console is open (signed out) in this tab: a link changes only the fragment, without a reload.
    expect(page.url()).toBe(`${server.url}/console`);
    await page.goto(`${server.url}/console#token=${OPERATOR_TOKEN}`);
    await page.waitForSelector('body[data-signed-in=true]');
    expect(page.url()).toBe(`${server.url}/console#overview`);
    expect(await page.evaluate(() => sessionStorage.getItem('fedgan-console-token'))).toBe(OPERATOR_TOKEN);
    await waitForText(page, '#live-badge', /^Live$/);
    // Round 1 in flight, both hospitals trained and holding their updates.
    await Promise.all([h1.waitHeld(), h2.waitHeld()]);
    await waitForText(page, '#fed-headline', /^Training round 1 of 2\.$/);
    for (const h of ['h1', 'h2']) {
      await waitForText(page, `[data-testid=online-${h}]`, /^Online$/);
      // What the hospital's software said of itself (test/e2e/consoleSupport.ts: a Node hospital's words).
      expect(await textOf(page, `[data-testid=engine-${h}]`)).toBe('Node hospital (command line)');
      expect(await textOf(page, `[data-testid=sampled-${h}]`)).toBe('Sampled');
    }
    await waitForText(page, '[data-testid=progress-h1]', /%/);
    expect(await textOf(page, '#kpi-round')).toBe('0 of 2');
    expect(await textOf(page, '#kpi-deadline')).toMatch(/\(1 min \d+ s left\)|\(\d+ s left\)|\(2 min left\)/);
    await checkA11y(page, 'overview, round 1 in flight');
  });

  it('pauses a running federation (the round in flight finishes, no new one starts) and resumes it, by keyboard', async () => {
    // Tabs by keyboard: from Overview, Right twice is Control.
    await tab('overview').focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    expect(await tab('control').getAttribute('aria-selected')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('tab-control');
    await page.locator('#panel-control').waitFor({ state: 'visible', timeout: 10_000 });
    await page.locator('#panel-overview').waitFor({ state: 'hidden', timeout: 10_000 });
    expect(page.url()).toMatch(/#control$/);

    await page.getByTestId('pause').focus();
    await page.keyboard.press('Enter');
    await waitForText(page, '#run-msg', /^Paused\./);
    await waitForText(page, '#control-state', /^Paused by the operator \(0 of 2 rounds complete\)\. The round in flight finishes; no new round starts until you resume\.$/);
    expect(await page.getByTestId('pause').isDisabled()).toBe(true);
    await checkA11y(page, 'control, paused with a round in flight');

    // The held updates go in: round 1 completes, and round 2 does not start while paused.
    hospitals.get('h1')!.release();
    hospitals.get('h2')!.release();
    await until('round 1 complete', async () => (await fed()).round === 1);
    await page.waitForTimeout(1500);
    const paused = await fed();
    expect(paused).toMatchObject({ round: 1, paused: true, attempt: null });
    expect(paused.phase).not.toBe('training');
    await waitForText(page, '#control-state', /^Paused by the operator \(1 of 2 rounds complete\)\. No new round starts until you resume\.$/);
    // Under DP each hospital's ε spent (from its update) is in the overview, in its own column.
    const eps = new Map((await overview(server.url)).hospitals.map((x) => [x.name, x.epsilon]));
    expect([...eps.values()].every((e) => typeof e === 'number' && e > 0)).toBe(true);
    expect(await page.locator('#hospital-rows').evaluate((b) => b.closest('table')!.classList.contains('no-eps'))).toBe(false);
    await waitForText(page, '[data-testid=epsilon-h1]', new RegExp(`^${eps.get('h1')!.toFixed(2).replace('.', '\\.')}$`));

    await page.getByTestId('resume').click();
    await waitForText(page, '#run-msg', /^Resumed\./);
    await until('round 2 complete', async () => (await fed()).round === 2, 60_000);
    await waitForText(page, '#control-state', /^Finished: all 2 rounds are complete\./);
    expect(await page.getByTestId('resume').isDisabled()).toBe(true);
  });

  it('extends the rounds of a finished federation; a number below the rounds done is refused next to the field', async () => {
    for (const h of hospitals.values()) h.hold();
    const input = page.getByTestId('total-rounds');
    await input.fill('1');
    await page.getByTestId('set-rounds').click();
    const refusal = await waitForText(page, '#total-rounds-error', /\S/);
    expect(refusal).toMatch(/2/);
    expect(await input.getAttribute('aria-invalid')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('total-rounds');
    expect((await fed()).totalRounds).toBe(2);
    await checkA11y(page, 'control, rounds refused');

    await input.fill('8');
    await input.press('Enter');
    await waitForText(page, '#rounds-msg', /^The federation now runs 8 rounds in total\.$/);
    expect(await page.locator('#total-rounds-error').textContent()).toBe('');
    await until('round 3 in flight', async () => (await fed()).phase === 'training');
    await waitForText(page, '#control-state', /^Training round 3 of 8\.$/);
  });

  it('sees the sample grid change after a round', async () => {
    await tab('model').click();
    await until('the round-2 grid in the page', async () => (await page.locator('#latest-sample').getAttribute('data-round')) === '2', 60_000);
    const before = await imageChecksum(page, '#latest-sample');
    expect(before.width).toBeGreaterThan(SIZE);
    expect(await textOf(page, '#latest-caption')).toBe('Latest: the global model after round 2.');
    expect(await page.locator('#latest-sample').getAttribute('alt')).toMatch(/^Tiles drawn by the global model after round 2: one row per class \(MSIH, nonMSIH\)$/);
    await checkA11y(page, 'the global model');
    // Round 3 completes; the page shows its grid without a reload, and it differs from round 2's.
    stepFounders();
    await until('the round-3 grid in the page', async () => (await page.locator('#latest-sample').getAttribute('data-round')) === '3', 60_000);
    const after = await imageChecksum(page, '#latest-sample');
    expect(after.width).toBe(before.width);
    expect(after.sum).not.toBe(before.sum);
    expect(await page.locator('#sample-history li').count()).toBeGreaterThanOrEqual(2);
    expect(await page.locator('#sample-history li[data-round="2"] img').count()).toBe(1);
  });

  it('downloads the checkpoint, which the loader of npm run evaluate accepts', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-checkpoint').click()]);
    const file = join(work, download.suggestedFilename());
    await download.saveAs(file);
    expect(download.suggestedFilename()).toMatch(/^round-\d{6}\.fgw$/);
    await waitForText(page, '#checkpoint-msg', /^Saved round-\d{6}\.fgw \(\d+\.\d\d MB\)/);
    const ckpt = loadCheckpoint(file);
    try {
      expect(ckpt.meta.round).toBeGreaterThanOrEqual(3);
      expect(ckpt.config.imageSize).toBe(SIZE);
      expect(ckpt.config.classes).toEqual(['MSIH', 'nonMSIH']);
      const tiles = await generateTiles(ckpt.gan, 2, { seed: 1 });
      expect(tiles.labels).toEqual([0, 0, 1, 1]);
      expect(tiles.pixels[0].length).toBe(SIZE * SIZE * 3);
    } finally {
      ckpt.gan.dispose();
    }
    expect(readFileSync(file).length).toBeGreaterThan(1000);
  });

  it('refuses a round setting that breaks the schema next to its field, and saves a valid one for the next round', async () => {
    await tab('control').click();
    const steps = page.getByTestId('set-localSteps');
    await steps.fill('0');
    await page.getByTestId('save-settings').click();
    const refusal = await waitForText(page, '[data-testid=set-localSteps-error]', /\S/);
    expect(refusal.toLowerCase()).toMatch(/at least 1|too small|>=\s*1/);
    expect(await steps.getAttribute('aria-invalid')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('set-localSteps');
    await checkA11y(page, 'control, a setting refused');
    await steps.fill('3');
    await page.getByTestId('save-settings').click();
    await waitForText(page, '#settings-msg', /^Saved\. The new settings apply from (round \d+|the next round)\.$/);
    const o = await (await fetch(`${server.url}/api/console/overview`, { headers: { Authorization: `Bearer ${OPERATOR_TOKEN}` } })).json();
    expect(o.settings.pending?.localSteps ?? o.settings.effective.localSteps).toBe(3);
  });

  it('adds a hospital: its join link is shown once with a copy button, and the hospital joins and completes a round', async () => {
    await tab('hospitals').click();
    await page.getByTestId('new-hospital').fill('St Mary');
    await page.getByTestId('add-hospital').click();
    await waitForText(page, '#new-hospital-error', /^Use only letters, digits, dots, dashes and underscores/);
    await page.getByTestId('new-hospital').fill('st-mary');
    await page.getByTestId('new-hospital').press('Enter');
    await page.getByTestId('join-link-box').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await textOf(page, '#join-link-box')).toContain('This link will not be shown again.');
    // The focus moves to the new link's heading, for keyboard and screen-reader users.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('join-link-title');
    const link = await page.getByTestId('join-link').inputValue();
    expect(link).toMatch(new RegExp(`^${server.url.replace(/[.]/g, '\\.')}/#token=[A-Za-z0-9_-]{16,}$`));
    await page.getByTestId('copy-link').click();
    await waitForText(page, '#copy-msg', /^Copied to the clipboard\.$/);
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(link);
    await checkA11y(page, 'hospitals, a join link shown');
    await page.getByTestId('hide-link').click();
    await page.getByTestId('join-link-box').waitFor({ state: 'hidden', timeout: 10_000 });
    expect(await page.getByTestId('join-link').inputValue()).toBe('');

    const token = new URL(link).hash.replace(/^#token=/, '');
    const h3 = startHospital('st-mary', token, 33);
    await until('st-mary online', async () => (await overview(server.url)).hospitals.find((x) => x.name === 'st-mary')?.online);
    await waitForText(page, '[data-testid=access-st-mary]', /^Active · online$/);
    // It joined during a round: that one completes without it, and the next samples it too.
    stepFounders();
    await until('st-mary to send an update', () => h3.accepted.length > 0, 60_000);
    const round = h3.accepted[0];
    // Its next update waits (for the revoke test); the round it took part in completes.
    h3.hold();
    stepFounders();
    await until(`round ${round} (with st-mary) complete`, async () => (await overview(server.url)).history.some((r) => r.round === round), 30_000);
    expect((await overview(server.url)).history.find((r) => r.round === round)?.hospitals).toEqual(['h1', 'h2', 'st-mary']);
    await tab('overview').click();
    await waitForText(page, '[data-testid=online-st-mary]', /^Online$/);
    expect(await page.locator('#hospital-rows tr[data-hospital="st-mary"] td[data-ago]').textContent()).not.toBe('never');
    await tab('hospitals').click();
  });

  it('revokes a hospital mid-round: asked first, its connection closes, and the round goes on with the others (minCompletion 2)', async () => {
    const h3 = hospitals.get('st-mary')!;
    const round = await h3.waitHeld();
    await until(`round ${round} in flight with st-mary sampled`, async () => {
      const o = await overview(server.url);
      return o.federation.phase === 'training' && o.federation.roundInFlight === round && o.hospitals.find((x) => x.name === 'st-mary')?.sampled;
    });
    // Escape cancels the confirmation.
    await page.getByTestId('revoke-st-mary').click();
    await page.getByTestId('confirm').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await textOf(page, '#confirm-title')).toBe('Revoke st-mary?');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('confirm-cancel');
    await checkA11y(page, 'hospitals, revoke confirmation');
    await page.keyboard.press('Escape');
    await page.getByTestId('confirm').waitFor({ state: 'hidden', timeout: 10_000 });
    await waitForText(page, '#manage-msg', /^st-mary was not revoked\.$/);
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('revoke-st-mary');
    expect((await overview(server.url)).hospitals.find((x) => x.name === 'st-mary')?.revoked).toBe(false);

    await page.getByTestId('revoke-st-mary').click();
    await page.getByTestId('confirm-ok').click();
    await waitForText(page, '#manage-msg', /^st-mary was revoked: its token no longer works\.$/);
    await waitForText(page, '[data-testid=access-st-mary]', /^Revoked/);
    // The round in flight completes without it, with the two others.
    stepFounders();
    await until(`round ${round} complete`, async () => (await overview(server.url)).history.some((r) => r.round === round), 60_000);
    const o = await overview(server.url);
    const entry = o.history.find((r) => r.round === round)!;
    expect(entry.participants).toBe(2);
    expect(entry.hospitals).toEqual(['h1', 'h2']);
    expect(o.hospitals.find((x) => x.name === 'st-mary')).toMatchObject({ revoked: true, online: false });
    // Its client was disconnected and its token is refused from now on.
    await until('st-mary disconnected', () => h3.events.some((e) => e.type === 'disconnected'));
    await expect(h3.done.then(() => 'stopped', (e: Error) => e.message)).resolves.toBeTruthy();
    await tab('overview').click();
    await waitForText(page, '[data-testid=online-st-mary]', /^Revoked$/);
    expect(await textOf(page, `[data-testid=failures-st-mary]`)).toMatch(new RegExp(`^Round ${round}: `));
  });

  it('rotates a hospital’s token after asking: a new join link is shown once, and the old token is refused', async () => {
    await tab('hospitals').click();
    await page.getByTestId('new-hospital').fill('north-clinic');
    await page.getByTestId('add-hospital').click();
    await page.getByTestId('join-link-box').waitFor({ state: 'visible', timeout: 10_000 });
    const first = await page.getByTestId('join-link').inputValue();
    await page.getByTestId('hide-link').click();
    await page.getByTestId('rotate-north-clinic').click();
    expect(await textOf(page, '#confirm-title')).toBe('Make a new token for north-clinic?');
    await page.getByTestId('confirm-ok').click();
    await waitForText(page, '#manage-msg', /^north-clinic has a new token: send it the new link\.$/);
    await page.getByTestId('join-link-box').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await textOf(page, '#join-link-title')).toBe('New join link for north-clinic');
    const second = await page.getByTestId('join-link').inputValue();
    expect(second).toMatch(/#token=[A-Za-z0-9_-]{16,}$/);
    expect(second).not.toBe(first);
    await page.getByTestId('hide-link').click();
    // A hospital that still has the first link is refused for good.
    const stale = startHospital('north-clinic-stale', new URL(first).hash.replace(/^#token=/, ''), 55);
    const refusedWith = await stale.done.then(
      () => 'stopped',
      (e: Error) => e.message,
    );
    expect(refusedWith).toMatch(/token|unauthori[sz]ed|refused/i);
    expect(stale.accepted).toEqual([]);
  });

  it('shows the audit log, filters it by event and hospital, and exports it as JSON lines', async () => {
    await tab('audit').click();
    await until('audit rows', async () => (await page.locator('#audit-rows tr[data-type]').count()) > 0);
    const types = await page.locator('#audit-rows tr[data-type]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-type')));
    for (const t of ['operator-pause', 'operator-resume', 'operator-rounds', 'operator-settings', 'hospital-added', 'hospital-revoked', 'hospital-rotated', 'round-aggregated']) expect(types, t).toContain(t);
    await checkA11y(page, 'audit log');

    await page.getByTestId('audit-type').selectOption('hospital-revoked');
    await page.getByTestId('audit-apply').click();
    await until('one revoked row', async () => {
      const t = await page.locator('#audit-rows tr[data-type]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-type')));
      return t.length === 1 && t[0] === 'hospital-revoked';
    });
    expect(await textOf(page, '#audit-rows tr[data-type]')).toContain('st-mary');
    await page.getByTestId('audit-type').selectOption('');
    await page.getByTestId('audit-hospital').selectOption('st-mary');
    await page.getByTestId('audit-apply').click();
    await until('only st-mary rows', async () => {
      const cells = await page.locator('#audit-rows tr[data-type] td:nth-child(4)').allTextContents();
      return cells.length >= 2 && cells.every((c) => c === 'st-mary');
    });

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('audit-export').click()]);
    const file = join(work, 'audit.jsonl');
    await download.saveAs(file);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; hash: string });
    expect(lines.length).toBeGreaterThanOrEqual(types.length);
    expect(lines.every((l) => typeof l.hash === 'string' && l.hash.length > 0)).toBe(true);
    expect(lines.map((l) => l.type)).toContain('hospital-revoked');
  });

  it('stops the federation only after confirmation', async () => {
    await tab('control').click();
    await page.getByTestId('stop').click();
    await page.getByTestId('confirm').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await textOf(page, '#confirm-title')).toBe('Stop the federation now?');
    await page.getByTestId('confirm-cancel').click();
    await waitForText(page, '#run-msg', /^Not stopped\.$/);
    expect((await fed()).stopped).toBe(false);
    await page.getByTestId('stop').click();
    await page.getByTestId('confirm-ok').click();
    await waitForText(page, '#run-msg', /^Stopped\. No round runs until you press Resume\.$/);
    await waitForText(page, '#control-state', /^Stopped by the operator/);
    expect((await fed()).stopped).toBe(true);
    await checkA11y(page, 'control, stopped');
  });
});
