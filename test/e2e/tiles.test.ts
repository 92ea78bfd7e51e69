/**
 * Tile management in the web app, end to end (issue 16, finding 7): an image found in two class folders
 * is set aside and settled by staff; the tile list pages through thumbnails, filters by class, moves one
 * tile to another class and removes one — with the federation server stopped (no network needed).
 */
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkA11y } from './axe.ts';
import { e2eSkipReason, ensureBuilt, fakeTile, holdBackWorkerEvents, launchChromium, startServer, testIdText as text, tilesZip, TINY_MODEL, waitForTestIdText as waitForText, type ServerProcess } from './harness.ts';

const skip = e2eSkipReason();
const HOSPITAL = { hospital: 'hospital-t', token: 'token-t-0123456789abcdef' };
const CLASSES = ['MSIH', 'nonMSIH'];


const counts = async (page: Page) => [await text(page, 'tile-count-MSIH'), await text(page, 'tile-count-nonMSIH')];

describe.skipIf(!!skip)('tile management in the web app (offline)', () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    ensureBuilt();
    server = await startServer({ hospitals: [HOSPITAL], fed: { rounds: 1, minAvailable: 1, minFit: 1, minCompletion: 1, localSteps: 2, model: TINY_MODEL } });
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
    // The worker's events (the new tile counts) come 1 s late: each message the page shows about an edit
    // must agree with the counts it shows at that moment, whatever the order the two channels deliver in.
    await holdBackWorkerEvents(page, 1000);
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready=true]', { timeout: 90_000 });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.cleanup();
  });

  it('sets aside an image found under two classes, and staff settle it with the server stopped', async () => {
    // 12 tiles per class; MSIH's first tile is also in nonMSIH/ (a mislabelled copy).
    const zip = tilesZip(0, CLASSES, 12, { 'nonMSIH/copy-of-msih-0.png': fakeTile(0, 0, 0) });
    await page.getByTestId('tile-input').setInputFiles({ name: 'site.zip', mimeType: 'application/zip', buffer: Buffer.from(zip) });
    expect(await waitForText(page, 'import-summary', /tiles? added/)).toMatch(/^23 tiles added · 1 file already in another class \(/);
    expect(await text(page, 'import-conflicts')).toBe('1 file is the same image as a tile of another class, so its class is not known: it is not used for training until you choose below.');
    // The image is in neither class until staff decide.
    await waitForText(page, 'tile-count-MSIH', /^11$/);
    expect(await counts(page)).toEqual(['11', '12']);
    const conflict = page.getByTestId('tile-conflict');
    await conflict.waitFor();
    expect(await conflict.count()).toBe(1);
    expect(await conflict.innerText()).toMatch(/site\/MSIH\/tile_0_0_0\.png — in MSIH\s+site\/nonMSIH\/copy-of-msih-0\.png — in nonMSIH/);
    expect(await conflict.locator('canvas[role=img]').count()).toBe(1);
    await checkA11y(page, 'tiles imported, one image in two classes');

    // From here on, no server: everything happens in this browser.
    await server.stop('SIGKILL');
    await conflict.getByTestId('resolve-MSIH').click();
    await waitForText(page, 'tile-list-msg', /^tile_0_0_0\.png is now a MSIH tile\.$/);
    expect(await counts(page)).toEqual(['12', '12']);
    await page.getByTestId('tile-conflicts').waitFor({ state: 'hidden' });
  }, 180_000);

  it('lists tiles a page at a time with thumbnails, filters by class, moves one tile and removes one, offline', async () => {
    await page.locator('#tile-browser > summary').click();
    await waitForText(page, 'tile-range', /^Tiles 1–20 of 24$/);
    const items = page.getByTestId('tile-item');
    expect(await items.count()).toBe(20);
    expect(await items.first().locator('canvas.thumb').count()).toBe(1);
    // The thumbnail shows the tile's pixels (not a blank canvas).
    const painted = await items.first().locator('canvas.thumb').evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let sum = 0;
      for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
      return sum / (d.length / 4) / 3;
    });
    expect(painted).toBeGreaterThan(40);
    expect(await text(page, 'tile-filter')).toContain('All classes (24)');
    await page.getByTestId('tile-next').click();
    await waitForText(page, 'tile-range', /^Tiles 21–24 of 24$/);
    expect(await items.count()).toBe(4);
    expect(await page.getByTestId('tile-next').isDisabled()).toBe(true);
    await checkA11y(page, 'tile list, second page');

    await page.getByTestId('tile-filter').selectOption('nonMSIH');
    await waitForText(page, 'tile-range', /^Tiles 1–12 of 12$/);
    expect(new Set(await items.evaluateAll((els) => els.map((e) => e.getAttribute('data-label'))))).toEqual(new Set(['nonMSIH']));
    await checkA11y(page, 'tile list filtered to nonMSIH');

    // Move one nonMSIH tile to MSIH.
    const first = items.first();
    const moved = await first.getAttribute('data-hash');
    // Two classes: one button says where the tile goes.
    expect(await first.getByTestId('tile-move-class').count()).toBe(0);
    expect(await first.getByTestId('tile-move').textContent()).toBe('Move to MSIH');
    await first.getByTestId('tile-move').click();
    await waitForText(page, 'tile-list-msg', /^tile_0_1_\d+\.png moved from nonMSIH to MSIH\.$/);
    expect(await counts(page)).toEqual(['13', '11']);
    await waitForText(page, 'tile-range', /^Tiles 1–11 of 11$/);
    expect(await page.locator(`[data-testid=tile-item][data-hash="${moved}"]`).count()).toBe(0);

    // Remove one nonMSIH tile, with the keyboard: the focus then moves to the tile now in its place.
    const gone = await items.first().getAttribute('data-hash');
    await items.first().getByTestId('tile-remove').focus();
    await page.keyboard.press('Enter');
    await waitForText(page, 'tile-list-msg', /was removed from this computer \(import the file again to bring it back\)\.$/);
    expect(await counts(page)).toEqual(['13', '10']);
    await waitForText(page, 'tile-range', /^Tiles 1–10 of 10$/);
    expect(await page.locator(`[data-testid=tile-item][data-hash="${gone}"]`).count()).toBe(0);
    await page.waitForFunction(() => document.activeElement?.closest('[data-testid=tile-item]') === document.querySelector('[data-testid=tile-item]'), null, { timeout: 10_000 });
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('tile-move');

    // The moved tile is listed under its new class.
    await page.getByTestId('tile-filter').selectOption('MSIH');
    await waitForText(page, 'tile-range', /^Tiles 1–13 of 13$/);
    expect(await page.locator(`[data-testid=tile-item][data-hash="${moved}"]`).getAttribute('data-label')).toBe('MSIH');
    expect(await text(page, 'tile-filter')).toMatch(/MSIH \(13\).*nonMSIH \(10\)/s);
  }, 180_000);

  it('keeps the edits when the page is opened again', async () => {
    await server.restart();
    await page.reload();
    await page.waitForSelector('body[data-ready=true]', { timeout: 90_000 });
    await waitForText(page, 'tile-count-MSIH', /^13$/);
    expect(await counts(page)).toEqual(['13', '10']);
    expect(await page.getByTestId('tile-conflicts').isHidden()).toBe(true);
    await checkA11y(page, 'reopened after editing tiles');
  }, 120_000);
});
