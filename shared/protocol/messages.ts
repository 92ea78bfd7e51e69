import { z } from 'zod';

/**
 * The federation protocol, defined once for the server, the browser worker and the Node simulation.
 * docs/protocol.md is its prose description; keep the two in step (the doc-client test checks the doc).
 *
 * - Control messages are JSON objects in WebSocket *text* frames, each with a string `type`.
 * - Messages that carry weights travel in WebSocket *binary* frames (see frames.ts): a JSON header with
 *   the same `type` field, followed by the weights-codec payload. Weights are never JSON arrays.
 * - Nothing in the protocol can carry image data: updates are weights plus four numbers.
 */

/** Protocol versions this code speaks, newest first. A hello lists the client's; the server picks the highest shared one. */
export const PROTOCOL_VERSION = 1;
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [1];

/** WebSocket close codes used by the server (4000–4999 are application codes). */
export const CLOSE = {
  normal: 1000,
  /** Server shutting down: reconnect later. */
  goingAway: 1001,
  /** A frame above the hard size cap (ws closes the connection itself). */
  tooLarge: 1009,
  internalError: 1011,
  /** Too many connections: reconnect later. */
  tryAgainLater: 1013,
  /** First message was not a valid hello. Fatal. */
  badHello: 4000,
  /** Unknown token. Fatal: do not reconnect with the same token. */
  unauthorized: 4001,
  /** No protocol version in common. Fatal. */
  unsupportedProtocol: 4002,
  /** A newer connection with the same token and client id replaced this one. Do not reconnect. */
  superseded: 4003,
  /** No hello within the hello timeout. Reconnect. */
  helloTimeout: 4004,
  /** Another client (different client id) is connected with this token. Reconnect later, with backoff. */
  tokenInUse: 4009,
} as const;

/** Close codes after which a client must not reconnect on its own. */
export const FATAL_CLOSE_CODES: readonly number[] = [CLOSE.badHello, CLOSE.unauthorized, CLOSE.unsupportedProtocol, CLOSE.superseded];

/** Codes of `error` messages. The update-validation ones are also the `reason` label of the rejection metric. */
export const ERROR_CODES = [
  // framing / protocol
  'bad-frame',
  'bad-message',
  'unknown-type',
  'frame-too-large',
  'bad-hello',
  'unauthorized',
  'protocol-version',
  'token-in-use',
  // round bookkeeping
  'wrong-round',
  'late',
  'not-sampled',
  'duplicate',
  'no-upload-slot',
  'finished',
  // update validation
  'fingerprint',
  'shape',
  'non-finite',
  'examples',
  'norm',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const PHASES = ['loading', 'waiting', 'training', 'aggregating', 'finished'] as const;
export type Phase = (typeof PHASES)[number];

const int = z.number().int();
const nonNeg = int.min(0);
const finite = z.number().refine(Number.isFinite, 'must be a finite number');

// ---------------------------------------------------------------------------------------------------------
// Client → server
// ---------------------------------------------------------------------------------------------------------

export const helloSchema = z
  .object({
    type: z.literal('hello'),
    /** Protocol versions the client speaks. */
    protocols: z.array(int.min(1)).min(1).max(32),
    token: z.string().min(1).max(512),
    /** Stable identity of this client installation (survives reconnects and reloads). */
    clientId: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1–128 of A–Z a–z 0–9 . _ : -'),
    /** Free text for logs, e.g. `fedgan-web/0.1 (webgpu)`. */
    agent: z.string().max(200).optional(),
  })
  .strict();
export type Hello = z.infer<typeof helloSchema>;

export const uploadRequestSchema = z.object({ type: z.literal('upload-request'), round: nonNeg, attempt: nonNeg }).strict();
export type UploadRequest = z.infer<typeof uploadRequestSchema>;

export const progressSchema = z
  .object({
    type: z.literal('progress'),
    round: nonNeg,
    attempt: nonNeg,
    /** Share of the local work done, 0–1. */
    fraction: z.number().min(0).max(1),
    message: z.string().max(200).optional(),
  })
  .strict();
export type Progress = z.infer<typeof progressSchema>;

export const declineSchema = z
  .object({ type: z.literal('decline'), round: nonNeg, attempt: nonNeg, reason: z.string().max(500) })
  .strict();
export type Decline = z.infer<typeof declineSchema>;

export const getGlobalSchema = z.object({ type: z.literal('get-global') }).strict();
export type GetGlobal = z.infer<typeof getGlobalSchema>;

export const clientTextSchema = z.discriminatedUnion('type', [helloSchema, uploadRequestSchema, progressSchema, declineSchema, getGlobalSchema]);
export type ClientTextMessage = z.infer<typeof clientTextSchema>;
export const CLIENT_TEXT_TYPES = ['hello', 'upload-request', 'progress', 'decline', 'get-global'] as const;

/** Header of the binary `update` frame (payload: the trained weights). */
export const updateHeaderSchema = z
  .object({
    type: z.literal('update'),
    round: nonNeg,
    attempt: nonNeg,
    /** Local training examples: the FedAvg weight. */
    examples: int,
    dLoss: finite,
    gLoss: finite,
    trainSeconds: z.number().min(0).optional(),
  })
  .strict();
export type UpdateHeader = z.infer<typeof updateHeaderSchema>;
export const CLIENT_BINARY_TYPES = ['update'] as const;

// ---------------------------------------------------------------------------------------------------------
// Server → client
// ---------------------------------------------------------------------------------------------------------

/** What a hospital needs to train one round. */
export interface RoundConfig {
  round: number;
  attempt: number;
  rounds: number;
  ganType: string;
  localEpochs: number;
  learningRate: { generator: number; discriminator: number };
  imageSize: number;
  batchNorm: 'average' | 'local';
  examples: { min: number; max: number };
  maxUpdateNorm?: number;
  /** Seconds the hospital has, counted from receipt of the round frame. */
  deadlineSeconds: number;
  /** The full GAN config (shared/config/ganConfig.ts) to build the model. */
  model: Record<string, unknown>;
}

export interface Welcome {
  type: 'welcome';
  protocol: number;
  hospital: string;
  clientId: string;
  fingerprint: string;
  rounds: number;
  /** Rounds completed so far. */
  round: number;
  phase: Phase;
  limits: { maxFrameBytes: number; heartbeatSeconds: number };
}

export interface StatusMessage {
  type: 'status';
  phase: Phase;
  /** Rounds completed so far. */
  round: number;
  rounds: number;
  /** Authenticated hospitals connected. */
  connected: number;
  /** Hospitals needed before a round starts. */
  minAvailable: number;
  /** Whether this hospital is sampled in the round in flight. */
  sampled: boolean;
}

export interface UploadGrant {
  type: 'upload-grant';
  round: number;
  attempt: number;
}
export interface Accepted {
  type: 'accepted';
  round: number;
  attempt: number;
}
export interface RoundClosed {
  type: 'round-closed';
  round: number;
  attempt: number;
  reason: 'deadline' | 'aborted' | 'disconnected';
}
export interface RoundComplete {
  type: 'round-complete';
  round: number;
  participants: number;
  examples: number;
  dLoss: number;
  gLoss: number;
  seconds: number;
}
export interface RoundFailed {
  type: 'round-failed';
  round: number;
  attempt: number;
  received: number;
  needed: number;
}
export interface Finished {
  type: 'finished';
  rounds: number;
}
export interface ErrorMessage {
  type: 'error';
  code: ErrorCode;
  message: string;
  round?: number;
  attempt?: number;
}

export type ServerTextMessage = Welcome | StatusMessage | UploadGrant | Accepted | RoundClosed | RoundComplete | RoundFailed | Finished | ErrorMessage;

/** Header of the binary `round` frame (payload: the global weights to start from). */
export interface RoundHeader {
  type: 'round';
  round: number;
  attempt: number;
  config: RoundConfig;
}
/** Header of the binary `global` frame, the answer to `get-global` (payload: the current global weights). */
export interface GlobalHeader {
  type: 'global';
  /** Rounds completed; the weights are the result of that round (0: the initial weights). */
  round: number;
}
export type ServerBinaryHeader = RoundHeader | GlobalHeader;
