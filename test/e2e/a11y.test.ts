/**
 * Accessibility of the hospital web app, end to end (issue 16, finding 8): a hospital uses the app with
 * the keyboard only — import tiles through the file picker, join the federation, export images — while
 * every Tab stop is checked for a visible focus ring (≥ 3:1 against the background around it), and
 * axe-core (test/e2e/axe.ts) finds no violation in any state reached. It trains on the CPU backend
 * (harness.ts CPU_BACKEND).
 */
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkA11y } from './axe.ts';
import { CPU_BACKEND, e2eSkipReason, ensureBuilt, launchChromium, startServer, strToU8, tilesZip, TINY_MODEL, type ServerProcess } from './harness.ts';

const skip = e2eSkipReason();
const HOSPITAL = { hospital: 'hospital-k', token: 'token-k-0123456789abcdef' };
const CLASSES = ['MSIH', 'nonMSIH'];

interface FocusStop {
  /** id, data-testid or tag of the focused element. */
  name: string;
  /** Outline style, width (px) and contrast of its colour against the background around the element. */
  style: string;
  width: number;
  contrast: number;
}

/** Describe the focused element and measure its focus ring (in the page). */
function focusStop(page: Page): Promise<FocusStop | undefined> {
  return page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    if (!el || el === document.body) return undefined;
    // A file input is invisible inside its label (the visible button): the label shows the ring.
    const ringOn = el.matches('input[type=file]') ? (el.closest('label') ?? el) : el;
    const cs = getComputedStyle(ringOn);
    const rgba = (c: string): number[] => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return [0, 0, 0, 0];
      const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    const lum = ([r, g, b]: number[]) => {
      const f = (v: number) => {
        const s = v / 255;
        return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    // The ring is drawn outside the element (outline-offset): on the first ancestor's opaque background.
    let bg = [255, 255, 255, 1];
    for (let n = ringOn.parentElement; n; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) {
        bg = c;
        break;
      }
    }
    const ring = rgba(cs.outlineColor);
    const [l1, l2] = [lum(ring), lum(bg)].sort((a, b) => b - a);
    return {
      name: el.id ? `#${el.id}` : el.dataset.testid ? `[data-testid=${el.dataset.testid}]` : `${el.tagName.toLowerCase()}${el.getAttribute('aria-label') ? `[aria-label="${el.getAttribute('aria-label')}"]` : ''}`,
      style: cs.outlineStyle,
      width: parseFloat(cs.outlineWidth),
      contrast: (l1 + 0.05) / (l2 + 0.05),
    };
  });
}

describe.skipIf(!!skip)('the web app with the keyboard only', () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  /** Every element Tab or Shift+Tab reached, in order. */
  const stops: FocusStop[] = [];

  /** Press Tab (or Shift+Tab) until `selector` has the focus; every stop on the way is recorded. */
  async function tabTo(selector: string, opts: { back?: boolean; max?: number } = {}): Promise<FocusStop[]> {
    const passed: FocusStop[] = [];
    for (let i = 0; i < (opts.max ?? 80); i++) {
      await page.keyboard.press(opts.back ? 'Shift+Tab' : 'Tab');
      const stop = await focusStop(page);
      if (stop) {
        stops.push(stop);
        passed.push(stop);
      }
      if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return passed;
    }
    throw new Error(`${opts.back ? 'Shift+Tab' : 'Tab'} did not reach ${selector}; it passed ${passed.map((s) => s.name).join(', ')}`);
  }

  beforeAll(async () => {
    ensureBuilt();
    server = await startServer({ hospitals: [HOSPITAL], fed: { rounds: 1, minAvailable: 1, minFit: 1, minCompletion: 1, roundDeadlineSeconds: 300, localSteps: 2, model: TINY_MODEL } });
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true })).newPage();
    // The file picker is intercepted from the start, not only once the test waits for it.
    page.on('filechooser', () => {});
    await page.goto(`${server.url}/?${CPU_BACKEND}`);
    await page.waitForSelector('body[data-ready=true]', { timeout: 90_000 });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.cleanup();
  });

  it('imports tiles through the file picker with the keyboard; the drop zone is not a Tab stop', async () => {
    await checkA11y(page, 'first open');
    const passed = await tabTo('[data-testid=tile-input]');
    expect(passed.map((s) => s.name)).not.toContain('#dropzone');
    const chooser = page.waitForEvent('filechooser', { timeout: 30_000 });
    await page.keyboard.press('Space');
    const zip = tilesZip(0, CLASSES, 6, { 'MSIH/notes.txt': strToU8('not a tile') });
    const opened = await chooser.catch(async (e: Error) => {
      // Say where the keyboard was when Space did not open the file picker (CI once saw only the timeout).
      const where = await page.evaluate(() => ({ focused: document.activeElement?.id || document.activeElement?.tagName, pageHasFocus: document.hasFocus(), disabled: (document.activeElement as HTMLInputElement | null)?.disabled }));
      throw new Error(`${e.message}; after Space the focus was on ${JSON.stringify(where)}`);
    });
    await opened.setFiles({ name: 'tiles.zip', mimeType: 'application/zip', buffer: Buffer.from(zip) });
    await page.getByTestId('import-summary').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('import-summary').textContent()).toMatch(/^12 tiles added · 1 file not imported/);
    // The import's progress bar is a progressbar with its value (it reached 100 %).
    const track = page.locator('#import-progress .track');
    expect(await track.getAttribute('role')).toBe('progressbar');
    expect([await track.getAttribute('aria-valuemin'), await track.getAttribute('aria-valuemax'), await track.getAttribute('aria-valuenow')]).toEqual(['0', '100', '100']);
    await checkA11y(page, 'tiles imported, one file refused');
    // The list of refused files can be reached (and scrolled) with the keyboard.
    await tabTo('[data-testid=rejected-files]');
  }, 120_000);

  it('joins with the keyboard and follows the training; the activity log is reachable', async () => {
    await tabTo('#token', { back: true });
    await page.keyboard.type(HOSPITAL.token);
    await tabTo('#join');
    await page.keyboard.press('Enter');
    const status = page.getByTestId('round-status');
    await page.waitForFunction(() => /Waiting|Training|speed|finished/i.test(document.querySelector('#round-status')?.textContent ?? ''), null, { timeout: 60_000 });
    await checkA11y(page, 'joined');
    await tabTo('#activity');
    await page.waitForFunction(() => /^The federation is finished/.test(document.querySelector('#round-status')?.textContent ?? ''), null, { timeout: 300_000 });
    expect(await status.textContent()).toMatch(/^The federation is finished/);
    await checkA11y(page, 'federation finished');
  }, 360_000);

  it('exports images with the keyboard', async () => {
    await tabTo('[data-testid=export-count-MSIH]');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type('2');
    await tabTo('[data-testid=export-count-nonMSIH]');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type('1');
    await tabTo('#export');
    const download = page.waitForEvent('download', { timeout: 120_000 });
    await page.keyboard.press('Enter');
    expect((await download).suggestedFilename()).toMatch(/\.zip$/);
    await page.waitForFunction(() => /^Saved /.test(document.querySelector('#export-msg')?.textContent ?? ''), null, { timeout: 30_000 });
    await checkA11y(page, 'exported');
  }, 180_000);

  it('shows a focus ring of at least 3:1 at every Tab stop', () => {
    expect(stops.length).toBeGreaterThan(10);
    const bad = stops.filter((s) => s.style === 'none' || s.width < 2 || s.contrast < 3);
    expect(bad, `focus rings missing or under 3:1: ${bad.map((s) => `${s.name} (${s.style} ${s.width}px, ${s.contrast.toFixed(2)}:1)`).join('; ')}`).toEqual([]);
    // What was checked, for the record.
    console.log(`a11y: ${stops.length} Tab stops, lowest focus-ring contrast ${Math.min(...stops.map((s) => s.contrast)).toFixed(2)}:1`);
  });
});
