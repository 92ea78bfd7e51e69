/**
 * Screenshots of every state of the operator console for docs/console.md. Run by hand, not part of CI
 * (about two minutes on a 2-core machine):
 *
 *   node --import tsx test/e2e/consoleWalkthrough.ts [output folder, default docs/img]
 *
 * The real server (server/main.ts) with quality probes every round (the tiny feature network; they cannot be
 * combined with differential privacy, so the ε column is not pictured), three Node hospitals (./consoleSupport.ts) on synthetic tiles, and Debian's Chromium.
 * Pictures are named console-NN-<state>.png, each one part of the page (a card, a section or the window).
 * axe-core runs at every picture; violations are listed at the end (the walkthrough does not stop for them).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
// tfjs on the cpu backend with this project's kernels and gradients, as in the tests.
import '../setup/tfCpu.ts';
import { axeViolations, formatViolations } from './axe.ts';
import { OPERATOR_TOKEN, overview, startNodeHospital, syntheticTiles, until, waitForText, type NodeHospital } from './consoleSupport.ts';
import { ensureBuilt, launchChromium, ROOT, startServer, type ServerProcess } from './harness.ts';

const OUT = process.argv[2] ?? join(ROOT, 'docs', 'img');
const HOSPITALS = [
  { hospital: 'hospital-a', token: 'token-a-0123456789abcdef' },
  { hospital: 'hospital-b', token: 'token-b-0123456789abcdef' },
  { hospital: 'hospital-c', token: 'token-c-0123456789abcdef' },
];
const SIZE = 32;
const MODEL = { gan: 'acgan', imageSize: SIZE, latentDim: 16, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 }, batchSize: 4 };
const a11y: string[] = [];

async function shot(target: Page | Locator, name: string): Promise<void> {
  const path = join(OUT, `console-${name}.png`);
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

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  ensureBuilt();
  let server: ServerProcess | undefined;
  let browser: Browser | undefined;
  const hospitals: NodeHospital[] = [];
  try {
    server = await startServer({
      hospitals: HOSPITALS,
      fed: {
        rounds: 6,
        minAvailable: 2,
        minFit: 2,
        minCompletion: 2,
        roundDeadlineSeconds: 600,
        localSteps: 3,
        model: MODEL,
        quality: { everyRounds: 1, features: 'tiny', perClass: 4 },
        limits: { reconnectGraceSeconds: 0 },
      },
      env: { OPERATOR_TOKEN },
    });
    const srv = server;
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: srv.url });
    const page = await context.newPage();
    const tab = (name: string) => page.getByTestId(`tab-${name}`);

    // 1, 2. Sign-in, and a hospital's token refused.
    await page.goto(`${srv.url}/console`);
    await page.waitForSelector('body[data-ready=true]');
    await shot(page, '01-sign-in');
    await page.getByTestId('operator-token').fill(HOSPITALS[0].token);
    await page.getByTestId('sign-in').click();
    await waitForText(page, '#signin-msg', /hospital’s access token/);
    await shot(page.locator('#signin'), '02-hospital-token-refused');

    // Three hospitals train a few rounds; hospital C leaves during round 3 (a failure with its reason).
    for (const [i, h] of HOSPITALS.entries()) {
      hospitals.push(startNodeHospital({ wsUrl: srv.url.replace(/^http/, 'ws') + '/ws', name: h.hospital, token: h.token, tiles: syntheticTiles(8, SIZE, 5 + i), imageSize: SIZE, numClasses: 2, probe: true, log: (l) => console.log(l) }));
    }
    // Every hospital lets its updates through up to round 3's, which it holds: holding only once round 2
    // was seen to complete raced the hospitals' round-3 training (one Node thread trains all three), and a
    // hospital caught before its round-3 update left round 3 one update short for good.
    const [a, b, c] = hospitals;
    const heldAtRound3 = Promise.all(
      hospitals.map(async (h) => {
        h.hold();
        for (;;) {
          const r = await h.waitHeld();
          if (r >= 3) return;
          h.step();
          await until(`${h.name}: round ${r} accepted`, async () => h.accepted.includes(r), 300_000, 100);
        }
      }),
    );
    await page.goto(`${srv.url}/console#token=${OPERATOR_TOKEN}`);
    await page.waitForSelector('body[data-signed-in=true]');
    await heldAtRound3;
    c.stop();
    a.step();
    b.step();
    await until('round 3 complete', async () => (await overview(srv.url)).federation.round >= 3, 300_000, 500);
    for (const h of [a, b]) h.step();
    await until('round 4 complete', async () => (await overview(srv.url)).federation.round >= 4, 300_000, 500);
    await Promise.all([a.waitHeld(), b.waitHeld()]);
    await waitForText(page, '#fed-headline', /^Training round 5 of 6/);
    await page.waitForTimeout(1500);
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page.locator('#panel-overview'), '03-overview-training');

    // 4. The global model: the sample grids of each round.
    await tab('model').click();
    await until('grid of round 4', async () => (await page.locator('#latest-sample').getAttribute('data-round')) === '4', 60_000, 300);
    await page.waitForTimeout(500);
    await shot(page.locator('#panel-model'), '04-global-model');

    // 5, 6. Control: paused with a round in flight; a round setting refused next to its field.
    await tab('control').click();
    await page.getByTestId('pause').click();
    await waitForText(page, '#run-msg', /^Paused/);
    await page.getByTestId('set-localSteps').fill('0');
    await page.getByTestId('save-settings').click();
    await waitForText(page, '[data-testid=set-localSteps-error]', /\S/);
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page.locator('#panel-control'), '05-control-paused-setting-refused');

    // 7, 8. Hospitals: a join link shown once; the revoke confirmation.
    await tab('hospitals').click();
    await page.getByTestId('new-hospital').fill('st-marys-oncology');
    await page.getByTestId('add-hospital').click();
    await page.getByTestId('join-link-box').waitFor();
    await page.getByTestId('copy-link').click();
    await waitForText(page, '#copy-msg', /Copied/);
    await shot(page.locator('#panel-hospitals'), '06-hospital-added-join-link');
    await page.getByTestId('hide-link').click();
    await page.getByTestId('revoke-hospital-b').click();
    await page.getByTestId('confirm').waitFor();
    await shot(page, '07-revoke-confirmation');
    await page.keyboard.press('Escape');

    // 9. The audit log.
    await tab('audit').click();
    await until('audit rows', async () => (await page.locator('#audit-rows tr[data-type]').count()) > 5, 30_000, 300);
    await shot(page.locator('#panel-audit'), '08-audit-log');

    // 10. Resumed, then stopped.
    await tab('control').click();
    await page.getByTestId('resume').click();
    await waitForText(page, '#run-msg', /^Resumed/);
    for (const h of [a, b]) h.step();
    await until('round 5 complete', async () => (await overview(srv.url)).federation.round >= 5, 300_000, 500);
    await page.getByTestId('stop').click();
    await page.getByTestId('confirm-ok').click();
    await waitForText(page, '#run-msg', /^Stopped/);
    await tab('overview').click();
    await waitForText(page, '#fed-headline', /^Stopped by the operator/);
    await page.waitForTimeout(800);
    await shot(page, '09-stopped');
  } catch (e) {
    console.error(`server log (end):\n${server?.output().slice(-5000)}`);
    throw e;
  } finally {
    for (const h of hospitals) h.stop();
    await browser?.close();
    await server?.cleanup();
  }
  if (a11y.length) console.log(`\naxe-core violations:\n${a11y.join('\n')}`);
  else console.log('\naxe-core: no violation in any pictured state');
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
