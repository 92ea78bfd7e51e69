/**
 * Screenshots of every state of the hospital web app for docs/web-app.md ("Walkthrough"). Run by hand, not
 * part of CI (it takes a few minutes on SwiftShader):
 *
 *   node --import tsx test/e2e/walkthrough.ts [output folder, default docs/img]
 *
 * Two hospitals (A, B) and a tiny 16 px model on the real server (server/main.ts), Debian's Chromium
 * (WebGPU on SwiftShader), synthetic tiles (harness.ts). Each picture is one part of the page (a card, or
 * the visible window), so the PNGs stay small. The files are named web-NN-<state>.png. axe-core runs on
 * the page at every picture; violations are listed at the end (the walkthrough does not stop for them).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { axeViolations, formatViolations } from './axe.ts';
import { ensureBuilt, fakeTile, launchChromium, ROOT, startServer, tilesZip, TINY_MODEL, type ServerProcess } from './harness.ts';

const OUT = process.argv[2] ?? join(ROOT, 'docs', 'img');
const HOSPITALS = [
  { hospital: 'hospital-a', token: 'token-a-0123456789abcdef' },
  { hospital: 'hospital-b', token: 'token-b-0123456789abcdef' },
];
const CLASSES = ['MSIH', 'nonMSIH'];
const VIEWPORT = { width: 1280, height: 860 };

const card = (page: Page, heading: string): Locator => page.locator(`section[aria-labelledby="${heading}"]`);

const a11y: string[] = [];

async function shot(target: Page | Locator, name: string): Promise<void> {
  const path = join(OUT, `web-${name}.png`);
  const page = 'goto' in target ? target : target.page();
  const violations = await axeViolations(page);
  if (violations.length) a11y.push(`${name}:\n${formatViolations(violations)}`);
  if ('goto' in target) await target.screenshot({ path });
  else {
    await target.scrollIntoViewIfNeeded();
    await target.screenshot({ path });
  }
  console.log(`walkthrough: ${path}`);
}

async function waitFor(page: Page, selector: string, pattern: RegExp, timeout = 120_000): Promise<string> {
  const end = Date.now() + timeout;
  let last = '';
  while (Date.now() < end) {
    last = ((await page.locator(selector).first().textContent().catch(() => '')) ?? '').trim();
    if (pattern.test(last)) return last;
    await page.waitForTimeout(200);
  }
  throw new Error(`${selector} did not match ${pattern} within ${timeout} ms; it reads: "${last}"`);
}

async function openApp(page: Page, url: string): Promise<void> {
  await page.goto(url);
  // Long: on SwiftShader a page that starts while another one compiles its GPU programs waits for them.
  await page.waitForSelector('body[data-ready=true]', { timeout: 300_000 });
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  ensureBuilt();
  let server: ServerProcess | undefined;
  let browser: Browser | undefined;
  try {
    server = await startServer({
      hospitals: HOSPITALS,
      // No reconnect grace: a hospital that drops out of a round makes that attempt fail at once (state 8).
      fed: { rounds: 2, minAvailable: 2, minFit: 2, minCompletion: 2, roundDeadlineSeconds: 300, localSteps: 24, model: TINY_MODEL, limits: { reconnectGraceSeconds: 0 } },
    });
    const url = `${server.url}/?qualityExtractors=all`;
    browser = await launchChromium();
    const newPage = async () => (await browser!.newContext({ viewport: VIEWPORT, acceptDownloads: true })).newPage();
    const a = await newPage();
    const b = await newPage();
    const other = await newPage();

    // 1. First open (all three pages open before anyone trains: see openApp).
    await openApp(a, url);
    await openApp(b, url);
    await openApp(other, url);
    await a.waitForFunction(() => !/contacting/.test(document.querySelector('#fed-summary')?.textContent ?? ''));
    await shot(a, '01-first-open');

    // 2. Tiles imported: a ZIP with a text file, an unknown class and one image filed under both classes.
    const zip = tilesZip(0, CLASSES, 12, {
      'notes.txt': new TextEncoder().encode('not a tile'),
      'Stroma/s1.png': fakeTile(0, 0, 99),
      'nonMSIH/copy-of-first.png': fakeTile(0, 0, 0),
    });
    await a.getByTestId('tile-input').setInputFiles({ name: 'hospital-a.zip', mimeType: 'application/zip', buffer: Buffer.from(zip) });
    await waitFor(a, '[data-testid=import-summary]', /tiles added/);
    await a.getByTestId('tile-conflict').waitFor();
    await shot(card(a, 'h-tiles'), '02-tiles-imported-conflict');

    // 3. The conflict settled, the tile list open and filtered to one class.
    await a.getByTestId('tile-conflict').getByTestId('resolve-MSIH').click();
    await waitFor(a, '[data-testid=tile-count-MSIH]', /^12$/);
    await a.locator('#tile-browser > summary').click();
    await a.getByTestId('tile-filter').selectOption('nonMSIH');
    await waitFor(a, '[data-testid=tile-range]', /^Tiles 1–12 of 12$/);
    await shot(card(a, 'h-tiles'), '03-tile-list');
    await a.locator('#tile-browser > summary').click();

    // 4. Joining: A waits for the second hospital; the speed check gives the expected training time.
    await a.getByTestId('access-token').fill(HOSPITALS[0].token);
    await a.getByTestId('join-federation').click();
    await waitFor(a, '#round-status', /^Waiting for hospitals to connect/, 60_000);
    await waitFor(a, '[data-testid=training-eta]', /^Expected training time on this computer: about/, 400_000);
    await a.evaluate(() => window.scrollTo(0, 0));
    await shot(a, '04-joined-waiting');

    // 5. Token in use: another computer tries A's token.
    await other.getByTestId('tile-input').setInputFiles({ name: 'o.zip', mimeType: 'application/zip', buffer: Buffer.from(tilesZip(2, CLASSES, 4)) });
    await waitFor(other, '[data-testid=import-summary]', /tiles added/);
    await other.getByTestId('access-token').fill(HOSPITALS[0].token);
    await other.getByTestId('join-federation').click();
    await waitFor(other, '#round-status', /in use on another computer/, 60_000);
    await other.evaluate(() => window.scrollTo(0, 0));
    await shot(other, '05-token-in-use');
    await other.context().close();

    // 6. Server unreachable: the server process is killed, then started again.
    await server.stop('SIGKILL');
    await waitFor(a, '#round-status', /cannot be reached/, 60_000);
    await a.evaluate(() => window.scrollTo(0, 0));
    await shot(a, '06-server-unreachable');
    await server.restart();
    await waitFor(a, '#round-status', /^Waiting for hospitals to connect/, 120_000);

    // 7. Training: hospital B joins; round 1 trains with the time left.
    await b.getByTestId('tile-input').setInputFiles({ name: 'hospital-b.zip', mimeType: 'application/zip', buffer: Buffer.from(tilesZip(1, CLASSES, 12)) });
    await waitFor(b, '[data-testid=import-summary]', /tiles added/);
    await b.getByTestId('access-token').fill(HOSPITALS[1].token);
    await b.getByTestId('join-federation').click();
    // Mid-round, once the round's own steps are timed: the status with its step and the time left.
    await b.waitForFunction(
      () => /^Training round 1 on this computer — step \d+/.test(document.querySelector('#round-status')?.textContent ?? '') && /left in this round/.test(document.querySelector('#eta')?.textContent ?? ''),
      null,
      { timeout: 300_000, polling: 100 },
    );
    await shot(card(b, 'h-training'), '07-training-eta');

    // 8. A round attempt that failed: B reloads in the middle of the round, so its work in that attempt is
    // lost and, without a reconnect grace, the attempt can no longer reach its minimum of 2 updates.
    await openApp(b, url);
    await waitFor(b, '#status-note', /was lost/, 180_000).catch(() => '');
    await waitFor(a, '#activity', /failed|ended/i, 120_000).catch(() => '');
    await shot(card(b, 'h-training'), '08-attempt-lost-reload');
    await shot(card(a, 'h-training'), '08b-attempt-failed-other-hospital');

    // 9. Finished, with the verdict on the images.
    for (const p of [a, b]) await waitFor(p, '#round-status', /^The federation is finished/, 600_000);
    await a.waitForFunction(() => document.querySelector('#samples-caption')?.textContent?.includes('after round 2'), null, { timeout: 120_000 });
    await shot(card(a, 'h-training'), '09-finished-verdict');

    // 10. Export: a large export in progress (time left, Cancel), cancelled; then a small one saved.
    const exportCard = card(a, 'h-export');
    for (const c of CLASSES) await a.getByTestId(`export-count-${c}`).fill('2000');
    await a.getByTestId('export-synthetic').click();
    await waitFor(a, '#export-progress .progress-text', /images\/s|left/, 120_000).catch(() => '');
    await shot(exportCard, '10-export-running');
    await a.getByTestId('export-cancel').click().catch(() => {});
    await waitFor(a, '[data-testid=export-msg]', /cancelled|Saved|failed/i, 120_000).catch(() => '');
    for (const c of CLASSES) await a.getByTestId(`export-count-${c}`).fill('8');
    const download = a.waitForEvent('download', { timeout: 180_000 });
    await a.getByTestId('export-synthetic').click();
    await download;
    await waitFor(a, '[data-testid=export-msg]', /^Saved /, 30_000);
    await shot(exportCard, '11-export-saved');

    // 11. Quality check on A's own tiles (the tiny test feature network: seconds, not minutes).
    await a.getByTestId('quality-extractor').selectOption('tiny');
    await a.getByTestId('quality-count').fill('8');
    await a.getByTestId('run-quality').click();
    await a.waitForSelector('[data-testid=quality-result] table', { timeout: 180_000 });
    await shot(card(a, 'h-quality'), '12-quality-check');

    // 12. Delete my data (B), after the browser's confirmation.
    b.once('dialog', (d) => void d.accept());
    await b.getByTestId('delete-data').click();
    await waitFor(b, '[data-testid=delete-msg]', /deleted/i, 60_000);
    await b.evaluate(() => window.scrollTo(0, 0));
    await shot(b, '13-deleted');
    // The delete card down to its message (the card itself is as tall as its row).
    const del = card(b, 'h-delete');
    await del.scrollIntoViewIfNeeded();
    const box = (await del.boundingBox())!;
    const msg = (await b.getByTestId('delete-msg').boundingBox())!;
    await b.screenshot({ path: join(OUT, 'web-13b-deleted-message.png'), clip: { x: box.x, y: box.y, width: box.width, height: msg.y + msg.height + 16 - box.y } });
  } finally {
    await browser?.close();
    await server?.cleanup();
    console.log(a11y.length ? `walkthrough: axe-core violations:\n${a11y.join('\n')}` : 'walkthrough: axe-core found no violation in any state pictured');
  }
}

await main();
