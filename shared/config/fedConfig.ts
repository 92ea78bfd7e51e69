import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, parseWith } from './configError.ts';
import type { BatchNormPolicy } from '../fed/batchNormPolicy.ts';
import { dpRefusal, parseGanConfig, withRecipeDefaults, type GanConfig } from './ganConfig.ts';
import { secureAggregationProblems, secureAggregationSchema, SECURE_AGGREGATION_DEFAULTS } from '../secagg/config.ts';

/**
 * The federation configuration: how rounds run (Flower-like), how updates are aggregated and checked,
 * and which model the hospitals train. One typed source, validated at the edge (FED_CONFIG file, tests,
 * the simulation), with errors naming each bad field (`minFit: must be at most minAvailable (2)`).
 *
 * Defaults: two hospitals, every hospital trains every round, a 64×64 ACGAN, and a federation sized in
 * generator steps: `rounds` × `localSteps` = 100 × 200 = 20,000 generator steps along the global model's
 * trajectory, the order of steps a GAN on a few thousand tiles needs (docs/recipe.md, "How long a
 * federation trains"). A 200-step round of the default model takes about 4 s on an H200 (docs/performance.md)
 * and proportionally longer on slower GPUs (the web app measures each hospital's speed); the deadline (900 s)
 * allows 4.5 s a step. The server's demo (no FED_CONFIG, no TOKENS_FILE) runs a shorter, explicit config
 * (server/config.ts DEMO_FED_CONFIG).
 */
export const AGGREGATOR_TYPES = ['fedavg', 'median', 'trimmed-mean'] as const;
export type AggregatorType = (typeof AGGREGATOR_TYPES)[number];
/** The policies of shared/fed/batchNormPolicy.ts (checked against its type). */
const BATCH_NORM_CHOICES = ['average', 'local'] as const satisfies readonly BatchNormPolicy[];

const count = z.number().int().min(1, 'must be at least 1');

/** Default rounds × generator steps per round: 20,000 generator steps along the federation (see above). */
export const DEFAULT_ROUNDS = 100;
export const DEFAULT_LOCAL_STEPS = 200;

const aggregatorSchema = z
  .object({
    type: z.enum(AGGREGATOR_TYPES).default('fedavg'),
    /** Trimmed mean: the fraction trimmed at EACH end, coordinate-wise; 0 ≤ β < 0.5. */
    beta: z.number().min(0, 'must be at least 0').lt(0.5, 'must be below 0.5').default(0.1),
  })
  .strict();

/** The default of `examples.medianFactor` (see examplesSchema). */
export const DEFAULT_EXAMPLES_MEDIAN_FACTOR = 4;
const MEDIAN_FACTOR_MESSAGE = 'must be a number of at least 1, or null (no median cap)';

const examplesSchema = z
  .object({
    min: z.number().int().min(1, 'must be at least 1').default(1),
    max: z.number().int().min(1, 'must be at least 1').default(10_000_000),
    /**
     * From the second completed round on, a hospital's example count is clipped to ⌊medianFactor × m⌋, m the
     * lower median of the counts counted in the last completed round with at least two updates
     * (shared/fed/strategy.ts medianExampleCap, examplesMedianBase). null: no such cap (only `max` and the
     * tokens-file `maxExamples` apply).
     */
    medianFactor: z
      .union([z.number().min(1, MEDIAN_FACTOR_MESSAGE).max(1_000_000, 'must be at most 1000000 (or null: no median cap)'), z.null()], { error: MEDIAN_FACTOR_MESSAGE })
      .default(DEFAULT_EXAMPLES_MEDIAN_FACTOR),
  })
  .strict();

const limitsSchema = z
  .object({
    /**
     * Open WebSocket connections, authenticated or not. Unauthenticated ones are closed to make room (see
     * maxUnauthenticated); a new connection is refused with 1013 only while this many hospitals are
     * connected. Keep it at least the number of hospitals (the server warns at start when it is not).
     */
    maxConnections: z.number().int().min(1).max(100_000).default(256),
    /**
     * Connections that have not yet sent a valid hello, in all. When full, the oldest of the address holding
     * the most is closed with 1013 to make room: idle sockets from other addresses cannot lock hospitals out.
     */
    maxUnauthenticated: z.number().int().min(1).max(100_000).default(64),
    /** Connections that have not yet sent a valid hello, per source address (IPv6: per /64); over it, that address's oldest is closed. */
    maxUnauthenticatedPerAddress: z.number().int().min(1).max(100_000).default(8),
    /** Server ping interval; a peer that has not answered the previous ping by the next one is dropped. */
    heartbeatSeconds: z.number().positive().max(3600).default(15),
    /** A connection must send a valid `hello` within this time. */
    helloTimeoutSeconds: z.number().positive().max(3600).default(10),
    /** Failed sign-ins (unknown tokens) a source address may make before it has to wait. */
    authFailuresBeforeBackoff: z.number().int().min(0).max(1000).default(5),
    /** The wait after the first failed sign-in beyond those; each further failure doubles it… */
    authBackoffSeconds: z.number().positive().max(3600).default(1),
    /** …up to this. While an address waits, its connections are closed at once with 1013. */
    authBackoffMaxSeconds: z.number().positive().max(86_400).default(60),
    /** Bytes allowed on top of the encoded model size for one frame (header, codec metadata). */
    frameMarginBytes: z.number().int().min(1024).max(1 << 30).default(1 << 20),
    /** Updates transferred at once (upload slots). Bounds server memory to O(slots × model). */
    maxConcurrentUploads: z.number().int().min(1).max(64).default(1),
    /** A granted upload slot is revoked (the update refused as late) if no update arrives within this time. */
    uploadGrantSeconds: z.number().positive().max(3600).default(120),
    /**
     * A sampled hospital whose connection drops keeps its place in the round attempt this long (never past
     * the deadline); reconnecting in time it gets the round again (`resumed`). 0: a drop ends its part at once.
     */
    reconnectGraceSeconds: z.number().min(0).max(3600).default(60),
  })
  .strict();

/**
 * Backoff of the server's retries (server/roundMachine.ts): a round attempt that got fewer than
 * minCompletion updates, and a checkpoint write that failed, are retried after
 * min(initialDelaySeconds · 2^(k−1), maxDelaySeconds) for the k-th consecutive failure. After
 * `maxFailedAttempts` consecutive failed attempts of a round the server stops retrying it until a
 * hospital joins. Checkpoint writes are retried without a limit (a completed round is never dropped).
 */
/** The feature networks the quality probe can use (shared/fed/qualitySchedule.ts loads them by name). */
export const QUALITY_FEATURES = ['mobilenet-v2', 'tiny'] as const;
export type QualityFeatures = (typeof QUALITY_FEATURES)[number];

/**
 * Quality tracked during training (docs/quality.md, shared/fed/qualitySchedule.ts): every `everyRounds`
 * rounds each sampled hospital scores the global model it received, a fixed-sample KID on `features`
 * of `perClass` synthetic tiles per class (latents from `seed`) against a fixed subset of its own tiles
 * (`perClass` per class at most), and reports it with its update; the server records the example-weighted
 * mean in the round history and keeps the best-quality checkpoint. 0 turns it off.
 */
const qualitySchema = z
  .object({
    everyRounds: z.number().int().min(0, 'must be at least 0 (0: off)').max(100_000).default(5),
    perClass: z.number().int().min(2, 'must be at least 2').max(1000).default(32),
    features: z.enum(QUALITY_FEATURES).default('mobilenet-v2'),
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(4242),
    /** KID subsets (the figure is for a curve, not a report). */
    subsets: z.number().int().min(1).max(1000).default(20),
  })
  .strict();

const retrySchema = z
  .object({
    initialDelaySeconds: z.number().positive().max(3600).default(2),
    maxDelaySeconds: z.number().positive().max(24 * 3600).default(60),
    maxFailedAttempts: z.number().int().min(1, 'must be at least 1').max(1_000_000).default(8),
  })
  .strict();

/**
 * Example-level differential privacy at each hospital (docs/privacy.md, docs/configuration.md): DP-SGD on
 * every discriminator step that touches real tiles (shared/privacy/dpSgd.ts) with Poisson-sampled batches,
 * accounted by shared/privacy/accountant.ts. These are the federation's settings; each hospital may set a
 * stricter budget of its own before joining (shared/privacy/budget.ts: more noise, a smaller ε, never less).
 * Exactly one of `noiseMultiplier` (σ, fixed) and `targetEpsilon` (ε over all the planned rounds; each
 * hospital solves for its σ) when enabled.
 */
const NOISE_OR_EPSILON = 'set one of privacy.dp.noiseMultiplier (σ, the noise) or privacy.dp.targetEpsilon (the ε to reach over the planned rounds)';
const dpSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** σ: the Gaussian noise's standard deviation on the sum of clipped per-tile gradients, as a multiple of clipNorm. */
    noiseMultiplier: z.number().positive('must be above 0 (σ = 0 adds no noise: no privacy)').max(1000, 'must be at most 1000').optional(),
    /** ε the hospitals spend at most over all the planned rounds (at δ); each hospital derives its σ from it. */
    targetEpsilon: z.number().positive('must be above 0').max(1000, 'must be at most 1000').optional(),
    /** C: each tile's discriminator gradient is scaled down to at most this L2 norm. */
    clipNorm: z.number().positive('must be above 0').max(1e6).default(1),
    /** δ of the (ε, δ) guarantee; null: 1/(10·N) at each hospital, N its number of training tiles. */
    delta: z.number().gt(0, 'must be above 0').max(1e-2, 'must be at most 0.01 (δ is a probability of failure: keep it well below 1/N)').nullable().default(null),
  })
  .strict();
export type DpConfig = z.output<typeof dpSchema>;
export const DP_DEFAULTS: DpConfig = dpSchema.parse({});

const privacySchema = z
  .object({
    dp: dpSchema.default(DP_DEFAULTS),
    /** Secure aggregation (shared/secagg/config.ts, its schema and its refusals). */
    secureAggregation: secureAggregationSchema.default(SECURE_AGGREGATION_DEFAULTS),
  })
  .strict();

export const fedConfigSchema = z
  .object({
    /** Rounds to run in total; then the server stays up serving the final model and status. */
    rounds: count.max(100_000).default(DEFAULT_ROUNDS),
    /** Fraction C of available hospitals sampled per round. */
    fraction: z.number().gt(0, 'must be above 0').max(1, 'must be at most 1').default(1),
    /** At least this many hospitals are sampled (Flower's min_fit_clients). */
    minFit: count.default(2),
    /** A round starts only when this many authenticated hospitals are connected. */
    minAvailable: count.default(2),
    /** A round is aggregated only if at least this many updates arrived; otherwise it is repeated. */
    minCompletion: count.default(2),
    roundDeadlineSeconds: z.number().positive().max(7 * 24 * 3600).default(900),
    aggregator: aggregatorSchema.default({ type: 'fedavg', beta: 0.1 }),
    /** `average`: batch-norm weights are federated like the rest. `local` (FedBN): each hospital keeps its own. */
    batchNorm: z.enum(BATCH_NORM_CHOICES).default('average'),
    /**
     * Bound on ‖update − global‖₂ (batch-norm tensors left out under FedBN); larger updates are refused
     * (reason `norm`). 'auto' (default): derived from the model and the round's training budget, per round
     * (shared/fed/strategy.ts autoMaxUpdateNorm); a number: that bound; null: no bound.
     */
    maxUpdateNorm: z
      .union([z.literal('auto'), z.number().positive().finite(), z.null()], { error: 'must be "auto", a positive number or null (no bound)' })
      .default('auto'),
    /**
     * Allowed example count per update (it is the FedAvg weight); a count outside min…max is refused. A
     * larger count than the hospital's cap is clipped to it (counted at the cap): its tokens-file
     * `maxExamples` when it has one, and from the second round on ⌊medianFactor × the median count of the
     * last completed round with at least two updates⌋; the smaller wins.
     */
    examples: examplesSchema.default({ min: 1, max: 10_000_000, medianFactor: DEFAULT_EXAMPLES_MEDIAN_FACTOR }),
    /**
     * Generator steps each sampled hospital trains per round, whatever its number of tiles (more steps than
     * one pass over its tiles reshuffle and go on; shared/gan/localTraining.ts). One step is one mini-batch
     * and one generator update; for WGAN-GP it includes `nCritic` critic updates.
     */
    localSteps: count.max(1_000_000).default(DEFAULT_LOCAL_STEPS),
    /** Seed of client sampling (per round, reproducible). */
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(7),
    /** Checkpoints kept in STATE_DIR (newest first); older ones are deleted. */
    keepCheckpoints: count.max(1000).default(5),
    limits: limitsSchema.default({
      maxConnections: 256,
      maxUnauthenticated: 64,
      maxUnauthenticatedPerAddress: 8,
      heartbeatSeconds: 15,
      helloTimeoutSeconds: 10,
      authFailuresBeforeBackoff: 5,
      authBackoffSeconds: 1,
      authBackoffMaxSeconds: 60,
      frameMarginBytes: 1 << 20,
      maxConcurrentUploads: 1,
      uploadGrantSeconds: 120,
      reconnectGraceSeconds: 60,
    }),
    /** Backoff and limit of repeated round attempts and of checkpoint-write retries (see retrySchema). */
    retry: retrySchema.default({ initialDelaySeconds: 2, maxDelaySeconds: 60, maxFailedAttempts: 8 }),
    /** The fixed-sample quality probe the hospitals report every few rounds (see qualitySchema). */
    quality: qualitySchema.default({ everyRounds: 5, perClass: 32, features: 'mobilenet-v2', seed: 4242, subsets: 20 }),
    /** Differential privacy at the hospitals and secure aggregation (see dpSchema, shared/secagg/config.ts). */
    privacy: privacySchema.default({ dp: DP_DEFAULTS, secureAggregation: SECURE_AGGREGATION_DEFAULTS }),
    /** The GAN every hospital trains (see ganConfig.ts); validated by parseGanConfig. */
    model: z.unknown().optional(),
  })
  .strict();

export type FedConfigInput = Omit<z.input<typeof fedConfigSchema>, 'model'> & { model?: unknown };
export type FedConfig = Omit<z.output<typeof fedConfigSchema>, 'model'> & { model: GanConfig };

/** Validate and complete a federation config; throws ConfigError naming every bad field. */
export function parseFedConfig(input: unknown = {}, source = 'federation config'): FedConfig {
  const problems: { path: string; message: string }[] = [];
  let fields = input ?? {};
  // The budget used to be whole epochs (protocol 1); an old config gets told what replaced it.
  if (fields && typeof fields === 'object' && 'localEpochs' in fields) {
    const { localEpochs: _, ...rest } = fields as Record<string, unknown>;
    fields = rest;
    problems.push({ path: 'localEpochs', message: `no longer a setting: a round is sized in generator steps; set localSteps instead (default ${DEFAULT_LOCAL_STEPS})` });
  }
  let base: z.output<typeof fedConfigSchema> | undefined;
  try {
    base = parseWith(fedConfigSchema, fields, source);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems.push(...e.problems);
  }
  let model: GanConfig | undefined;
  const modelInput = input && typeof input === 'object' ? (input as { model?: unknown }).model : undefined;
  try {
    model = parseGanConfig(withRecipeDefaults(modelInput ?? {}), source, 'model');
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems.push(...e.problems);
  }
  if (base) {
    const b = base;
    if (b.minFit > b.minAvailable) problems.push({ path: 'minFit', message: `must be at most minAvailable (${b.minAvailable})` });
    if (b.minCompletion > b.minFit) problems.push({ path: 'minCompletion', message: `must be at most minFit (${b.minFit})` });
    if (b.examples.min > b.examples.max) problems.push({ path: 'examples.min', message: `must be at most examples.max (${b.examples.max})` });
    if (b.retry.initialDelaySeconds > b.retry.maxDelaySeconds) {
      problems.push({ path: 'retry.initialDelaySeconds', message: `must be at most retry.maxDelaySeconds (${b.retry.maxDelaySeconds})` });
    }
  }
  if (base) problems.push(...privacyProblems(base, model));
  if (problems.length || !base || !model) throw new ConfigError(source, problems);
  return { ...base, model };
}

/** The combinations the `privacy` section refuses, each with its reason (docs/configuration.md, "Privacy"). */
function privacyProblems(base: z.output<typeof fedConfigSchema>, model: GanConfig | undefined): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const dp = base.privacy.dp;
  if (dp.enabled) {
    if (dp.noiseMultiplier === undefined && dp.targetEpsilon === undefined) out.push({ path: 'privacy.dp', message: `DP is enabled but has no budget: ${NOISE_OR_EPSILON}` });
    if (dp.noiseMultiplier !== undefined && dp.targetEpsilon !== undefined) out.push({ path: 'privacy.dp', message: `${NOISE_OR_EPSILON}, not both (with a target ε each hospital derives σ)` });
    const refusal = model ? dpRefusal(model) : null;
    if (refusal) out.push({ path: `model.${refusal.field}`, message: refusal.message });
    if (base.quality.everyRounds > 0) {
      out.push({
        path: 'quality.everyRounds',
        message: 'must be 0 with privacy.dp: the quality probe scores the model against the hospital’s own tiles and sends the figure without noise, outside the ε the hospital is told (each hospital can still run the quality check in its web app, where the result stays)',
      });
    }
  }
  out.push(...secureAggregationProblems(base));
  return out;
}

/** Parse the text of a FED_CONFIG file: JSON or YAML (YAML is a superset of JSON). */
export function parseFedConfigText(text: string, source: string): FedConfig {
  let raw: unknown;
  try {
    raw = text.trim() === '' ? {} : parseYaml(text);
  } catch (e) {
    throw new ConfigError(source, [{ path: '', message: `not valid JSON or YAML: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}` }]);
  }
  return parseFedConfig(raw ?? {}, source);
}
