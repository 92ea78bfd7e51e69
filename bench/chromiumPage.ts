import { existsSync } from 'node:fs';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * Headless Chromium with WebGPU (SwiftShader where there is no GPU) running one esbuild bundle, for the
 * GAN benchmark (bench/ganBrowser.ts) and the WebGPU tests (test/webgpu). The page is served from
 * http://localhost/ through request interception (a secure context, so navigator.gpu exists), with
 * no server and no network.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
/** Timestamp queries, unquantised (the benchmark's profile mode). */
export const TIMESTAMP_FLAGS = ['--enable-dawn-features=allow_unsafe_apis', '--enable-webgpu-developer-features'];

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH);
}

/** Bundle a browser entry (TypeScript, bare imports from node_modules) into one ES module. */
export async function bundleForBrowser(entry: string): Promise<string> {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  return out.outputFiles[0].text;
}

export interface WebGPUPage {
  browser: Browser;
  page: Page;
  close(): Promise<void>;
}

export async function openWebGPUPage(bundle: string, opts: { flags?: string[]; onConsole?: (line: string) => void } = {}): Promise<WebGPUPage> {
  if (!chromiumAvailable()) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: install it (apt-get update && apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_FLAGS, ...(opts.flags ?? [])] });
  try {
    const page = await browser.newPage();
    page.on('console', (m) => opts.onConsole?.(m.text()));
    page.on('pageerror', (e) => opts.onConsole?.(`page error: ${e.message}`));
    await page.route('http://localhost/**', (route) => {
      const url = new URL(route.request().url());
      if (url.pathname === '/bundle.js') return route.fulfill({ status: 200, contentType: 'text/javascript', body: bundle });
      if (url.pathname === '/' || url.pathname === '/index.html') {
        return route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><meta charset="utf-8"><script type="module" src="/bundle.js"></script>' });
      }
      return route.fulfill({ status: 404, body: 'not found' });
    });
    await page.goto('http://localhost/index.html');
    await page.waitForFunction(() => (globalThis as { __pageReady?: boolean }).__pageReady === true, undefined, { timeout: 60_000 });
    return { browser, page, close: () => browser.close() };
  } catch (e) {
    await browser.close();
    throw e;
  }
}
