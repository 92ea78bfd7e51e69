/**
 * Join links carry the token in the URL fragment (issue 15, finding 5), end to end in Chromium: the page
 * reads `#token=…` (and an old link's `?token=…`), removes it from the address bar, and no request the page
 * makes carries the token, in its URL or a Referer header. Every response says `Referrer-Policy: no-referrer`.
 */
import type { Browser, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eSkipReason, ensureBuilt, launchChromium, startServer, TINY_MODEL, type ServerProcess } from './harness.ts';

const skip = e2eSkipReason();
if (skip) console.warn(`\n${'!'.repeat(100)}\n!! ${skip}\n${'!'.repeat(100)}\n`);

const TOKEN = 'token-from-the-join-link-0123456789';

describe.skipIf(!!skip)('join links', () => {
  let server: ServerProcess;
  let browser: Browser;

  beforeAll(async () => {
    ensureBuilt();
    server = await startServer({ hospitals: [{ hospital: 'hospital-a', token: TOKEN }], fed: { rounds: 1, minAvailable: 1, minFit: 1, minCompletion: 1, model: TINY_MODEL } });
    browser = await launchChromium();
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.cleanup();
  });

  async function open(path: string): Promise<{ page: Page; requests: Request[]; referrerPolicies: (string | undefined)[] }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const requests: Request[] = [];
    const referrerPolicies: (string | undefined)[] = [];
    page.on('request', (r) => requests.push(r));
    page.on('response', (r) => void referrerPolicies.push(r.headers()['referrer-policy']));
    await page.goto(server.url + path);
    await page.waitForSelector('body[data-ready=true]', { timeout: 90_000 });
    return { page, requests, referrerPolicies };
  }

  for (const [name, path, left] of [
    ['#token= (what the server prints)', `/#token=${TOKEN}`, '/'],
    ['an old ?token= link', `/?token=${TOKEN}&backend=cpu`, '/?backend=cpu'],
  ] as const) {
    it(`${name}: fills the token, leaves it out of the address bar and of every request`, async () => {
      const { page, requests, referrerPolicies } = await open(path);
      expect(await page.locator('#token').inputValue()).toBe(TOKEN);
      const here = new URL(page.url());
      expect(here.pathname + here.search + here.hash).toBe(left);
      for (const r of requests) {
        // The navigation of the old link itself carried it in the query: that is why links moved to the fragment.
        if (r.isNavigationRequest() && path.startsWith('/?')) continue;
        expect(r.url()).not.toContain(TOKEN);
        expect((await r.allHeaders())['referer'] ?? '').not.toContain(TOKEN);
      }
      expect(requests.length).toBeGreaterThan(1);
      expect(referrerPolicies.length).toBeGreaterThan(1);
      for (const p of referrerPolicies) expect(p).toBe('no-referrer');
      await page.context().close();
    }, 120_000);
  }
});
