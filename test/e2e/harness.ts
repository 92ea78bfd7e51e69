/**
 * End-to-end harness: build the web app when needed, run the real federation server (server/main.ts) as
 * a process on a free port, drive Debian's Chromium with playwright-core, and make synthetic tiles.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strToU8, zipSync, type Zippable } from 'fflate';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { encodePngRgb } from '../../client/png.ts';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Skip (loudly) only on a developer machine without Chromium; in CI a missing browser fails. */
export function e2eSkipReason(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  if (process.env.CI) return undefined;
  return `${CHROMIUM} is missing: the end-to-end tests of the web app are SKIPPED. Install it with "apt-get install -y chromium" (CI installs it and runs them).`;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    if (name.name === 'node_modules' || name.name.startsWith('.')) continue;
    const p = join(dir, name.name);
    if (name.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (/\.(ts|js|html|css|json)$/.test(name.name) && !name.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Build dist/ with Vite when it is missing or older than the client and shared sources. */
export function ensureBuilt(): { built: boolean; seconds: number } {
  const index = join(ROOT, 'dist', 'index.html');
  const sources = Math.max(newestMtime(join(ROOT, 'client')), newestMtime(join(ROOT, 'shared')), statSync(join(ROOT, 'vite.config.ts')).mtimeMs);
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return { built: false, seconds: 0 };
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`vite build failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return { built: true, seconds: (Date.now() - t0) / 1000 };
}

export interface ServerProcess {
  url: string;
  port: number;
  dir: string;
  stateDir: string;
  output(): string;
  /** SIGKILL (server gone) or SIGTERM. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start again on the same port and state. */
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * The app's address queries that make it train on the processor (client/ui/query.ts): tfjs's plain
 * JavaScript backend, or WebAssembly. The files whose subject is not the training backend use them: the
 * app's states and keyboard use (CPU), the export and the privacy audit (WebAssembly), and one of the
 * privacy test's two hospitals (WebAssembly). On SwiftShader every page load that trains first compiles its
 * compute pipelines, about 30 s on a 2-core machine (pipelines are not kept across page loads), then a tiny
 * model's step takes ~1 s, against ~0.25 s on the CPU backend and ~0.07 s on WebAssembly. WebGPU training
 * end to end stays covered by hospitalApp.test.ts (two hospitals, a reload mid-round, export, quality check)
 * and the privacy test's other hospital; the kernels by test/webgpu.
 */
export const CPU_BACKEND = 'backend=cpu';
export const WASM_BACKEND = 'backend=wasm';

export const TINY_MODEL = { gan: 'acgan', imageSize: 16, latentDim: 8, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 }, batchSize: 8 } as const;

export interface ServerOptions {
  hospitals: { hospital: string; token: string }[];
  fed: Record<string, unknown>;
  port?: number;
  /** More environment for the server process (e.g. OPERATOR_TOKEN). */
  env?: Record<string, string>;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startServer(opts: ServerOptions): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'fedgan-e2e-'));
  const stateDir = join(dir, 'state');
  writeFileSync(join(dir, 'tokens.json'), JSON.stringify(opts.hospitals));
  writeFileSync(join(dir, 'fed.json'), JSON.stringify(opts.fed));
  const port = opts.port ?? (await freePort());
  let child: ChildProcess | undefined;
  let out = '';
  const launch = async () => {
    const c = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), STATE_DIR: stateDir, TOKENS_FILE: join(dir, 'tokens.json'), FED_CONFIG: join(dir, 'fed.json'), ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    const start = out.length;
    c.stdout!.on('data', (d) => (out += d));
    c.stderr!.on('data', (d) => (out += d));
    const end = Date.now() + 90_000;
    while (!/ready: model/.test(out.slice(start))) {
      if (c.exitCode !== null) throw new Error(`the server exited (${c.exitCode}):\n${out}`);
      if (Date.now() > end) throw new Error(`the server did not become ready:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await launch();
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((r) => {
      c.once('exit', () => r());
      c.kill(signal);
    });
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    stateDir,
    output: () => out,
    stop,
    restart: launch,
    async cleanup() {
      await stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Debian's Chromium, headless with WebGPU. E2E_HOLD_EVENTS_MS=<ms> holds back every page's worker events
 * (holdBackWorkerEvents) in every context: a check that no flow relies on events arriving before replies.
 */
export async function launchChromium(): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const ms = Number(process.env.E2E_HOLD_EVENTS_MS ?? 0);
  if (ms > 0) {
    const newContext = browser.newContext.bind(browser);
    browser.newContext = async (options) => {
      const context = await newContext(options);
      await holdBackWorkerEvents(context, ms);
      return context;
    };
  }
  return browser;
}

/**
 * Installed before any page script: records main-thread long tasks (> 50 ms) with their start time, and
 * long animation frames with the scripts that ran in them (which code a long task was spent in).
 */
export const LONG_TASK_PROBE = `
  window.__longTasks = [];
  window.__longFrames = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  } catch (e) { window.__longTaskError = String(e); }
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longFrames.push({
        start: e.startTime, duration: e.duration, blocking: e.blockingDuration,
        scripts: (e.scripts || []).map((s) => ({ invoker: s.invoker, source: (s.sourceURL || '').split('/').pop(), fn: s.sourceFunctionName, duration: Math.round(s.duration) })),
      });
    }).observe({ type: 'long-animation-frame', buffered: true });
  } catch (e) { window.__longFrameError = String(e); }
`;

/**
 * Hold back every MessagePort message of the page's documents by `ms` (an init script). The worker's events
 * (tile counts, log lines, status) reach the page on a Comlink proxy's MessagePort and its replies on the
 * Worker itself, and the two are not ordered: with the events late, any reliance on that order fails
 * every time instead of once in a while in CI.
 */
export async function holdBackWorkerEvents(target: Page | BrowserContext, ms: number): Promise<void> {
  await target.addInitScript((delay: number) => {
    const add = MessagePort.prototype.addEventListener;
    MessagePort.prototype.addEventListener = function (this: MessagePort, type: string, fn: EventListenerOrEventListenerObject, opts?: boolean | AddEventListenerOptions) {
      if (type !== 'message' || typeof fn !== 'function') return add.call(this, type, fn, opts);
      return add.call(this, type, (ev: Event) => void setTimeout(() => fn.call(this, ev), delay), opts);
    } as typeof MessagePort.prototype.addEventListener;
  }, ms);
}

/**
 * Chromium trace categories that record every task of a renderer's main thread (`RunTask`) with its wall
 * time (`dur`) and its thread time (`tdur`: the CPU time the thread itself ran), and `console.timeStamp`.
 */
export const TASK_TRACE_CATEGORIES = ['devtools.timeline', 'disabled-by-default-devtools.timeline'];

/** One task of a thread, from a Chromium trace: wall time, and the CPU time the thread ran in it. */
export interface ThreadTask {
  /** Trace clock, µs. */
  startUs: number;
  wallMs: number;
  cpuMs: number;
}

interface TraceEvent {
  name: string;
  ph: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  tdur?: number;
  args?: { data?: { message?: string } };
}

/**
 * The tasks of the thread that called `console.timeStamp(marker)` (a page's main thread), from a Chromium
 * trace recorded with TASK_TRACE_CATEGORIES. A task's CPU time is what the page did; its wall time also
 * counts the time other processes held the cores. Throws when the marker is not in the trace, or a task
 * has no thread time (such a trace cannot tell what the page did).
 */
export function threadTasks(traceJson: string, marker: string): ThreadTask[] {
  const parsed = JSON.parse(traceJson) as TraceEvent[] | { traceEvents: TraceEvent[] };
  const events = Array.isArray(parsed) ? parsed : parsed.traceEvents;
  const mark = events.find((e) => e.name === 'TimeStamp' && e.args?.data?.message === marker);
  if (!mark) throw new Error(`the trace has no console.timeStamp("${marker}"): it did not record the page's thread`);
  return events
    .filter((e) => e.pid === mark.pid && e.tid === mark.tid && e.name === 'RunTask' && e.ph === 'X')
    .map((e) => {
      if (typeof e.dur !== 'number' || typeof e.tdur !== 'number') throw new Error(`a RunTask at ${e.ts} µs has no ${typeof e.dur !== 'number' ? 'wall' : 'thread'} time in the trace`);
      return { startUs: e.ts, wallMs: e.dur / 1000, cpuMs: e.tdur / 1000 };
    })
    .sort((x, y) => x.startUs - y.startUs);
}

export interface LongTask {
  start: number;
  duration: number;
}
export interface LongFrame extends LongTask {
  blocking: number;
  scripts: { invoker: string; source: string; fn: string; duration: number }[];
}

// ---- synthetic tiles ------------------------------------------------------------------------------------

/** xorshift32, so every hospital's tiles are reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/**
 * A fake H&E-like tile: a pink/purple background with round "nuclei". `style` shifts the stain colours
 * (one per hospital), the class changes the nuclei's size and density.
 */
export function fakeTile(style: number, cls: number, index: number, size = 32): Uint8Array {
  const r = rng(1000 * style + 100 * cls + index + 1);
  const bg = style === 0 ? [236, 170, 200] : [200, 160, 220];
  const nuc = style === 0 ? [110, 50, 140] : [70, 40, 120];
  const rgb = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.max(0, Math.min(255, bg[c] + Math.round((r() - 0.5) * 30)));
  const n = cls === 0 ? 10 : 4;
  const rad = cls === 0 ? size / 12 : size / 6;
  for (let k = 0; k < n; k++) {
    const cx = r() * size;
    const cy = r() * size;
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        if ((x - cx) ** 2 + (y - cy) ** 2 <= rad * rad) for (let c = 0; c < 3; c++) rgb[(y * size + x) * 3 + c] = nuc[c];
      }
  }
  return encodePngRgb(rgb, size, size);
}

/** A ZIP of `<class>/tile_<i>.png` for the given classes, plus optional extra entries. */
export function tilesZip(style: number, classes: readonly string[], perClass: number, extra: Record<string, Uint8Array> = {}): Uint8Array {
  const files: Zippable = {};
  classes.forEach((c, ci) => {
    for (let i = 0; i < perClass; i++) files[`${c}/tile_${style}_${ci}_${i}.png`] = [fakeTile(style, ci, i), { level: 0 }];
  });
  for (const [k, v] of Object.entries(extra)) files[k] = v;
  return zipSync(files);
}

export { strToU8 };

/** The trimmed text of the first element with this `data-testid`. */
export const testIdText = async (page: Page, testid: string): Promise<string> => ((await page.getByTestId(testid).first().textContent()) ?? '').trim();

/** Poll the first element with this `data-testid` until its text matches; throws with the last text read. */
export async function waitForTestIdText(page: Page, testid: string, pattern: RegExp, timeout = 30_000): Promise<string> {
  const end = Date.now() + timeout;
  let last = '';
  while (Date.now() < end) {
    last = await testIdText(page, testid).catch(() => '');
    if (pattern.test(last)) return last;
    await page.waitForTimeout(150);
  }
  throw new Error(`${testid} did not match ${pattern} within ${timeout} ms; it reads: "${last}"`);
}
