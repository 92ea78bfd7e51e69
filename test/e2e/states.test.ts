/**
 * Every state of the hospital web app has a way out and says what happened (issue 16, findings 3–6), end
 * to end: the real federation server, Debian's Chromium, three browser contexts (hospital A, hospital B,
 * and a second computer that uses A's token). They train on the CPU backend (harness.ts CPU_BACKEND: the
 * states do not depend on it); a fourth page opens on WebGPU (SwiftShader) to check how the app labels a
 * software renderer. Each state is checked with axe-core (test/e2e/axe.ts) when it is reached.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkA11y } from './axe.ts';
import { CPU_BACKEND, e2eSkipReason, ensureBuilt, holdBackWorkerEvents, launchChromium, startServer, tilesZip, TINY_MODEL, type ServerProcess } from './harness.ts';

const skip = e2eSkipReason();
if (skip) console.warn(`\n${'!'.repeat(100)}\n!! ${skip}\n${'!'.repeat(100)}\n`);

const HOSPITALS = [
  { hospital: 'hospital-a', token: 'token-a-0123456789abcdef' },
  { hospital: 'hospital-b', token: 'token-b-0123456789abcdef' },
];
const CLASSES = ['MSIH', 'nonMSIH'];
const SHOTS = process.env.E2E_SCREENSHOTS;
/** Steps a round: the reload below lands at step 3–6 of round 1 (as shown: hospital B's page shows it ≥ 1 s late), ≥ 30 steps (~6 s) before its end. */
const LOCAL_STEPS = 40;
/** How long hospital B's page holds back each message from its worker's event port (see beforeAll). */
const EVENT_DELAY_MS = 1000;

const text = async (page: Page, testid: string) => ((await page.getByTestId(testid).textContent()) ?? '').trim();
const sel = async (page: Page, selector: string) => ((await page.locator(selector).textContent()) ?? '').trim();

async function waitFor(page: Page, selector: string, pattern: RegExp, timeout = 60_000): Promise<string> {
  const end = Date.now() + timeout;
  let last = '';
  while (Date.now() < end) {
    last = await sel(page, selector);
    if (pattern.test(last)) return last;
    await page.waitForTimeout(200);
  }
  throw new Error(`${selector} did not match ${pattern} within ${timeout} ms; it reads: "${last}"`);
}
const status = (page: Page, pattern: RegExp, timeout?: number) => waitFor(page, '#round-status', pattern, timeout);

/** Open (or reload) the app. */
async function openApp(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForSelector('body[data-ready=true]', { timeout: 240_000 });
}

async function importTiles(page: Page, style: number): Promise<void> {
  await page.getByTestId('tile-input').setInputFiles({ name: `h${style}.zip`, mimeType: 'application/zip', buffer: Buffer.from(tilesZip(style, CLASSES, 10)) });
  await waitFor(page, '[data-testid=import-summary]', /tiles added/);
}

/** Each test sets up what it needs when an earlier one did not get there (so each fails on its own finding). */
async function ensureTiles(page: Page, style: number): Promise<void> {
  if ((await text(page, 'tile-count-MSIH')) === '0') await importTiles(page, style);
}
async function ensureJoined(page: Page, token: string, hospital: string): Promise<void> {
  if ((await sel(page, '#conn-badge')) === `Connected as ${hospital}`) return;
  if (await page.locator('#join').isVisible()) {
    await page.getByTestId('access-token').fill(token);
    await page.getByTestId('join-federation').click();
  }
  await waitFor(page, '#access-msg', new RegExp(`^Joined as ${hospital}\\.$`), 60_000);
}

async function state(page: Page, label: string): Promise<void> {
  if (SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `state-${label.replace(/\W+/g, '-')}.png`), fullPage: true });
  }
  await checkA11y(page, label);
}

describe.skipIf(!!skip)('hospital web app: every state says what happened and has a way out', () => {
  let server: ServerProcess;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  let a: Page;
  let b: Page;
  /** The second computer that tries A's token. */
  let other: Page;
  /** The app on the CPU backend. */
  let url = '';

  const newPage = async (): Promise<Page> => {
    const c = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    contexts.push(c);
    return c.newPage();
  };

  beforeAll(async () => {
    ensureBuilt();
    server = await startServer({
      hospitals: HOSPITALS,
      // Enough steps that a reload lands in the middle of a round (see LOCAL_STEPS; the page's
      // accessibility check runs in between).
      fed: { rounds: 2, minAvailable: 2, minFit: 2, minCompletion: 2, roundDeadlineSeconds: 300, localSteps: LOCAL_STEPS, model: TINY_MODEL },
    });
    url = `${server.url}/?${CPU_BACKEND}`;
    browser = await launchChromium();
    a = await newPage();
    b = await newPage();
    // The worker's events and its replies are not ordered (harness.ts holdBackWorkerEvents): in CI a log
    // line once overtook the reply to "delete" and outlived the page's reset, and the reply to an import
    // ("12 tiles added") once overtook the new tile counts, so that Join, pressed at once, said "import the
    // tiles first". Hospital B's events come EVENT_DELAY_MS late, longer than the test takes between two
    // actions, so that any reliance on that order fails here every time.
    await holdBackWorkerEvents(b, EVENT_DELAY_MS);
    other = await newPage();
    await openApp(a, url);
    await openApp(b, url);
    // Its reconnection backoff capped at 2 s (client/ui/query.ts): its six refusals of A's token take about
    // 7.5 s instead of 15.5 s, still time enough to check the "trying again" state in between.
    await openApp(other, `${url}?reconnectMaxMs=2000`);
  }, 400_000);

  afterAll(async () => {
    await browser?.close();
    await server?.cleanup();
  });

  it('labels WebGPU on SwiftShader as a software renderer, not as the fast graphics card', async () => {
    const gpu = await newPage();
    await openApp(gpu, `${server.url}/`);
    expect(await text(gpu, 'backend')).toBe('WebGPU');
    expect(await sel(gpu, '#backend-note')).toBe('WebGPU on a software renderer (SwiftShader): training will be slow');
    expect(await gpu.locator('#backend').getAttribute('class')).toBe('tone-warn');
    expect(await sel(gpu, '#adapter')).toMatch(/is a software renderer/);
    await state(gpu, 'software renderer');
    await gpu.context().close();
  }, 120_000);

  it('asks for the tiles first, then the token, and clears "import the tiles first" once they are imported', async () => {
    expect(await text(a, 'round-status')).toBe('Not taking part yet. First import this hospital’s tiles (step 3), then enter the access token and press “Join the federation”.');
    // Without tiles and without a token, the tiles are asked for first.
    await a.getByTestId('join-federation').click();
    expect(await sel(a, '#access-msg')).toBe('Import this hospital’s tiles first (step 3): training needs them.');
    await a.getByTestId('access-token').fill(HOSPITALS[0].token);
    await a.getByTestId('join-federation').click();
    expect(await sel(a, '#access-msg')).toBe('Import this hospital’s tiles first (step 3): training needs them.');
    await state(a, 'tiles needed first');
    await importTiles(a, 0);
    await waitFor(a, '#access-msg', /^$/, 10_000);
    expect(await text(a, 'round-status')).toBe('Not taking part yet. Enter the access token and press “Join the federation”.');
    await state(a, 'tiles imported');
  }, 120_000);

  it('clears an export error from before joining once the federation’s model arrives', async () => {
    await ensureTiles(a, 0);
    await a.getByTestId('access-token').fill(HOSPITALS[0].token);
    await a.getByTestId('export-synthetic').click();
    const error = await waitFor(a, '#export-msg', /no federated model on this computer yet/, 30_000);
    expect(await a.locator('#export-msg').getAttribute('class')).toContain('tone-error');
    expect(error).toMatch(/^The export failed/);
    await a.getByTestId('join-federation').click();
    await status(a, /^Waiting for hospitals to connect \(1 of the 2 needed\)/, 30_000);
    expect(await sel(a, '#access-msg')).toBe('Joined as hospital-a.');
    // The model arrives on joining (its samples are drawn, after the speed check): the error's cause is gone.
    await a.waitForSelector('[data-testid=samples-MSIH]', { timeout: 240_000 });
    await waitFor(a, '#export-msg', /^$/, 5_000);
    await state(a, 'joined, waiting for hospitals');
  }, 360_000);

  it('after Leave says so and offers Join, with no "Connecting…" left behind', async () => {
    await ensureJoined(a, HOSPITALS[0].token, 'hospital-a');
    await a.locator('#leave').click();
    await waitFor(a, '#access-msg', /^You left the federation\./, 10_000);
    expect(await text(a, 'round-status')).toBe('Not taking part yet. Enter the access token and press “Join the federation”.');
    expect(await sel(a, '#conn-badge')).toBe('Not connected');
    expect(await a.locator('#join').isVisible()).toBe(true);
    expect(await a.locator('#leave').isVisible()).toBe(false);
    await state(a, 'left');
    await a.getByTestId('join-federation').click();
    await waitFor(a, '#access-msg', /^Joined as hospital-a\.$/, 30_000);
  }, 60_000);

  it('a token in use on another computer is its own state, with its words and a button, and stops trying', async () => {
    await ensureJoined(a, HOSPITALS[0].token, 'hospital-a');
    await importTiles(other, 1);
    await other.getByTestId('access-token').fill(HOSPITALS[0].token);
    await other.getByTestId('join-federation').click();
    const line = await status(other, /in use on another computer/, 30_000);
    expect(line).toMatch(/^This hospital’s access token is in use on another computer or in another browser, and only one may take part with it at a time\. Trying again (in \d+ s|now), in case it has left; press “Stop trying” to give up here\.$/);
    expect(await sel(other, '#conn-badge')).toBe('Token in use elsewhere');
    expect(await other.locator('#leave').isVisible()).toBe(true);
    expect(await sel(other, '#leave')).toBe('Stop trying');
    await state(other, 'token in use, trying again');
    // It stops trying after a few refusals, and offers "Try again".
    await status(other, /This page stopped trying\./, 90_000);
    expect(await other.locator('#join').isVisible()).toBe(true);
    expect(await sel(other, '#join')).toBe('Try again');
    expect(await sel(other, '#conn-badge')).toBe('Token in use elsewhere');
    await state(other, 'token in use, stopped trying');
    await other.context().close();
    // Hospital A was never disturbed.
    expect(await sel(a, '#access-msg')).toBe('Joined as hospital-a.');
  }, 400_000);

  it('a reload mid-round keeps the loss chart and the activity, and says the work of that attempt was lost', async () => {
    await importTiles(b, 1);
    await b.getByTestId('access-token').fill(HOSPITALS[1].token);
    await b.getByTestId('join-federation').click();
    // A few steps into round 1 (their losses drawn), then a reload.
    await status(b, new RegExp(`^Training round 1 on this computer — step [3-6] of ${LOCAL_STEPS}`), 120_000);
    await state(b, 'training');
    const before = await b.locator('#activity li').allTextContents();
    expect(before.some((l) => /Round 1 started/.test(l))).toBe(true);
    const pointsBefore = Number((await b.locator('#loss-chart').getAttribute('data-local-points')) ?? 0);
    await openApp(b, url);
    // Right after the reload, before training again: the history and the loss lines are back.
    const after = await b.locator('#activity li').allTextContents();
    for (const l of before) expect(after).toContain(l);
    expect(pointsBefore).toBeGreaterThan(0);
    expect(Number(await b.locator('#loss-chart').getAttribute('data-local-points'))).toBeGreaterThanOrEqual(pointsBefore);
    const lost = await waitFor(b, '#status-note', /was lost/, 120_000);
    expect(lost).toMatch(/work in this attempt was lost by the reload; training again\.$|that work was lost, and that attempt ended without it\. The round is now at attempt \d+; training again\.$/);
    expect((await b.locator('#activity li').allTextContents()).some((l) => l.includes(lost))).toBe(true);
    await state(b, 'reloaded mid-round');
  }, 600_000);

  it('at the finish says whether the images are usable (never green from rounds alone); a reload shows it finished, not "Rejoining…"', async () => {
    for (const p of [a, b]) await status(p, /^The federation is finished: all 2 rounds are complete\./, 300_000);
    for (const p of [a, b]) {
      // 2 rounds × LOCAL_STEPS steps: barely trained, so not usable — in the page's warning colour, not green.
      expect(await text(p, 'round-status')).toMatch(/^The federation is finished: all 2 rounds are complete\. These images are not yet usable: /);
      expect(await p.locator('#round-status').getAttribute('class')).toBe('status tone-warn');
    }
    // The export error from before joining stayed cleared.
    expect(await sel(a, '#export-msg')).toBe('');
    await state(a, 'finished');
    await openApp(a, url);
    await waitFor(a, '#access-msg', /^The federation is finished; this hospital took part as hospital-a\./, 60_000);
    await status(a, /^The federation is finished: all 2 rounds are complete\./, 30_000);
    expect(await sel(a, '#conn-badge')).toBe('hospital-a · finished');
    expect(await a.locator('#export').isEnabled()).toBe(true);
    expect(await text(a, 'global-round')).toBe('2 / 2');
    await state(a, 'reloaded after the finish');
  }, 600_000);

  it('Delete my data resets the page to a new hospital: no name, no round, no loss lines, no history', async () => {
    const idBefore = await sel(b, '#footer');
    b.once('dialog', (d) => void d.accept());
    await b.getByTestId('delete-data').click();
    await waitFor(b, '[data-testid=delete-msg]', /^All local data was deleted\.$/, 60_000);
    // What the worker sent before "deleted" has arrived by now (each message held back EVENT_DELAY_MS):
    // the page stays reset.
    await b.waitForTimeout(EVENT_DELAY_MS + 700);
    expect(await sel(b, '#kpi-hospital')).toBe('–');
    expect(await sel(b, '#status-note')).toBe('');
    expect(await sel(b, '#conn-badge')).toBe('Not connected');
    expect(await text(b, 'round-status')).toBe('Not taking part yet. First import this hospital’s tiles (step 3), then enter the access token and press “Join the federation”.');
    expect(await b.locator('#loss-chart').getAttribute('data-local-points')).toBe('0');
    expect(await b.locator('#activity li').count()).toBe(0);
    expect(await b.locator('#samples *').count()).toBe(0);
    expect(await sel(b, '#footer')).not.toBe(idBefore);
    // The same page as a new hospital opening the app for the first time.
    const fresh = await newPage();
    await openApp(fresh, url);
    for (const s of ['#global-round', '#kpi-hospital', '#kpi-hospitals', '#round-status', '#conn-badge', '#history']) expect(await sel(b, s), s).toBe(await sel(fresh, s));
    await state(b, 'deleted');
    // And after a reload: nothing of the old hospital comes back from IndexedDB.
    await openApp(b, url);
    expect(Number((await b.locator('#loss-chart').getAttribute('data-local-points')) ?? 0)).toBe(0);
    expect(await b.locator('#activity li').count()).toBe(0);
    expect(await sel(b, '#kpi-hospital')).toBe('–');
  }, 600_000);

  it('once the page says it is ready it knows its stored tiles: Join, pressed at once after a reload, asks for the token', async () => {
    await ensureTiles(b, 2);
    await openApp(b, url);
    // The tile counts come as an event, the end of start-up as a reply (B's events are held back 1 s).
    await b.getByTestId('join-federation').click();
    expect(await sel(b, '#access-msg')).toBe('Enter the access token your federation coordinator gave you.');
    expect(await text(b, 'round-status')).toBe('Not taking part yet. Enter the access token and press “Join the federation”.');
    expect(await text(b, 'tile-count-MSIH')).toBe('10');
  }, 300_000);
});
