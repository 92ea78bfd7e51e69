/**
 * Test helpers for the federation server: tiny hand-made weight sets, a server on 127.0.0.1:0 in a temp
 * STATE_DIR, Node clients (the shared client library over `ws`) and a raw WebSocket probe.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, type ClientOptions } from 'ws';
import { architectureFingerprint } from '../../shared/codec/fingerprint.ts';
import { parseFedConfig, type FedConfigInput } from '../../shared/config/fedConfig.ts';
import { FederationClient, type FederationClientOptions, type TrainFn } from '../../shared/protocol/federationClient.ts';
import { decodeFrame } from '../../shared/protocol/frames.ts';
import type { WeightSet } from '../../shared/weights.ts';
import { TokenStore, sha256Hex } from '../auth.ts';
import { memoryLogger } from '../log.ts';
import { startFederationServer, type FederationServerOptions, type RunningServer } from '../server.ts';

/** Layout of the tiny test model: a "generator" kernel and bias, and a "discriminator" batch-norm gamma. */
export const TINY_SPEC = [
  { name: 'g/dense/kernel', shape: [2, 3] },
  { name: 'g/dense/bias', shape: [3] },
  { name: 'd/bn1/gamma', shape: [2] },
];
export const TINY_FINGERPRINT = architectureFingerprint(TINY_SPEC, 'tiny-test');

/** A tiny weight set whose every value is `fill(tensorIndex, i)` (default: all equal to `v`). */
export function tinyWeights(v: number | ((t: number, i: number) => number) = 0): WeightSet {
  return {
    fingerprint: TINY_FINGERPRINT,
    tensors: TINY_SPEC.map((s, t) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = typeof v === 'number' ? v : v(t, i);
      return { name: s.name, shape: [...s.shape], data };
    }),
  };
}

export const HOSPITALS = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];
export const tokenOf = (hospital: string) => `token-of-${hospital}-0123456789`;
/** The operator token of every test server (OPERATOR_TOKEN): it reads the full /api/status. */
export const TEST_OPERATOR_TOKEN = 'operator-token-for-tests-0123456789';

export interface TestServer extends RunningServer {
  stateDir: string;
  logLines: string[];
  cleanup(): Promise<void>;
}

export async function startTestServer(
  fed: FedConfigInput = {},
  extra: Partial<FederationServerOptions> & { hospitals?: string[]; stateDir?: string } = {},
): Promise<TestServer> {
  const stateDir = extra.stateDir ?? mkdtempSync(join(tmpdir(), 'fedgan-test-'));
  const hospitals = extra.hospitals ?? HOSPITALS;
  const tokens = new TokenStore(hospitals.map((h) => ({ hospital: h, sha256: sha256Hex(tokenOf(h)) })));
  const log = memoryLogger();
  const server = await startFederationServer({
    // Hand-made weights move arbitrarily far from the tiny model: no model-derived norm bound unless the test sets one.
    fed: parseFedConfig({ roundDeadlineSeconds: 10, maxUpdateNorm: null, ...fed, model: { imageSize: 16, ...((fed.model as object) ?? {}) } }, 'test config'),
    tokens,
    stateDir,
    host: '127.0.0.1',
    port: 0,
    initialWeights: async () => tinyWeights(0),
    log,
    retryDelayMs: 20,
    staticDir: join(stateDir, 'no-dist'),
    operatorToken: TEST_OPERATOR_TOKEN,
    // No sample grids unless a test asks (the tiny hand-made weights are no GAN's).
    sampleGrids: { keep: 0, perClass: 2 },
    ...extra,
  });
  await server.ready;
  return Object.assign(server, {
    stateDir,
    logLines: log.lines,
    async cleanup() {
      await server.close();
      if (!extra.stateDir) rmSync(stateDir, { recursive: true, force: true });
    },
  });
}

export function nodeClient(server: { wsUrl: string }, hospital: string, train: TrainFn, opts: Partial<FederationClientOptions> = {}): FederationClient {
  return new FederationClient({
    url: server.wsUrl,
    token: tokenOf(hospital),
    clientId: `client-${hospital}`,
    train,
    createSocket: (url, protocols) => new WebSocket(url, protocols),
    reconnect: { initialMs: 20, maxMs: 200 },
    ...opts,
  });
}

/** A train function returning `tinyWeights(value)` with the given example count. */
export function constantTrainer(value: number | ((t: number, i: number) => number), examples: number, losses = { dLoss: 1, gLoss: 2 }): TrainFn {
  return async () => ({ weights: tinyWeights(value), examples, ...losses });
}

export interface RawMessage {
  text?: Record<string, unknown> & { type: string };
  binary?: { header: Record<string, unknown> & { type: string }; payload: Uint8Array };
}

/** A raw WebSocket probe that records every message and close. */
export class RawPeer {
  readonly ws: WebSocket;
  readonly messages: RawMessage[] = [];
  closed?: { code: number; reason: string };
  private waiters: (() => void)[] = [];
  readonly opened: Promise<void>;

  /** `opts`: e.g. `localAddress` (a 127.0.0.x source address), an `origin` header, or the subprotocols to offer. */
  constructor(url: string, opts: ClientOptions & { protocols?: string[] } = {}) {
    const { protocols = [], ...options } = opts;
    this.ws = new WebSocket(url, protocols, options);
    this.opened = new Promise((res, rej) => {
      this.ws.once('open', () => res());
      this.ws.once('error', rej);
    });
    this.ws.on('error', () => {});
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        const f = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        this.messages.push({ binary: { header: f.header, payload: f.payload.slice() } });
      } else this.messages.push({ text: JSON.parse(data.toString()) });
      this.notify();
    });
    this.ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
      this.notify();
    });
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(data: string | Uint8Array | Record<string, unknown>): void {
    if (typeof data === 'string' || data instanceof Uint8Array) this.ws.send(data);
    else this.ws.send(JSON.stringify(data));
  }

  async hello(hospital: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    await this.opened;
    this.send({ type: 'hello', protocols: [2], token: tokenOf(hospital), clientId: `raw-${hospital}`, ...extra });
    return (await this.waitText((m) => m.type === 'welcome')) as Record<string, unknown>;
  }

  /** Wait until a message (or close) matching `pred` arrives; returns it. */
  async waitFor<T>(pred: () => T | undefined, timeoutMs = 5000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = pred();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out; messages so far: ${JSON.stringify(this.messages.map((m) => m.text ?? m.binary?.header)).slice(0, 2000)}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, Math.max(1, end - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  waitText(pred: (m: Record<string, unknown> & { type: string }) => boolean, timeoutMs?: number, from = 0) {
    return this.waitFor(() => this.messages.slice(from).find((m) => m.text && pred(m.text))?.text, timeoutMs);
  }

  waitBinary(type: string, timeoutMs?: number, from = 0) {
    return this.waitFor(() => this.messages.slice(from).find((m) => m.binary?.header.type === type)?.binary, timeoutMs);
  }

  waitClose(timeoutMs?: number) {
    return this.waitFor(() => this.closed, timeoutMs);
  }

  close(): void {
    this.ws.terminate();
  }
}

/**
 * GET a JSON endpoint as the operator's monitoring would: with the test server's operator token, so
 * /api/status answers with the full view (hospital names). Tests of the public view fetch without it.
 */
export async function getJson(url: string): Promise<any> {
  const r = await fetch(url, { headers: { Authorization: `Bearer ${TEST_OPERATOR_TOKEN}` } });
  return r.json();
}

/** Parse Prometheus text into a map "name{labels}" → value. */
export async function getMetrics(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

export async function until(pred: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
