import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FedConfig } from '../shared/config/fedConfig.ts';
import type { GanConfig } from '../shared/config/ganConfig.ts';
import { FRAME_PREFIX_BYTES, MAX_HEADER_BYTES } from '../shared/protocol/frames.ts';
import type { WeightSet } from '../shared/weights.ts';
import type { TrustedProxies } from './admission.ts';
import type { TokenStore } from './auth.ts';
import { DEFAULTS, PATHS } from './config.ts';
import { Federation } from './federation.ts';
import { createHttpHandler, OperatorAuth } from './http.ts';
import { consoleLogger, type Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { ReceiveBufferPool } from './receivePool.ts';
import { CheckpointStore, prepareStateDir, type CheckpointWriter } from './state.ts';
import { Transport } from './transport.ts';
import { CONSOLE_PATHS, OperatorConsole } from './console/console.ts';
import { SampleGrids, type GridRenderer } from './console/samples.ts';
import { setupConsole } from './console/setup.ts';
import type { AuditLog } from './console/auditLog.ts';
import { rawHttpResponse } from './http.ts';

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
  /** Web origins allowed to open the WebSocket besides the server's own (ALLOWED_ORIGINS; server/admission.ts originAllowed). */
  allowedOrigins?: string[];
  /** PUBLIC_URL: its origin may open the WebSocket. */
  publicUrl?: string;
  /** Reverse proxies whose X-Forwarded-For names the client (TRUSTED_PROXIES). */
  trustedProxies?: TrustedProxies;
  /**
   * OPERATOR_TOKEN: `Authorization: Bearer <it>` opens the console and the full /api/status, as do the tokens of `operator`
   * entries of the tokens file; without either, the operator token created on the first start (server/console/setup.ts).
   */
  operatorToken?: string;
  /** Overrides `fed.retry.initialDelaySeconds`, in ms: the first delay before repeating a failed round attempt or checkpoint write (tests). */
  retryDelayMs?: number;
  /**
   * When checkpoint files exist but none is valid: start from the initial weights, moving them aside (START_FRESH=1).
   * Without it the server refuses to start (`ready` rejects with a StateDirError naming each file).
   */
  startFresh?: boolean;
  /** Writes checkpoint files (default: atomically, server/atomicFile.ts); tests inject a failing one (a full disk). */
  writeCheckpoint?: CheckpointWriter;
  /** Where the hospitals of `tokens` come from, as the console shows them (default: the tokens file). */
  tokensSource?: 'tokens-file' | 'demo';
  /** The console's sample grids: the last `keep` kept (0: none rendered), `perClass` tiles per class (default DEFAULTS.sampleGrids). */
  sampleGrids?: { keep: number; perClass: number };
  /** Renders a sample grid (default: tfjs in a worker thread, server/console/samples.ts workerRenderer); tests may inject one. */
  renderGrid?: GridRenderer;
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
  /** The operator console (server/console/): its API, live socket, sample grids and audit log. */
  readonly console: OperatorConsole;
  readonly samples: SampleGrids;
  readonly audit: AuditLog;
  /** Resolves once the state is loaded and WebSockets are accepted (rejects if loading fails: the server then closes itself). */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export async function startFederationServer(opts: FederationServerOptions): Promise<RunningServer> {
  const log = opts.log ?? consoleLogger;
  // Fails at once, with the system's reason, on a read-only or full STATE_DIR; removes orphaned temp files.
  const swept = await prepareStateDir(opts.stateDir);
  if (swept.files) {
    log.warn(`removed ${swept.files} orphaned temp file(s), ${formatBytes(swept.bytes)}, left in ${opts.stateDir} by writes a crash interrupted`);
  }
  for (const f of swept.failed) log.warn(`could not remove the orphaned temp file ${f.file}: ${f.reason}`);
  // The console's state and audit log (refuses to start on a tampered audit log), the operator token, the
  // hospitals as the console changed them, and FED_CONFIG with the operator's round settings.
  const tokensSource = opts.tokensSource ?? 'tokens-file';
  const setup = await setupConsole({ stateDir: opts.stateDir, fed: opts.fed, tokens: opts.tokens, tokensSource, operatorToken: opts.operatorToken, log });
  const fed = setup.fed;
  const metrics = new Metrics();
  const store = new CheckpointStore({
    stateDir: opts.stateDir,
    keep: fed.keepCheckpoints,
    model: fed.model,
    batchNorm: fed.batchNorm,
    startFresh: opts.startFresh,
    writeFile: opts.writeCheckpoint,
    onCorrupt: (c) => {
      metrics.checkpointsCorrupt.inc();
      log.error(`corrupt checkpoint ${c.file} skipped: ${c.reason}`);
    },
    warn: (m) => log.warn(m),
  });
  // One reused receive buffer for updates: the transport receives into it, the federation gives it back.
  const receivePool = new ReceiveBufferPool();
  const federation = new Federation({ fed, store, metrics, log, retryDelayMs: opts.retryDelayMs, receivePool, exampleCap: (h) => opts.tokens.maxExamples(h) });
  let isReady = false;
  const operator = new OperatorAuth({
    sha256: setup.operatorSha256,
    log,
    metrics,
    trustedProxies: opts.trustedProxies,
    hospitalOf: (t) => opts.tokens.authenticate(t),
    hospitalOfUpgradeKey: (k) => opts.tokens.hospitalOfUpgradeKey(k),
  });
  const grids = opts.sampleGrids ?? DEFAULTS.sampleGrids;
  const samples = new SampleGrids({ dir: setup.dir, keep: grids.keep, perClass: grids.perClass, model: fed.model, batchNorm: fed.batchNorm, log, render: opts.renderGrid });
  let operatorConsole: OperatorConsole | undefined;
  const handler = createHttpHandler({
    operator,
    console: (req, res, pathname) => {
      if (!isReady || !operatorConsole) {
        res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Retry-After': '2', 'Cache-Control': 'no-store' });
        return void res.end(JSON.stringify({ error: 'the server is loading its state: try again in a moment' }));
      }
      operatorConsole.handle(req, res, pathname);
    },
    // Ready once the state is loaded, and not while a completed round's checkpoint cannot be written.
    isReady: () => isReady && federation.storageOk(),
    notReadyReason: () => {
      if (!isReady) return 'loading state';
      const pending = federation.status().checkpoint.pending;
      return `cannot write the checkpoint of round ${pending?.round ?? '?'} to ${store.dir}: ${pending?.lastError ?? 'unknown error'}`;
    },
    metrics: () => metrics.render(),
    status: () => (isReady ? federation.status() : { phase: 'loading' }),
    staticDir: opts.staticDir ?? resolve(REPO_ROOT, DEFAULTS.staticDir),
  });
  const http = createServer(handler);
  http.keepAliveTimeout = 5000;
  const transport = new Transport(http, opts.tokens, fed.limits, federation, metrics, log, receivePool, {
    allowed: opts.allowedOrigins,
    publicUrl: opts.publicUrl,
    trustedProxies: opts.trustedProxies,
    upgrades: {
      [CONSOLE_PATHS.live]: (req, socket, head) => {
        if (!isReady || !operatorConsole) return void socket.end(rawHttpResponse('503 Service Unavailable', { 'Retry-After': '2' }));
        operatorConsole.upgrade(req, socket, head);
      },
    },
  });
  operatorConsole = new OperatorConsole({
    federation,
    tokens: opts.tokens,
    transport,
    operator,
    audit: setup.audit,
    state: setup.state,
    samples,
    log,
    tokensSource,
    publicUrl: opts.publicUrl,
    trustedProxies: opts.trustedProxies,
    metrics,
  });

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
  if (setup.createdOperatorToken) {
    const base = (opts.publicUrl ?? `http://localhost:${addr.port}`).replace(/\/+$/, '');
    // Shown once: only its SHA-256 is stored (STATE_DIR/console/console.json).
    log.warn(
      `operator token created (shown this once; only its SHA-256 is kept in ${setup.state.file}): ${setup.createdOperatorToken} ; ` +
        `open the operator console at ${base}${CONSOLE_PATHS.page}#token=${encodeURIComponent(setup.createdOperatorToken)}`,
    );
  }

  const ready = (async () => {
    const initial = await opts.initialWeights(fed.model);
    await federation.load(initial);
    // Largest legitimate frame: prefix + header + the encoded model; the margin covers header and codec meta.
    transport.setFrameLimit(FRAME_PREFIX_BYTES + MAX_HEADER_BYTES + federation.modelBytes + fed.limits.frameMarginBytes);
    transport.accepting = true;
    isReady = true;
    metrics.ready.set(1);
    setup.audit.append({ type: 'server-started', actor: 'server', details: { round: federation.state.round, rounds: fed.rounds, fingerprint: federation.fingerprint } });
    log.info(`ready: model ${federation.fingerprint}, ${(federation.modelBytes / 1e6).toFixed(1)} MB encoded; ${fed.rounds} rounds, ${federation.state.round} completed`);
  })();

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      federation.close();
      operator.close();
      operatorConsole?.close();
      await transport.close();
      await setup.audit.flush();
      http.closeAllConnections?.();
      await new Promise<void>((r) => http.close(() => r()));
    })();
    return closing;
  };
  // A server whose state cannot be loaded (e.g. only corrupt checkpoints) serves nothing: it closes itself.
  ready.catch(() => close().catch(() => {}));
  return {
    http,
    port: addr.port,
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}${PATHS.ws}`,
    federation,
    metrics,
    transport,
    console: operatorConsole,
    samples,
    audit: setup.audit,
    ready,
    close,
  };
}

function formatBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} bytes`;
}
