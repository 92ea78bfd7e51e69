import { z } from 'zod';
import { GAN_TYPES } from '../config/ganConfig.ts';
import type { BatchNormPolicy } from '../fed/batchNormPolicy.ts';

/**
 * The federation protocol, defined once for the server, the browser worker and the Node simulation.
 * docs/protocol.md is its prose description; keep the two in step (the doc-client test checks the doc).
 *
 * - Control messages are JSON objects in WebSocket *text* frames, each with a string `type`.
 * - Messages that carry weights travel in WebSocket *binary* frames (see frames.ts): a JSON header with
 *   the same `type` field, followed by the weights-codec payload. Weights are never JSON arrays.
 * - Nothing in the protocol can carry image data: updates are weights plus four numbers.
 */

/**
 * Protocol versions the server speaks, newest first. A hello lists the client's; the server picks the highest
 * shared one. Version 2 sizes a round in generator steps (`config.localSteps`); version 1's `localEpochs`
 * is not spoken any more. Version 3 adds fields to server messages only (docs/protocol.md §7): `round-failed`
 * says why (`reason`) and when the next attempt starts (`nextAttemptInSeconds`), `welcome.limits` carries the
 * upload-slot limits, a `round` frame sent again to a hospital that reconnected carries `resumed: true`. The
 * server sends the same messages to a version-2 client, which ignores the fields it does not know (§2.10).
 */
export const PROTOCOL_VERSION = 3;
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [3, 2];
/**
 * Versions the clients of this code offer in their hello (the browser, the Node hospitals, the CLI): only 3,
 * because they rely on the version-3 fields; a server that speaks only version 2 refuses them with 4002.
 */
export const CLIENT_PROTOCOL_VERSIONS: readonly number[] = [3];

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

// Secure aggregation (docs/protocol.md §2.11, shared/secagg/client.ts): only on rounds whose config carries
// `secureAggregation`. Keys and shares are base64; a P-256 public key has 65 bytes (88 base64 characters).
const hospitalName = z.string().min(1).max(200);
const base64 = (max: number) => z.string().max(max).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
const publicKey = base64(100);

/** Phase 0: the hospital's two fresh public keys for this attempt. */
export const secaggKeysSchema = z.object({ type: z.literal('secagg-keys'), round: nonNeg, attempt: nonNeg, cPk: publicKey, sPk: publicKey }).strict();
export type SecAggKeys = z.infer<typeof secaggKeysSchema>;

/** One sealed share pair: to `peer` (client → server) or from `peer` (server → client). */
const sealedShareSchema = z.object({ peer: hospitalName, data: base64(2000) }).strict();

/** Phase 1: the hospital's sealed shares, one for each other hospital of the roster. */
export const secaggSharesSchema = z
  .object({ type: z.literal('secagg-shares'), round: nonNeg, attempt: nonNeg, shares: z.array(sealedShareSchema).max(10_000) })
  .strict();
export type SecAggShares = z.infer<typeof secaggSharesSchema>;

/** Phase 3: the hospital's shares that unmask the sum: of each survivor's seed, of each dropped hospital's key. */
export const secaggRevealSchema = z
  .object({
    type: z.literal('secagg-reveal'),
    round: nonNeg,
    attempt: nonNeg,
    shares: z.array(z.object({ of: hospitalName, kind: z.enum(['seed', 'key']), data: base64(400) }).strict()).max(10_000),
  })
  .strict();
export type SecAggReveal = z.infer<typeof secaggRevealSchema>;

export const clientTextSchema = z.discriminatedUnion('type', [
  helloSchema,
  uploadRequestSchema,
  progressSchema,
  declineSchema,
  getGlobalSchema,
  secaggKeysSchema,
  secaggSharesSchema,
  secaggRevealSchema,
]);
export type ClientTextMessage = z.infer<typeof clientTextSchema>;
export const CLIENT_TEXT_TYPES = ['hello', 'upload-request', 'progress', 'decline', 'get-global', 'secagg-keys', 'secagg-shares', 'secagg-reveal'] as const;

/** A feature network's name as the quality probe reports it (FeatureExtractor.name, e.g. `mobilenet-v2`). */
const featuresName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be 1–64 of a–z 0–9 . _ - (a feature network name)');

/**
 * A hospital's quality probe (shared/fed/hospitalProbe.ts): the fixed-sample KID of the global model it
 * received against `n` of its own tiles, on `features`. Bounded so that a figure cannot poison the mean.
 */
export const probeReportSchema = z
  .object({
    kid: finite.refine((v) => Math.abs(v) <= 1e6, 'must be within ±1e6'),
    kidStd: finite.refine((v) => v >= 0 && v <= 1e6, 'must be in 0…1e6'),
    /** Real tiles of the hospital the sample was scored against. */
    n: int.min(2).max(1_000_000),
    features: featuresName,
  })
  .strict();
export type ProbeReport = z.infer<typeof probeReportSchema>;

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
    /** The quality probe the round asked for (`config.quality`), of the global model the hospital received. */
    quality: probeReportSchema.optional(),
    /**
     * Secure aggregation (the round's `config.secureAggregation`): the payload is not a weights file but the
     * masked, fixed-point update, one little-endian u32 per aggregated weight (shared/secagg/quantize.ts), and
     * `examples` is the count it is weighted by (at most `config.secureAggregation.maxExamples`).
     */
    masked: z.literal(true).optional(),
    /**
     * Present when the hospital trained with differential privacy (shared/privacy/budget.ts): the ε its tiles
     * have spent after this round (this round included) at δ, by the RDP accountant (shared/privacy/accountant.ts).
     */
    privacy: z.object({ epsilon: z.number().min(0).max(1e9), delta: z.number().gt(0).lt(1) }).strict().optional(),
  })
  .strict();
export type UpdateHeader = z.infer<typeof updateHeaderSchema>;
export const CLIENT_BINARY_TYPES = ['update'] as const;

// ---------------------------------------------------------------------------------------------------------
// Server → client
//
// Validated by the client (shared/protocol/validation.ts) with these schemas, as the server validates client
// messages with the ones above. They are not strict: clients ignore unknown fields (docs/protocol.md §2.10),
// so parsing drops them; unknown message types are ignored before parsing.
// ---------------------------------------------------------------------------------------------------------

const positive = int.min(1);
const positiveFinite = z.number().positive();
/** The batch-norm policies of shared/fed/batchNormPolicy.ts (checked against its type). */
const BATCH_NORM_CHOICES = ['average', 'local'] as const satisfies readonly BatchNormPolicy[];

/** What a hospital needs to train one round. */
export const roundConfigSchema = z.object({
  /** The round being trained, 1-based (= rounds completed + 1). */
  round: positive,
  /** Starts at 1; grows when a round is repeated. */
  attempt: positive,
  rounds: positive,
  ganType: z.enum(GAN_TYPES),
  /**
   * Generator steps each hospital trains this round (shared/gan/localTraining.ts): one mini-batch of real
   * tiles and one generator update each (WGAN-GP: `nCritic` critic updates, then the generator update).
   */
  localSteps: positive,
  learningRate: z.object({ generator: positiveFinite, discriminator: positiveFinite }),
  imageSize: positive,
  batchNorm: z.enum(BATCH_NORM_CHOICES),
  /** Allowed example count of the update (the FedAvg weight). */
  examples: z.object({ min: nonNeg, max: nonNeg }).refine((e) => e.min <= e.max, { message: 'must be at most examples.max', path: ['min'] }),
  /** Present when the server bounds ‖update − global‖₂. */
  maxUpdateNorm: positiveFinite.optional(),
  /** Seconds the hospital has, counted from receipt of the round frame. */
  deadlineSeconds: positiveFinite,
  /**
   * Present on the rounds whose hospitals probe the global model they receive (the result of round − 1):
   * a fixed-sample KID on `features` of `perClass` synthetic tiles per class (latents from `seed`) against
   * at most `perClass` of the hospital's own tiles per class, `subsets` KID subsets. The result goes in the
   * update's `quality`; a hospital that cannot load `features` sends its update without it.
   */
  quality: z
    .object({ features: featuresName, perClass: int.min(2).max(1000), seed: nonNeg, subsets: int.min(1).max(1000) })
    .optional(),
  /** The full GAN config (shared/config/ganConfig.ts) to build the model; the client checks it with parseGanConfig. */
  model: z.record(z.string(), z.unknown()),
  /**
   * Present when the round uses secure aggregation (docs/protocol.md §2.11): the hospital advertises keys,
   * shares them, and uploads its update masked and fixed-point encoded with these parameters
   * (shared/secagg/quantize.ts): each coordinate of weights − global clipped to ±clip, the count capped at
   * maxExamples, scaled by `scale`.
   */
  secureAggregation: z.object({ clip: positiveFinite, scale: positiveFinite, maxExamples: positive }).optional(),
  /**
   * Present when the federation trains with differential privacy (FedConfig `privacy.dp`): the clip norm and
   * the noise multiplier σ or the target ε, and δ when the federation fixes one. Each hospital combines it with
   * its own budget (shared/privacy/budget.ts) and trains with DP-SGD on Poisson-sampled batches.
   */
  dp: z
    .object({ clipNorm: positiveFinite, noiseMultiplier: positiveFinite.optional(), targetEpsilon: positiveFinite.optional(), delta: z.number().gt(0).lt(1).optional() })
    .optional(),
});
export type RoundConfig = z.infer<typeof roundConfigSchema>;

export const welcomeSchema = z.object({
  type: z.literal('welcome'),
  /** The negotiated protocol version (one the client offered). */
  protocol: positive,
  hospital: z.string().min(1),
  clientId: z.string(),
  /** Architecture fingerprint of the model: the round weights carry the same. */
  fingerprint: z.string().min(1),
  rounds: positive,
  /** Rounds completed so far. */
  round: nonNeg,
  phase: z.enum(PHASES),
  limits: z.object({
    maxFrameBytes: nonNeg,
    heartbeatSeconds: positiveFinite,
    /** Upload slots the server grants at once (FedConfig limits.maxConcurrentUploads). */
    maxConcurrentUploads: positive,
    /**
     * Longest time a granted slot is held (FedConfig limits.uploadGrantSeconds): the update must arrive within
     * it. A grant never outlasts the round's deadline: near the deadline it is shorter (docs/protocol.md §2.6).
     */
    uploadGrantSeconds: positiveFinite,
    /**
     * A sampled hospital whose connection drops keeps its place in the attempt for this long (never past the
     * deadline): when it reconnects in time it gets the round again with `resumed: true` (docs/protocol.md §2.8).
     */
    reconnectGraceSeconds: z.number().min(0),
  }),
});
export type Welcome = z.infer<typeof welcomeSchema>;

export const statusSchema = z.object({
  type: z.literal('status'),
  phase: z.enum(PHASES),
  /** Rounds completed so far. */
  round: nonNeg,
  rounds: positive,
  /** Authenticated hospitals connected. */
  connected: nonNeg,
  /** Hospitals needed before a round starts. */
  minAvailable: nonNeg,
  /** Whether this hospital is sampled in the round in flight. */
  sampled: z.boolean(),
});
export type StatusMessage = z.infer<typeof statusSchema>;

export const uploadGrantSchema = z.object({ type: z.literal('upload-grant'), round: nonNeg, attempt: nonNeg });
export type UploadGrant = z.infer<typeof uploadGrantSchema>;

export const acceptedSchema = z.object({ type: z.literal('accepted'), round: nonNeg, attempt: nonNeg });
export type Accepted = z.infer<typeof acceptedSchema>;

export const roundClosedSchema = z.object({
  type: z.literal('round-closed'),
  round: nonNeg,
  attempt: nonNeg,
  reason: z.enum(['deadline', 'aborted', 'disconnected']),
});
export type RoundClosed = z.infer<typeof roundClosedSchema>;

/**
 * The quality figure a round recorded (shared/fed/strategy.ts RoundAggregation, the history entry's
 * `quality`): the example-weighted mean of the hospitals' probes of the model of round `round` (the global
 * model they received, so the round before the entry's own).
 */
export const roundQualitySchema = z.object({
  /** The round whose global model was measured (the entry's round − 1). */
  round: nonNeg,
  /** Example-weighted mean of the reported KIDs, and of their subset standard deviations. */
  kid: finite,
  kidStd: finite,
  /** Hospitals that reported a probe, and the sum of their example counts (the weights of the mean). */
  hospitals: positive,
  examples: positive,
  features: z.string(),
});
export type RoundQuality = z.infer<typeof roundQualitySchema>;

export const roundCompleteSchema = z.object({
  type: z.literal('round-complete'),
  round: nonNeg,
  participants: nonNeg,
  examples: nonNeg,
  /** Example-weighted means of the accepted updates' losses. */
  dLoss: finite,
  gLoss: finite,
  seconds: z.number().min(0),
  /** Present when the round's hospitals reported quality probes (see roundQualitySchema). */
  quality: roundQualitySchema.optional(),
});
export type RoundComplete = z.infer<typeof roundCompleteSchema>;

/**
 * Why an attempt failed (`round-failed.reason`):
 * - `deadline`: the round deadline passed with fewer than `needed` accepted updates;
 * - `unreachable`: the attempt ended before its deadline because `needed` updates could no longer arrive
 *   (sampled hospitals declined, had their updates refused, or left and did not reconnect in time);
 * - `save-failed`: the updates were combined but the server could not save the result (its storage failed);
 *   the result is kept in memory and the save is retried (`nextAttemptInSeconds`): the round is not repeated;
 * - `internal`: the server failed to combine the updates (a server error); the round is repeated.
 * - `secure-aggregation`: fewer hospitals than the round's secure-aggregation threshold stayed for one of its
 *   phases (keys, shares, masked updates, unmasking): the sum cannot be unmasked; `detail` says which phase.
 *   The round is repeated.
 */
export const ROUND_FAILED_REASONS = ['deadline', 'unreachable', 'save-failed', 'internal', 'secure-aggregation'] as const;
export type RoundFailedReason = (typeof ROUND_FAILED_REASONS)[number];

export const roundFailedSchema = z.object({
  type: z.literal('round-failed'),
  round: nonNeg,
  attempt: nonNeg,
  /** Updates accepted in this attempt, and the minimum it needed (FedConfig minCompletion). */
  received: nonNeg,
  needed: nonNeg,
  reason: z.enum(ROUND_FAILED_REASONS),
  /**
   * Seconds until the server tries again: the next attempt of the round (`deadline`, `unreachable`,
   * `internal`) or the next save (`save-failed`). null: no attempt is scheduled, because
   * `retry.maxFailedAttempts` attempts in a row failed; the server tries again when a hospital joins.
   */
  nextAttemptInSeconds: z.number().min(0).nullable(),
  /** A sentence for people: why, when the reason alone does not say it (e.g. the secure-aggregation phase). */
  detail: z.string().max(500).optional(),
});
export type RoundFailed = z.infer<typeof roundFailedSchema>;

export const finishedSchema = z.object({ type: z.literal('finished'), rounds: nonNeg });

/** Secure aggregation phase 0 → 1: the hospitals that advertised keys (U1), each with its index, and the threshold. */
export const secaggRosterSchema = z.object({
  type: z.literal('secagg-roster'),
  round: nonNeg,
  attempt: nonNeg,
  threshold: int.min(2),
  members: z.array(z.object({ hospital: hospitalName, index: positive, cPk: publicKey, sPk: publicKey })).min(2).max(10_000),
});
export type SecAggRoster = z.infer<typeof secaggRosterSchema>;

/** Phase 1 → 2: the hospitals that sent their shares (U2) and the shares they sealed for this hospital. */
export const secaggRelaySchema = z.object({
  type: z.literal('secagg-relay'),
  round: nonNeg,
  attempt: nonNeg,
  members: z.array(hospitalName).max(10_000),
  shares: z.array(sealedShareSchema).max(10_000),
});
export type SecAggRelay = z.infer<typeof secaggRelaySchema>;

/** Phase 2 → 3: the hospitals whose masked updates arrived (U3); the others of U2 dropped out. */
export const secaggUnmaskSchema = z.object({ type: z.literal('secagg-unmask'), round: nonNeg, attempt: nonNeg, survivors: z.array(hospitalName).max(10_000) });
export type SecAggUnmask = z.infer<typeof secaggUnmaskSchema>;
export type Finished = z.infer<typeof finishedSchema>;

export const errorMessageSchema = z.object({
  type: z.literal('error'),
  code: z.enum(ERROR_CODES),
  message: z.string(),
  /** Present when the error concerns a task (round, attempt). */
  round: nonNeg.optional(),
  attempt: nonNeg.optional(),
});
export type ErrorMessage = z.infer<typeof errorMessageSchema>;

export const serverTextSchema = z.discriminatedUnion('type', [
  welcomeSchema,
  statusSchema,
  uploadGrantSchema,
  acceptedSchema,
  roundClosedSchema,
  roundCompleteSchema,
  roundFailedSchema,
  finishedSchema,
  errorMessageSchema,
  secaggRosterSchema,
  secaggRelaySchema,
  secaggUnmaskSchema,
]);
export type ServerTextMessage = z.infer<typeof serverTextSchema>;
export const SERVER_TEXT_TYPES = [
  'welcome',
  'status',
  'upload-grant',
  'accepted',
  'round-closed',
  'round-complete',
  'round-failed',
  'finished',
  'error',
  'secagg-roster',
  'secagg-relay',
  'secagg-unmask',
] as const;

/** Header of the binary `round` frame (payload: the global weights to start from). */
export const roundHeaderSchema = z
  .object({
    type: z.literal('round'),
    round: positive,
    attempt: positive,
    config: roundConfigSchema,
    /**
     * true when the server sends this attempt again to a sampled hospital that reconnected within the
     * reconnect grace: whatever it trained before the connection dropped is lost, it trains the round again
     * (`config.deadlineSeconds` is then the time left to the attempt's deadline). Absent otherwise.
     */
    resumed: z.literal(true).optional(),
  })
  .superRefine((h, ctx) => {
    if (h.config.round !== h.round) ctx.addIssue({ code: 'custom', path: ['config', 'round'], message: `must equal the header's round (${h.round})` });
    if (h.config.attempt !== h.attempt) ctx.addIssue({ code: 'custom', path: ['config', 'attempt'], message: `must equal the header's attempt (${h.attempt})` });
  });
export type RoundHeader = z.infer<typeof roundHeaderSchema>;

/** Header of the binary `global` frame, the answer to `get-global` (payload: the current global weights). */
export const globalHeaderSchema = z.object({
  type: z.literal('global'),
  /** Rounds completed; the weights are the result of that round (0: the initial weights). */
  round: nonNeg,
});
export type GlobalHeader = z.infer<typeof globalHeaderSchema>;

export type ServerBinaryHeader = RoundHeader | GlobalHeader;
export const SERVER_BINARY_TYPES = ['round', 'global'] as const;
