import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FedConfig } from '../shared/config/fedConfig.ts';
import type { GanConfig } from '../shared/config/ganConfig.ts';
import { FRAME_PREFIX_BYTES, MAX_HEADER_BYTES } from '../shared/protocol/frames.ts';
import type { WeightSet } from '../shared/weights.ts';
import type { TokenStore } from './auth.ts';
import { DEFAULTS, PATHS } from './config.ts';
import { Federation } from './federation.ts';
import { createHttpHandler } from './http.ts';
import { consoleLogger, type Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { ReceiveBufferPool } from './receivePool.ts';
import { CheckpointStore } from './state.ts';
import { Transport } from './transport.ts';

/** Composes HTTP, WebSocket transport, round state machine, persistence and metrics on one port. */

export interface FederationServerOptions {
  fed: FedConfig;
  tokens: TokenStore;
  stateDir: string;
  /** The initial global weights when no checkpoint exists (and, always, the expected architecture). */
  initialWeights: (model: GanConfig) => Promise<WeightSet>;
  port?: number;
  /** Bind address; tests use 127.0.0.1. */
  host?: string;
  staticDir?: string;
  log?: Logger;
  /** Overrides `fed.retry.initialDelaySeconds`, in ms: the first delay before repeating a failed round attempt or checkpoint write (tests). */
  retryDelayMs?: number;
}

export interface RunningServer {
  readonly http: HttpServer;
  readonly port: number;
  /** http://host:port */
  readonly url: string;
  /** ws://host:port/ws */
  readonly wsUrl: string;
  readonly federation: Federation;
  readonly metrics: Metrics;
  readonly transport: Transport;
  /** Resolves once the state is loaded and WebSockets are accepted (rejects if loading fails). */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export async function startFederationServer(opts: FederationServerOptions): Promise<RunningServer> {
  const log = opts.log ?? consoleLogger;
  const fed = opts.fed;
  const metrics = new Metrics();
  const store = new CheckpointStore({
    stateDir: opts.stateDir,
    keep: fed.keepCheckpoints,
    model: fed.model,
    batchNorm: fed.batchNorm,
    onCorrupt: (c) => {
      metrics.checkpointsCorrupt.inc();
      log.error(`corrupt checkpoint ${c.file} skipped: ${c.reason}`);
    },
  });
  // One reused receive buffer for updates: the transport receives into it, the federation gives it back.
  const receivePool = new ReceiveBufferPool();
  const federation = new Federation({ fed, store, metrics, log, retryDelayMs: opts.retryDelayMs, receivePool, exampleCap: (h) => opts.tokens.maxExamples(h) });
  let isReady = false;
  const handler = createHttpHandler({
    isReady: () => isReady,
    metrics: () => metrics.render(),
    status: () => (isReady ? federation.status() : { phase: 'loading' }),
    staticDir: opts.staticDir ?? resolve(REPO_ROOT, DEFAULTS.staticDir),
  });
  const http = createServer(handler);
  http.keepAliveTimeout = 5000;
  const transport = new Transport(http, opts.tokens, fed.limits, federation, metrics, log, receivePool);

  await new Promise<void>((res, rej) => {
    http.once('error', rej);
    http.listen(opts.port ?? DEFAULTS.port, opts.host ?? DEFAULTS.host, () => {
      http.off('error', rej);
      res();
    });
  });
  const addr = http.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address;
  const url = `http://${host}:${addr.port}`;

  const ready = (async () => {
    const initial = await opts.initialWeights(fed.model);
    await federation.load(initial);
    // Largest legitimate frame: prefix + header + the encoded model; the margin covers header and codec meta.
    transport.setFrameLimit(FRAME_PREFIX_BYTES + MAX_HEADER_BYTES + federation.modelBytes + fed.limits.frameMarginBytes);
    transport.accepting = true;
    isReady = true;
    metrics.ready.set(1);
    log.info(`ready: model ${federation.fingerprint}, ${(federation.modelBytes / 1e6).toFixed(1)} MB encoded; ${fed.rounds} rounds, ${federation.state.round} completed`);
  })();
  ready.catch(() => {});

  let closing: Promise<void> | undefined;
  return {
    http,
    port: addr.port,
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}${PATHS.ws}`,
    federation,
    metrics,
    transport,
    ready,
    close() {
      closing ??= (async () => {
        federation.close();
        await transport.close();
        http.closeAllConnections?.();
        await new Promise<void>((r) => http.close(() => r()));
      })();
      return closing;
    },
  };
}
