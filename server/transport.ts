import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { decodeFrame, decodeText, FrameError } from '../shared/protocol/frames.ts';
import {
  CLIENT_TEXT_TYPES,
  CLOSE,
  clientTextSchema,
  helloSchema,
  SUPPORTED_PROTOCOL_VERSIONS,
  updateHeaderSchema,
  type ClientTextMessage,
  type ErrorCode,
  type ServerTextMessage,
  type UpdateHeader,
} from '../shared/protocol/messages.ts';
import { AUTH_SUBPROTOCOL_PREFIX, upgradeCredential } from '../shared/protocol/upgradeAuth.ts';
import { describeIssues } from '../shared/protocol/validation.ts';
import {
  addressKey,
  AdmissionLog,
  admissionPhrases,
  AuthThrottle,
  clientAddress,
  CredentialedWaiting,
  originAllowed,
  PreAuthBudget,
  type AdmissionEvent,
  type OriginPolicy,
  type TrustedProxies,
} from './admission.ts';
import type { TokenStore } from './auth.ts';
import { PATHS } from './config.ts';
import { rawHttpResponse } from './http.ts';
import { clientText, type Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import { releaseLargeMessageGarbage, releaseReceiveGarbage } from './memory.ts';
import { receiveLargeFramesInPlace } from './receiveInPlace.ts';
import type { ReceiveBufferPool } from './receivePool.ts';

/**
 * The WebSocket transport: upgrade on PATHS.ws, hello (version negotiation + token), one live connection
 * per token, connection and frame-size limits, heartbeats, and parsing every frame into a typed message.
 * It knows nothing of rounds: it hands authenticated peers and well-formed messages to the handlers.
 *
 * Admission (the decisions are in admission.ts): the Origin allow-list at the upgrade; a socket whose
 * upgrade request carries a hospital's key (the `fedgan.auth.` subprotocol, shared/protocol/upgradeAuth.ts)
 * waits for its hello outside the budget below, one per hospital, and its hello must carry that
 * hospital's token; a wrong key is a failed sign-in. Without a key: an address in a sign-in backoff is
 * closed at once; sockets waiting for their hello have a budget of their own (in all and per address) and
 * the oldest are closed to make room, so they never take a hospital's place. Refusals are logged in summary.
 * The server selects (echoes) the first offered subprotocol that is not a `fedgan.auth.` entry.
 */

/** Before a valid hello, no message may exceed this (a hello is a few hundred bytes). */
const PRE_AUTH_MAX_PAYLOAD = 64 * 1024;

/**
 * Per-connection payload cap. ws only has a server-wide `maxPayload`; its receiver checks the length in
 * each frame header against `_maxPayload` before buffering, so lowering it per connection stops an
 * unauthenticated peer from making the server buffer large frames. (Pinned ws 8.x; if the internals ever
 * change this is a no-op and the server-wide cap still applies.)
 */
function setConnectionMaxPayload(ws: WebSocket, bytes: number): void {
  const r = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (r && typeof r._maxPayload === 'number') r._maxPayload = bytes;
}

/** Messages at least this large are followed by a garbage collection (see memory.ts). */
const LARGE_MESSAGE_BYTES = 1 << 20;

export interface Peer {
  readonly id: number;
  readonly hospital: string;
  readonly clientId: string;
  readonly protocol: number;
  readonly agent?: string;
  readonly connectedAt: number;
  send(msg: ServerTextMessage): void;
  /**
   * Send one binary message made of `parts` (e.g. a frame head and a shared weights payload) as fragments
   * of a single WebSocket message: nothing is copied, and one payload can go to many peers.
   */
  sendBinary(...parts: Uint8Array[]): void;
  /** Send an `error` message (counted in the metrics) and keep the connection. */
  error(code: ErrorCode, message: string, extra?: { round?: number; attempt?: number }): void;
  close(code: number, reason: string): void;
}

export interface TransportHandlers {
  /** The welcome data for a newly authenticated peer (protocol, hospital and clientId are filled in). */
  welcome(): { fingerprint: string; rounds: number; round: number; phase: import('../shared/protocol/messages.ts').Phase; limits: import('./roundMachine.ts').WelcomeRoundLimits };
  onJoin(peer: Peer): void;
  onLeave(peer: Peer, code: number, reason: string): void;
  onText(peer: Peer, msg: Exclude<ClientTextMessage, { type: 'hello' }>): void;
  onUpdate(peer: Peer, header: UpdateHeader, payload: Uint8Array, frameBytes: number): void;
}

export interface TransportLimits {
  maxConnections: number;
  maxUnauthenticated: number;
  maxUnauthenticatedPerAddress: number;
  heartbeatSeconds: number;
  helloTimeoutSeconds: number;
  authFailuresBeforeBackoff: number;
  authBackoffSeconds: number;
  authBackoffMaxSeconds: number;
}

/** Who may open the WebSocket (see originAllowed), and the clock of the admission decisions. */
export interface TransportAccess extends OriginPolicy {
  /** Milliseconds; default Date.now. Tests pass a fake one. */
  now?: () => number;
  /** The window of the refusal summaries in the log (default 10 s). */
  summaryWindowMs?: number;
  /** Reverse proxies whose X-Forwarded-For names the client (TRUSTED_PROXIES); without, the socket's peer is the client. */
  trustedProxies?: TrustedProxies;
  /** WebSocket upgrades on other paths, by path (the operator console's live socket, server/console/console.ts). */
  upgrades?: Record<string, (req: IncomingMessage, socket: Duplex, head: Buffer) => void>;
}

interface Conn {
  ws: WebSocket;
  alive: boolean;
  peer?: PeerImpl;
  helloTimer?: NodeJS.Timeout;
  remote: string;
  /** The source address its budget and sign-in failures count under (addressKey). */
  address: string;
  /** The hospital whose upgrade key it presented (it waits outside the unauthenticated budget; its hello must be that hospital's). */
  claim?: string;
  /** Set once we started closing it: later messages are ignored. */
  closing?: boolean;
}

class PeerImpl implements Peer {
  constructor(
    readonly id: number,
    readonly hospital: string,
    readonly clientId: string,
    readonly protocol: number,
    readonly agent: string | undefined,
    readonly connectedAt: number,
    private readonly t: Transport,
    readonly conn: Conn,
  ) {}
  send(msg: ServerTextMessage): void {
    this.t.sendText(this.conn, msg);
  }
  sendBinary(...parts: Uint8Array[]): void {
    this.t.sendBinary(this.conn, parts);
  }
  error(code: ErrorCode, message: string, extra: { round?: number; attempt?: number } = {}): void {
    this.t.sendError(this.conn, code, message, extra);
  }
  close(code: number, reason: string): void {
    this.t.closeConn(this.conn, code, reason);
  }
}

export class Transport {
  readonly wss: WebSocketServer;
  private readonly conns = new Set<Conn>();
  /** hospital → its live peer. */
  private readonly byHospital = new Map<string, PeerImpl>();
  private heartbeat?: NodeJS.Timeout;
  private nextId = 1;
  /** Frames above this get a `frame-too-large` error. Set once the model size is known. */
  maxFrameBytes = 0;
  accepting = false;
  private warnedNoInPlace = false;
  /** Sockets waiting for their hello. */
  private readonly preAuth: PreAuthBudget<Conn>;
  /** Sockets that presented a hospital's upgrade key, waiting for their hello (one per hospital). */
  private readonly credentialed = new CredentialedWaiting<Conn>();
  private readonly throttle: AuthThrottle;
  private readonly admissionLog: AdmissionLog;
  private readonly summaryTimer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(
    private readonly http: HttpServer,
    private readonly tokens: TokenStore,
    private readonly limits: TransportLimits,
    private readonly handlers: TransportHandlers,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** Where large frames are received (reused between updates); default: a fresh buffer each. */
    readonly receivePool?: ReceiveBufferPool,
    private readonly access: TransportAccess = {},
  ) {
    this.now = access.now ?? Date.now;
    this.preAuth = new PreAuthBudget<Conn>(limits);
    this.throttle = new AuthThrottle(limits);
    this.admissionLog = new AdmissionLog(admissionPhrases(limits), access.summaryWindowMs);
    this.summaryTimer = setInterval(() => this.flushAdmissionLog(), 1000);
    this.summaryTimer.unref();
    const hospitals = tokens.hospitals.length;
    if (limits.maxConnections < hospitals) {
      log.warn(`limits.maxConnections (${limits.maxConnections}) is below the number of hospitals (${hospitals}): once ${limits.maxConnections} are connected the others are refused`);
    }
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: 64 * 1024 * 1024,
      clientTracking: false,
      // Echo the first offered subprotocol (a client that offers some needs one back), never a credential.
      handleProtocols: (offered: Set<string>) => {
        for (const p of offered) if (!p.toLowerCase().startsWith(AUTH_SUBPROTOCOL_PREFIX)) return p;
        return false;
      },
    });
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.heartbeat = setInterval(() => this.beat(), limits.heartbeatSeconds * 1000);
    this.heartbeat.unref();
  }

  /**
   * Frame limits from the model size: frames above `maxFrameBytes` are refused with an error message;
   * frames above twice that (plus 1 MiB) are not even buffered: ws closes the connection with 1009.
   */
  setFrameLimit(maxFrameBytes: number): void {
    this.maxFrameBytes = maxFrameBytes;
    (this.wss.options as { maxPayload: number }).maxPayload = 2 * maxFrameBytes + (1 << 20);
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  peers(): Peer[] {
    return [...this.byHospital.values()];
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== PATHS.ws) {
      const other = this.access.upgrades?.[path];
      if (other) return other(req, socket, head);
      socket.end(rawHttpResponse('404 Not Found'));
      return;
    }
    if (!this.accepting) {
      this.metrics.refuse('not-ready');
      socket.end(rawHttpResponse('503 Service Unavailable', { 'Retry-After': '2' }));
      return;
    }
    const origin = req.headers.origin;
    if (!originAllowed(origin, req.headers.host, this.access)) {
      this.metrics.refuse('origin');
      this.note('origin', addressKey(this.clientOf(req)), origin);
      const body = `The web origin ${JSON.stringify(origin)} may not open this federation's WebSocket: only this server's own web app (and the origins in ALLOWED_ORIGINS) may.\n`;
      socket.end(rawHttpResponse('403 Forbidden', { 'Content-Type': 'text/plain; charset=utf-8' }, body));
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req));
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const peerAddress = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    const client = this.clientOf(req);
    const remote = client === req.socket.remoteAddress ? peerAddress : `${client} via ${peerAddress}`;
    const conn: Conn = { ws, alive: true, remote, address: addressKey(client) };
    ws.on('error', (e) => {
      // Before the hello, protocol errors (a frame over 64 KiB, a bad frame) are anyone's: summarised, not one line each.
      if (conn.peer) this.log.warn(`connection ${conn.remote} (${conn.peer.hospital}): ${e.message}`);
      else this.note('bad-hello', conn.address, e.message);
    });
    const credential = upgradeCredential(req.headers['sec-websocket-protocol']);
    if (credential.kind !== 'none') return this.admitCredentialed(conn, credential);
    const waitMs = this.throttle.blockedFor(conn.address, this.now());
    if (waitMs > 0) {
      this.metrics.refuse('auth-backoff');
      this.note('throttled', conn.address);
      return this.refuseEarly(ws, CLOSE.tryAgainLater, `too many unknown tokens from this address: try again in ${Math.ceil(waitMs / 1000)} s`);
    }
    const admit = this.preAuth.admit(conn.address, conn, this.byHospital.size + this.credentialed.size);
    if (!admit.admit) {
      this.metrics.refuse('server-full');
      this.note('server-full', conn.address);
      return this.refuseEarly(ws, CLOSE.tryAgainLater, 'server full, try again later');
    }
    if (admit.evict) this.evictWaiting(admit.evict);
    this.startWaiting(conn);
  }

  /**
   * A socket whose upgrade request carried a `fedgan.auth.` credential. A known hospital's key: it waits
   * for its hello outside the unauthenticated budget and the address's sign-in backoff (an older waiting
   * socket with the same key is closed), refused only while maxConnections other hospitals are connected.
   * Any other key is a failed sign-in: counted against the address (backoff) and closed with 4001.
   */
  private admitCredentialed(conn: Conn, credential: Exclude<ReturnType<typeof upgradeCredential>, { kind: 'none' }>): void {
    const hospital = credential.kind === 'key' ? this.tokens.hospitalOfUpgradeKey(credential.key) : undefined;
    if (hospital === undefined) {
      const blocked = this.throttle.blockedFor(conn.address, this.now());
      if (blocked > 0) {
        this.metrics.refuse('auth-backoff');
        this.note('throttled', conn.address);
        return this.refuseEarly(conn.ws, CLOSE.tryAgainLater, `too many unknown tokens from this address: try again in ${Math.ceil(blocked / 1000)} s`);
      }
      const { failures, waitMs } = this.throttle.failure(conn.address, this.now());
      const what = credential.kind === 'malformed' ? credential.problem : 'a key in the upgrade request that matches no token';
      this.note('unauthorized', conn.address, waitMs > 0 ? `${what}; ${failures} in a row; this address now waits ${Math.ceil(waitMs / 1000)} s` : what);
      this.sendError(conn, 'unauthorized', `unknown token: the upgrade request's ${AUTH_SUBPROTOCOL_PREFIX}… key matches no hospital's token`);
      return this.refuseEarly(conn.ws, CLOSE.unauthorized, 'unknown token');
    }
    if (!this.byHospital.has(hospital) && this.byHospital.size >= this.limits.maxConnections) {
      this.metrics.refuse('server-full');
      this.note('server-full', conn.address);
      return this.refuseEarly(conn.ws, CLOSE.tryAgainLater, 'server full, try again later');
    }
    conn.claim = hospital;
    const { replaced } = this.credentialed.admit(hospital, conn);
    if (replaced) {
      this.metrics.refuse('credential-replaced');
      this.note('replaced', replaced.address);
      this.closeConn(replaced, CLOSE.tryAgainLater, 'replaced by a newer connection with the same credential before its hello');
    }
    const evict = this.preAuth.makeRoom(this.byHospital.size + this.credentialed.size);
    if (evict) this.evictWaiting(evict);
    this.startWaiting(conn);
  }

  /** Close a socket without a credential that waited for its hello, to make room. */
  private evictWaiting(evict: Conn): void {
    this.metrics.refuse('unauthenticated-budget');
    this.note('evicted', evict.address);
    this.closeConn(evict, CLOSE.tryAgainLater, 'too many connections waiting for a hello: send it at once after connecting');
  }

  /** An admitted socket: count it, cap its messages until the hello, and give it helloTimeoutSeconds to send one. */
  private startWaiting(conn: Conn): void {
    const ws = conn.ws;
    this.metrics.unauthenticated.set(this.preAuth.size);
    this.conns.add(conn);
    this.metrics.connections.set(this.conns.size);
    setConnectionMaxPayload(ws, PRE_AUTH_MAX_PAYLOAD);
    conn.helloTimer = setTimeout(() => {
      this.metrics.refuse('hello-timeout');
      this.note('hello-timeout', conn.address);
      this.closeConn(conn, CLOSE.helloTimeout, 'no hello received in time');
    }, this.limits.helloTimeoutSeconds * 1000);
    ws.on('pong', () => (conn.alive = true));
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(conn, data, isBinary));
    ws.on('close', (code: number, reason: Buffer) => this.onClose(conn, code, reason.toString()));
  }

  private onClose(conn: Conn, code: number, reason: string): void {
    clearTimeout(conn.helloTimer);
    this.preAuth.release(conn);
    this.credentialed.release(conn);
    this.metrics.unauthenticated.set(this.preAuth.size);
    this.conns.delete(conn);
    this.metrics.connections.set(this.conns.size);
    const peer = conn.peer;
    if (peer && this.byHospital.get(peer.hospital) === peer) {
      this.byHospital.delete(peer.hospital);
      this.metrics.connected.set(this.byHospital.size);
      this.log.info(`${peer.hospital} disconnected (${code}${reason ? ` ${clientText(reason, 123)}` : ''})`);
      this.handlers.onLeave(peer, code, reason);
    }
  }

  private onMessage(conn: Conn, raw: RawData, isBinary: boolean): void {
    const data = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw as ArrayBuffer);
    this.metrics.bytesIn.inc({}, data.length);
    this.metrics.messagesIn.inc({ kind: isBinary ? 'binary' : 'text' });
    conn.alive = true;
    if (conn.closing) return;
    if (!conn.peer) return this.onHello(conn, data, isBinary);
    const peer = conn.peer;
    if (data.length > this.maxFrameBytes) {
      return peer.error('frame-too-large', `a frame of ${data.length} bytes exceeds the limit of ${this.maxFrameBytes} bytes`);
    }
    if (isBinary) {
      this.onBinary(peer, data);
      // The update (and ws's receive chunks) are garbage now: collect them before the next one arrives.
      if (data.length >= LARGE_MESSAGE_BYTES) setImmediate(releaseLargeMessageGarbage);
      return;
    }
    this.onTextMessage(peer, data);
  }

  private onBinary(peer: PeerImpl, data: Buffer): void {
    let frame;
    try {
      frame = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } catch (e) {
      return peer.error('bad-frame', (e as Error).message);
    }
    if (frame.header.type !== 'update') {
      return peer.error('unknown-type', `unknown binary message type ${JSON.stringify(frame.header.type).slice(0, 80)} (clients send only "update" frames)`);
    }
    const h = updateHeaderSchema.safeParse(frame.header);
    if (!h.success) {
      const { round, attempt } = frame.header as { round?: unknown; attempt?: unknown };
      const extra = Number.isInteger(round) && Number.isInteger(attempt) ? { round: round as number, attempt: attempt as number } : {};
      return peer.error('bad-message', `invalid update header: ${describeIssues(h.error.issues)}`, extra);
    }
    this.handlers.onUpdate(peer, h.data, frame.payload, data.length);
  }

  private onTextMessage(peer: PeerImpl, data: Buffer): void {
    let msg;
    try {
      msg = decodeText(data.toString('utf8'));
    } catch (e) {
      return peer.error('bad-frame', (e as Error).message);
    }
    if (!(CLIENT_TEXT_TYPES as readonly string[]).includes(msg.type)) {
      return peer.error('unknown-type', `unknown message type ${JSON.stringify(msg.type).slice(0, 80)}`);
    }
    if (msg.type === 'hello') return peer.error('bad-message', 'already authenticated: hello is sent once per connection');
    const parsed = clientTextSchema.safeParse(msg);
    if (!parsed.success) return peer.error('bad-message', `invalid ${msg.type} message: ${describeIssues(parsed.error.issues)}`);
    this.handlers.onText(peer, parsed.data as Exclude<ClientTextMessage, { type: 'hello' }>);
  }

  private onHello(conn: Conn, data: Buffer, isBinary: boolean): void {
    const refuse = (code: ErrorCode, closeCode: number, message: string) => {
      if (code === 'bad-hello') this.note('bad-hello', conn.address, message);
      this.sendError(conn, code, message);
      this.closeConn(conn, closeCode, message);
    };
    if (isBinary) return refuse('bad-hello', CLOSE.badHello, 'the first message must be a text hello');
    if (data.length > PRE_AUTH_MAX_PAYLOAD) return refuse('bad-hello', CLOSE.badHello, 'hello too large');
    let msg;
    try {
      msg = decodeText(data.toString('utf8'));
    } catch (e) {
      return refuse('bad-hello', CLOSE.badHello, `the first message must be a hello: ${(e as Error).message}`);
    }
    const parsed = helloSchema.safeParse(msg);
    if (!parsed.success) return refuse('bad-hello', CLOSE.badHello, `invalid hello: ${describeIssues(parsed.error.issues)}`.slice(0, 120));
    const hello = parsed.data;
    const common = hello.protocols.filter((v) => SUPPORTED_PROTOCOL_VERSIONS.includes(v));
    if (!common.length) {
      return refuse(
        'protocol-version',
        CLOSE.unsupportedProtocol,
        `no common protocol version: client speaks ${hello.protocols.join(',')}, server ${SUPPORTED_PROTOCOL_VERSIONS.join(',')}`.slice(0, 120),
      );
    }
    const protocol = Math.max(...common);
    // Sockets opened before the address had to wait do not get their tokens checked meanwhile either
    // (unless they presented a hospital's key: failures of others at its address do not hold a hospital back).
    const waitMs = conn.claim === undefined ? this.throttle.blockedFor(conn.address, this.now()) : 0;
    if (waitMs > 0) {
      this.metrics.refuse('auth-backoff');
      this.note('throttled', conn.address);
      return this.closeConn(conn, CLOSE.tryAgainLater, `too many unknown tokens from this address: try again in ${Math.ceil(waitMs / 1000)} s`);
    }
    const hospital = this.tokens.authenticate(hello.token);
    if (!hospital) {
      const { failures, waitMs } = this.throttle.failure(conn.address, this.now());
      this.note('unauthorized', conn.address, waitMs > 0 ? `${failures} in a row; this address now waits ${Math.ceil(waitMs / 1000)} s` : undefined);
      return refuse('unauthorized', CLOSE.unauthorized, 'unknown token');
    }
    if (conn.claim !== undefined && hospital !== conn.claim) {
      const { failures, waitMs } = this.throttle.failure(conn.address, this.now());
      const what = `a hello whose token is not the one of the upgrade request's key (${conn.claim})`;
      this.note('unauthorized', conn.address, waitMs > 0 ? `${what}; ${failures} in a row; this address now waits ${Math.ceil(waitMs / 1000)} s` : what);
      return refuse('unauthorized', CLOSE.unauthorized, "unknown token: the hello's token is not the one the upgrade request's key was made from");
    }
    const existing = this.byHospital.get(hospital);
    if (existing) {
      if (existing.clientId !== hello.clientId) {
        this.log.warn(`refused a second connection for ${hospital} from ${conn.remote}: client ${existing.clientId} is connected`);
        return refuse('token-in-use', CLOSE.tokenInUse, `another client is connected as ${hospital}`);
      }
      // The same client reconnecting (its old socket may be half-dead): the new connection wins.
      this.log.info(`${hospital} reconnected; closing its previous connection`);
      this.byHospital.delete(hospital);
      existing.conn.peer = undefined;
      this.closeConn(existing.conn, CLOSE.superseded, 'superseded by a newer connection of this client');
      this.handlers.onLeave(existing, CLOSE.superseded, 'superseded');
    }
    clearTimeout(conn.helloTimer);
    this.preAuth.release(conn);
    this.credentialed.release(conn);
    this.metrics.unauthenticated.set(this.preAuth.size);
    setConnectionMaxPayload(conn.ws, (this.wss.options as { maxPayload: number }).maxPayload);
    // Updates are received into one buffer as they arrive (1× the update in memory, not 2×).
    const pool = this.receivePool;
    const inPlace = receiveLargeFramesInPlace(conn.ws, { collect: releaseReceiveGarbage, ...(pool ? { allocate: (n: number) => pool.take(n) } : {}) });
    if (!inPlace && !this.warnedNoInPlace) {
      this.warnedNoInPlace = true;
      this.log.warn('ws internals differ from the pinned version: large frames are buffered by ws (2× their size while received)');
    }
    const peer = new PeerImpl(this.nextId++, hospital, hello.clientId, protocol, hello.agent, Date.now(), this, conn);
    conn.peer = peer;
    this.byHospital.set(hospital, peer);
    this.metrics.connected.set(this.byHospital.size);
    this.log.info(`${hospital} connected (client ${hello.clientId}${hello.agent ? `, agent ${clientText(hello.agent)}` : ''}, protocol ${protocol}, ${conn.remote})`);
    const w = this.handlers.welcome();
    peer.send({
      type: 'welcome',
      protocol,
      hospital,
      clientId: hello.clientId,
      fingerprint: w.fingerprint,
      rounds: w.rounds,
      round: w.round,
      phase: w.phase,
      limits: { maxFrameBytes: this.maxFrameBytes, heartbeatSeconds: this.limits.heartbeatSeconds, ...w.limits },
    });
    this.handlers.onJoin(peer);
  }

  sendText(conn: Conn, msg: ServerTextMessage): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    const s = JSON.stringify(msg);
    this.metrics.bytesOut.inc({}, Buffer.byteLength(s));
    conn.ws.send(s);
  }

  sendBinary(conn: Conn, parts: Uint8Array[]): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    for (let i = 0; i < parts.length; i++) {
      this.metrics.bytesOut.inc({}, parts[i].byteLength);
      conn.ws.send(parts[i], { binary: true, fin: i === parts.length - 1 });
    }
  }

  sendError(conn: Conn, code: ErrorCode, message: string, extra: { round?: number; attempt?: number } = {}): void {
    this.metrics.refuse(code);
    this.sendText(conn, { type: 'error', code, message, ...extra });
  }

  closeConn(conn: Conn, code: number, reason: string): void {
    clearTimeout(conn.helloTimer);
    conn.closing = true;
    // A closing socket no longer waits for its hello: it leaves the unauthenticated budget now.
    const unauthenticated = !conn.peer;
    this.preAuth.release(conn);
    this.credentialed.release(conn);
    this.metrics.unauthenticated.set(this.preAuth.size);
    const r = Buffer.from(reason).length > 123 ? reason.slice(0, 100) : reason;
    if (conn.ws.readyState === conn.ws.OPEN || conn.ws.readyState === conn.ws.CONNECTING) conn.ws.close(code, r);
    // Do not wait for the peer's close frame forever (an unauthenticated peer gets less time).
    setTimeout(() => conn.ws.terminate(), unauthenticated ? 1000 : 5000).unref();
  }

  /** Close a socket that was never admitted (not counted anywhere); it is cut off if it does not answer the close. */
  private refuseEarly(ws: WebSocket, code: number, reason: string): void {
    ws.close(code, reason);
    setTimeout(() => ws.terminate(), 1000).unref();
  }

  /** The client's address: the socket's peer, or through a trusted proxy the address it forwards for. */
  private clientOf(req: IncomingMessage): string | undefined {
    return clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], this.access.trustedProxies);
  }

  /** Count a refusal for the summary log; the first of a kind after a quiet window is logged at once. */
  private note(kind: AdmissionEvent, address: string, detail?: string): void {
    const line = this.admissionLog.note(kind, address, this.now(), detail);
    if (line) this.log.warn(line);
  }

  /** Write the refusal summaries that are due (every second by a timer; `force`: all pending, e.g. at shutdown). */
  flushAdmissionLog(force = false): void {
    const now = this.now();
    for (const line of this.admissionLog.flush(now, force)) this.log.warn(line);
    this.throttle.prune(now);
  }

  /** Sockets waiting for their hello (counted against the unauthenticated budget). */
  get unauthenticatedCount(): number {
    return this.preAuth.size;
  }

  private beat(): void {
    for (const conn of this.conns) {
      if (!conn.alive) {
        this.log.warn(`dropping ${conn.peer?.hospital ?? conn.remote}: no pong within ${this.limits.heartbeatSeconds}s`);
        this.metrics.refuse('heartbeat-timeout');
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      try {
        conn.ws.ping();
      } catch {
        // closed meanwhile
      }
    }
  }

  /** Close every connection (server shutdown) and stop the heartbeat. */
  async close(code: number = CLOSE.goingAway, reason = 'server shutting down'): Promise<void> {
    clearInterval(this.heartbeat);
    clearInterval(this.summaryTimer);
    this.flushAdmissionLog(true);
    this.accepting = false;
    for (const conn of this.conns) this.closeConn(conn, code, reason);
    const deadline = Date.now() + 2000;
    while (this.conns.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const conn of this.conns) conn.ws.terminate();
    this.wss.close();
  }
}
