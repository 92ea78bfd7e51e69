/**
 * What the operator console's end-to-end test and its screenshot walkthrough share: Node hospitals (the
 * shared client library and hospital round, as cli/remote.ts runs them, far faster than browser hospitals)
 * whose upload can be held, so that a round stays in flight while the operator acts; and page helpers.
 */
import WebSocket from 'ws';
import type { Page } from 'playwright-core';
import { datasetFromTiles, type Dataset, type Tile } from '../../shared/data/dataset.ts';
import { loadProbeExtractor } from '../../shared/fed/hospitalProbe.ts';
import { HospitalTraining } from '../../shared/fed/hospitalTraining.ts';
import { FederationClient, type ClientEvent, type WebSocketLike } from '../../shared/protocol/federationClient.ts';

export const OPERATOR_TOKEN = 'operator-token-for-the-console-e2e-0123';

/** Tiles of two classes at `size` px: class 0 dark with stripes, class 1 light; per-hospital noise. */
export function syntheticTiles(perClass: number, size: number, seed: number): Tile[] {
  let s = seed >>> 0 || 1;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const tiles: Tile[] = [];
  for (let label = 0; label < 2; label++) {
    for (let i = 0; i < perClass; i++) {
      const pixels = new Uint8Array(size * size * 3);
      for (let p = 0; p < size * size; p++) {
        const stripe = label === 0 && p % size < size / 2 ? 40 : 0;
        pixels[p * 3] = 120 + label * 80 + stripe + rand() * 30;
        pixels[p * 3 + 1] = 50 + label * 60 + rand() * 30;
        pixels[p * 3 + 2] = 150 + rand() * 40;
      }
      tiles.push({ pixels, label });
    }
  }
  return tiles;
}

export interface NodeHospital {
  name: string;
  events: ClientEvent[];
  /** Rounds whose update the server accepted. */
  accepted: number[];
  /** Hold the next updates (after training, before sending) until release(). */
  hold(): void;
  release(): void;
  /** Let the held update go (or, when none is held yet, the next one), and hold the one after again. */
  step(): void;
  /** Resolves when a round of this hospital is trained and waiting at the hold. */
  waitHeld(): Promise<number>;
  /** Stop the client (closes its connection) and free its model. */
  stop(): void;
  /** The client's run(): resolves when it stops, rejects when the server refuses it for good. */
  done: Promise<unknown>;
}

/** `probe`: answer the rounds' quality probes (on the network the round names, e.g. the tiny one). */
export function startNodeHospital(opts: { wsUrl: string; name: string; token: string; tiles: Tile[]; imageSize: number; numClasses: number; probe?: boolean; log?: (line: string) => void }): NodeHospital {
  const data: Dataset = datasetFromTiles(opts.tiles, opts.imageSize, opts.numClasses);
  const training = new HospitalTraining({ hospital: opts.name, data, ...(opts.probe ? { probeFeatures: loadProbeExtractor } : {}) });
  const events: ClientEvent[] = [];
  const accepted: number[] = [];
  let held = false;
  /** Updates to let through the hold without waiting (step() before the update reached it). */
  let passes = 0;
  let gate: { promise: Promise<void>; open: () => void } | null = null;
  let heldWaiters: ((round: number) => void)[] = [];
  /** The round whose update waits at the hold now, or null. */
  let heldRound: number | null = null;
  const newGate = () => {
    let open!: () => void;
    const promise = new Promise<void>((r) => (open = r));
    return { promise, open };
  };
  const client = new FederationClient({
    url: opts.wsUrl,
    token: opts.token,
    clientId: `e2e-${opts.name}`,
    // cli/remote.ts's agent: these hospitals run the shared round as a Node hospital does.
    agent: 'fedgan-simulate',
    stopWhenFinished: false,
    progressIntervalMs: 100,
    reconnect: { initialMs: 200, maxMs: 1000 },
    createSocket: (url, protocols) => new WebSocket(url, protocols) as unknown as WebSocketLike,
    train: async (global, cfg, progress, signal) => {
      const r = await training.train(global, cfg, { signal, onProgress: (p) => progress(Math.min(0.9, p.fraction)) });
      if (held && passes > 0) passes--;
      else if (held) {
        gate ??= newGate();
        heldRound = cfg.round;
        for (const w of heldWaiters) w(cfg.round);
        heldWaiters = [];
        const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        await Promise.race([gate.promise, aborted]);
        heldRound = null;
      }
      progress(1);
      // Under the federation's DP the update carries ε spent; with probes, the quality figure.
      return { weights: r.weights, examples: r.examples, dLoss: r.dLoss, gLoss: r.gLoss, ...(r.quality ? { quality: r.quality } : {}), ...(r.privacy ? { privacy: r.privacy } : {}) };
    },
    onEvent: (e) => {
      events.push(e);
      if (e.type === 'accepted') accepted.push(e.round);
      if (opts.log && (e.type === 'disconnected' || e.type === 'server-error' || e.type === 'round-declined' || e.type === 'train-error')) opts.log(`${opts.name}: ${JSON.stringify(e)}`);
    },
  });
  const done = client.run().finally(() => {
    training.dispose();
    data.dispose();
  });
  done.catch(() => {});
  return {
    name: opts.name,
    events,
    accepted,
    hold() {
      held = true;
    },
    release() {
      held = false;
      passes = 0;
      gate?.open();
      gate = null;
    },
    step() {
      if (gate) {
        gate.open();
        gate = null;
      } else passes++;
    },
    waitHeld() {
      if (heldRound !== null) return Promise.resolve(heldRound);
      return new Promise<number>((r) => heldWaiters.push(r));
    },
    stop() {
      held = false;
      gate?.open();
      client.stop();
    },
    done,
  };
}

/**
 * Poll `fn` until it returns a truthy value; throws with `what` and the last value (or error) after `timeout`
 * ms. A call that throws counts as not yet (e.g. a request on a keep-alive socket the server just closed).
 */
export async function until<T>(what: string, fn: () => T | Promise<T>, timeout = 60_000, every = 100): Promise<NonNullable<T>> {
  const end = Date.now() + timeout;
  let last: T | undefined;
  let error: unknown;
  while (Date.now() < end) {
    try {
      last = await fn();
      error = undefined;
    } catch (e) {
      error = e;
    }
    if (last) return last as NonNullable<T>;
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${error ? String(error) : JSON.stringify(last)})`);
}

/** The overview as the server sends it to the console (GET /api/console/overview with the operator token). */
export async function overview(baseUrl: string): Promise<{
  federation: { phase: string; paused: boolean; stopped: boolean; round: number; totalRounds: number; attempt: number | null; roundInFlight?: number | null };
  hospitals: { name: string; online: boolean; sampled: boolean; revoked: boolean; lastUpdateAt: string | null; epsilon: number | null; failures: { round: number; reason: string }[] }[];
  history: { round: number; participants: number; hospitals?: string[] }[];
  samples?: { round: number; url: string }[];
}> {
  const res = await fetch(`${baseUrl}/api/console/overview`, { headers: { Authorization: `Bearer ${OPERATOR_TOKEN}` } });
  if (!res.ok) throw new Error(`GET /api/console/overview answered ${res.status}: ${await res.text()}`);
  return res.json();
}

/** The trimmed text of an element. */
export const textOf = async (page: Page, selector: string): Promise<string> => ((await page.locator(selector).first().textContent()) ?? '').trim();

/** Poll an element's text until it matches. */
export async function waitForText(page: Page, selector: string, pattern: RegExp, timeout = 30_000): Promise<string> {
  return until(`${selector} to match ${pattern}`, async () => {
    const t = await textOf(page, selector).catch(() => '');
    return pattern.test(t) ? t : '';
  }, timeout, 100).catch(async (e: Error) => {
    throw new Error(`${e.message}; it reads: "${await textOf(page, selector).catch(() => '?')}"`);
  });
}
