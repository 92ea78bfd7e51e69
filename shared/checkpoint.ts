/**
 * The one checkpoint format of the project: written by the server (every completed round), the in-process
 * simulation and the remote hospitals (`simulate --server`), read by the server (resume) and the evaluator.
 *
 * A checkpoint is one weights-codec file (shared/codec/weightsCodec.ts: the GAN's weights, the CRC-32
 * covering everything) whose `meta` always holds
 *
 *     kind       "fedgan-checkpoint"
 *     version    CHECKPOINT_VERSION (2)
 *     config     the GanConfig that built the weights (validated with parseGanConfig on decode)
 *     round      federation rounds completed (0 = the initial model)
 *     batchNorm  the federation's batch-norm policy, "average" | "local" (FedBN). Under "local" the
 *                global model's batch-norm tensors are those of round 0 by design (design D1): generate
 *                from it only after recalibrating the generator's batch-norm statistics
 *                (shared/gan/recalibrateBatchNorm.ts)
 *     source     who wrote it: "server", "simulation", or the server URL the remote hospitals joined
 *     createdAt  ISO time
 *     state      (server checkpoints) the federation state: rounds completed and the history
 *
 * Older files: decodeCheckpoint reads two earlier layouts.
 * - The simulation's and the remote hospitals' files before version 2 ({kind, config, round, createdAt,
 *   source}, no version, no policy) are read as version 1 with batchNorm "average" (the old simulation
 *   averaged batch-norm tensors, so their statistics were trained).
 * - The server's version-1 files ({kind, version: 1, state, savedAt}) do not record the GAN config. They
 *   are read only when the caller supplies the config and policy (`legacy`): the server does, from its
 *   configured model; the evaluator does with `--fed-config` (the server's FED_CONFIG file). Without it,
 *   decoding fails with code 'needs-config' and a message saying so.
 */
import { decodeWeights, encodeWeights, replaceMeta, type DecodeWeightsOptions, type EncodeWeightsOptions } from './codec/weightsCodec.ts';
import { ConfigError } from './config/configError.ts';
import { parseGanConfig, type GanConfig } from './config/ganConfig.ts';
import { isBatchNormPolicy, type BatchNormPolicy } from './fed/batchNormPolicy.ts';
import type { RoundQuality } from './protocol/messages.ts';
import type { WeightSet } from './weights.ts';

export const CHECKPOINT_KIND = 'fedgan-checkpoint';
/** 2: config, round, batchNorm and source always present (1: server files without config, simulation files without version). */
export const CHECKPOINT_VERSION = 2;

export interface HistoryEntry {
  /** 1-based round number. */
  round: number;
  /** Updates aggregated. */
  participants: number;
  /** Names of the hospitals whose updates were aggregated. */
  hospitals: string[];
  /** Sum of the example counts of the aggregated updates. */
  examples: number;
  /**
   * The lower median of their counted example counts: it caps the next round's counts (FedConfig
   * examples.medianFactor, shared/fed/strategy.ts medianExampleCap). Absent in entries written before it
   * was recorded: the round after such an entry has no median cap.
   */
  examplesMedian?: number;
  /** Example-weighted means of the losses the hospitals reported. */
  dLoss: number;
  gLoss: number;
  /** Wall-clock seconds from sending the round to the aggregate (the checkpoint write excluded). */
  seconds: number;
  /** Attempts it took (1 unless rounds were repeated for lack of updates). */
  attempts: number;
  /** ISO time the round completed. */
  completedAt: string;
  /**
   * The quality probes its hospitals reported (when the round asked for them, fed.quality): the
   * example-weighted mean KID of the global model of round `quality.round` = this entry's round − 1, the
   * model they received (shared/fed/qualitySchedule.ts).
   */
  quality?: RoundQuality;
}

export interface FederationState {
  /** Rounds completed. */
  round: number;
  history: HistoryEntry[];
}

/** What a checkpoint's meta holds (as decodeCheckpoint returns it, older layouts normalised to this shape). */
export interface CheckpointMeta {
  kind: typeof CHECKPOINT_KIND;
  version: number;
  config: GanConfig;
  round: number;
  batchNorm: BatchNormPolicy;
  source: string;
  createdAt: string;
  state?: FederationState;
}

export interface CheckpointInput {
  config: GanConfig;
  round: number;
  batchNorm: BatchNormPolicy;
  source: string;
  /** Default: now. */
  createdAt?: string;
  /** The federation state (server checkpoints); its round must equal `round`. */
  state?: FederationState;
}

export type CheckpointErrorCode = 'not-checkpoint' | 'unsupported-version' | 'needs-config' | 'bad-config' | 'bad-meta' | 'round-mismatch';

/** A file that decodes as weights but not as a checkpoint (codec failures stay WeightsCodecError). */
export class CheckpointError extends Error {
  constructor(
    readonly code: CheckpointErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CheckpointError';
  }
}

export interface DecodeCheckpointOptions extends DecodeWeightsOptions {
  /** The round the file must hold (e.g. from its name); a different one is error 'round-mismatch'. */
  expectedRound?: number;
  /** Config and policy for version-1 server checkpoints, which do not record them (see the file comment). */
  legacy?: { config: GanConfig; batchNorm: BatchNormPolicy };
  /** How the file is named in error messages (default "checkpoint"). */
  name?: string;
}

export interface DecodedCheckpoint {
  weights: WeightSet;
  meta: CheckpointMeta;
  /** The layout version the file was written in (1 for both older layouts). */
  fileVersion: number;
}

/** Encode weights as a checkpoint. Throws CheckpointError when the meta is inconsistent. */
export function encodeCheckpoint(weights: WeightSet, input: CheckpointInput, opts: EncodeWeightsOptions = {}): Uint8Array {
  const problem = checkRound(input.round) ?? checkPolicy(input.batchNorm) ?? (input.state ? checkState(input.state, input.round) : null);
  if (problem) throw new CheckpointError(problem.code, `cannot write checkpoint: ${problem.message}`);
  if (typeof input.source !== 'string' || !input.source) throw new CheckpointError('bad-meta', 'cannot write checkpoint: source must be a non-empty string');
  let config: GanConfig;
  try {
    config = parseGanConfig(input.config, 'GAN config of the checkpoint');
  } catch (e) {
    throw new CheckpointError('bad-config', `cannot write checkpoint: ${(e as Error).message}`);
  }
  const meta: CheckpointMeta = {
    kind: CHECKPOINT_KIND,
    version: CHECKPOINT_VERSION,
    config,
    round: input.round,
    batchNorm: input.batchNorm,
    source: input.source,
    createdAt: input.createdAt ?? new Date().toISOString(),
    ...(input.state ? { state: input.state } : {}),
  };
  return encodeWeights(weights, meta as unknown as Record<string, unknown>, opts);
}

/**
 * The meta fields a hospital receives with the global weights (`round` and `global` frames): what the model
 * is, not who trained it. The federation state (the history, with every hospital's name, growing every
 * round) stays in the server's checkpoint files and is never sent to hospitals.
 */
export const HOSPITAL_META_FIELDS = ['kind', 'version', 'config', 'round', 'batchNorm', 'source', 'createdAt'] as const;

/**
 * A server checkpoint file as sent to hospitals: the same weights and the same checkpoint, its meta reduced
 * to HOSPITAL_META_FIELDS. Returned as parts (header, a view of the file's weights, checksum) that make one
 * weights file when concatenated, so the model is not copied (shared/codec/weightsCodec.ts replaceMeta).
 */
export function checkpointForHospitals(bytes: Uint8Array, opts: EncodeWeightsOptions = {}): Uint8Array[] {
  return replaceMeta(
    bytes,
    (meta) => Object.fromEntries(HOSPITAL_META_FIELDS.filter((k) => meta[k] !== undefined).map((k) => [k, meta[k]])),
    opts,
  );
}

/**
 * Decode and validate a checkpoint. Codec failures (truncated, checksum, non-finite with requireFinite…)
 * throw WeightsCodecError; a valid weights file that is not a valid checkpoint throws CheckpointError
 * naming what is wrong.
 */
export function decodeCheckpoint(bytes: Uint8Array, opts: DecodeCheckpointOptions = {}): DecodedCheckpoint {
  const { expectedRound, legacy, name = 'checkpoint', ...codecOpts } = opts;
  const decoded = decodeWeights(bytes, codecOpts);
  const meta = readMeta(decoded.meta, name, legacy);
  if (expectedRound !== undefined && meta.meta.round !== expectedRound) {
    throw new CheckpointError('round-mismatch', `${name} should hold round ${expectedRound} but its meta says round ${meta.meta.round}`);
  }
  return { weights: decoded.weights, ...meta };
}

function readMeta(raw: Record<string, unknown>, name: string, legacy: DecodeCheckpointOptions['legacy']): { meta: CheckpointMeta; fileVersion: number } {
  const fail = (code: CheckpointErrorCode, message: string): never => {
    throw new CheckpointError(code, `${name}: ${message}`);
  };
  if (raw.kind !== CHECKPOINT_KIND) fail('not-checkpoint', `not a fedgan checkpoint (meta.kind is ${JSON.stringify(raw.kind)}, expected "${CHECKPOINT_KIND}")`);
  const version = raw.version;
  if (version !== undefined && version !== 1 && version !== CHECKPOINT_VERSION) {
    fail('unsupported-version', `unsupported checkpoint version ${JSON.stringify(version)} (this build reads versions 1 and ${CHECKPOINT_VERSION}; a newer build wrote it?)`);
  }
  const state = raw.state === undefined ? undefined : (raw.state as FederationState);
  if (state !== undefined) {
    const bad = checkStateShape(state);
    if (bad) fail('bad-meta', `meta.state ${bad}`);
  }

  // The server's version 1: state but no config; only with the caller's config.
  if (version === 1) {
    if (state === undefined) fail('bad-meta', 'version-1 checkpoint without meta.state');
    if (!legacy) {
      fail(
        'needs-config',
        'a version-1 server checkpoint, which does not record the GAN config (meta.config); pass the server\'s FED_CONFIG file ' +
          '(npm run evaluate -- --fed-config FILE) so that the model and the batch-norm policy are taken from it',
      );
    }
    const problem = checkPolicy(legacy!.batchNorm) ?? checkState(state!, state!.round);
    if (problem) fail(problem.code, problem.message);
    return {
      fileVersion: 1,
      meta: {
        kind: CHECKPOINT_KIND,
        version: 1,
        config: parseConfig(legacy!.config, name, 'the supplied config'),
        round: state!.round,
        batchNorm: legacy!.batchNorm,
        source: 'server',
        createdAt: typeof raw.savedAt === 'string' ? raw.savedAt : '',
        state,
      },
    };
  }

  if (raw.config === undefined) fail('bad-config', 'meta.config (the GAN config) is missing');
  const config = parseConfig(raw.config, name, 'meta.config');
  const round = raw.round;
  const roundProblem = checkRound(round);
  if (roundProblem) fail('bad-meta', `meta.round ${roundProblem.message}`);
  const source = typeof raw.source === 'string' ? raw.source : undefined;
  const createdAt = typeof raw.createdAt === 'string' ? raw.createdAt : undefined;

  // The simulation's layout before version 2: no version, no policy.
  if (version === undefined) {
    return { fileVersion: 1, meta: { kind: CHECKPOINT_KIND, version: 1, config, round: round as number, batchNorm: 'average', source: source ?? 'unknown', createdAt: createdAt ?? '' } };
  }

  if (!isBatchNormPolicy(raw.batchNorm)) fail('bad-meta', `meta.batchNorm must be "average" or "local", got ${JSON.stringify(raw.batchNorm)}`);
  if (source === undefined || !source) fail('bad-meta', `meta.source must be a non-empty string, got ${JSON.stringify(raw.source)}`);
  if (createdAt === undefined) fail('bad-meta', `meta.createdAt must be a string, got ${JSON.stringify(raw.createdAt)}`);
  if (state !== undefined) {
    const problem = checkState(state, round as number);
    if (problem) fail(problem.code, problem.message);
  }
  return {
    fileVersion: CHECKPOINT_VERSION,
    meta: { kind: CHECKPOINT_KIND, version: CHECKPOINT_VERSION, config, round: round as number, batchNorm: raw.batchNorm as BatchNormPolicy, source: source!, createdAt: createdAt!, ...(state ? { state } : {}) },
  };
}

function parseConfig(input: unknown, name: string, what: string): GanConfig {
  try {
    return parseGanConfig(input, `GAN config (${what}) of ${name}`);
  } catch (e) {
    // ConfigError names each bad field, e.g. "imageSize: must be a multiple of 8".
    throw new CheckpointError('bad-config', e instanceof ConfigError || e instanceof Error ? e.message : String(e));
  }
}

type Problem = { code: CheckpointErrorCode; message: string } | null;

function checkRound(round: unknown): Problem {
  return Number.isSafeInteger(round) && (round as number) >= 0 ? null : { code: 'bad-meta', message: `round must be an integer ≥ 0, got ${JSON.stringify(round)}` };
}

function checkPolicy(policy: unknown): Problem {
  return isBatchNormPolicy(policy) ? null : { code: 'bad-meta', message: `batchNorm must be "average" or "local", got ${JSON.stringify(policy)}` };
}

function checkStateShape(s: unknown): string | null {
  if (!s || typeof s !== 'object') return 'must be an object';
  const st = s as { round?: unknown; history?: unknown };
  if (!Number.isSafeInteger(st.round) || (st.round as number) < 0) return `round must be an integer ≥ 0, got ${JSON.stringify(st.round)}`;
  if (!Array.isArray(st.history)) return 'history must be an array';
  return null;
}

function checkState(s: FederationState, round: number): Problem {
  const shape = checkStateShape(s);
  if (shape) return { code: 'bad-meta', message: `state ${shape}` };
  if (s.round !== round) return { code: 'round-mismatch', message: `the federation state says round ${s.round} but the checkpoint's round is ${round}` };
  if (s.history.length !== s.round) return { code: 'bad-meta', message: `the federation state's history has ${s.history.length} entries for ${s.round} rounds` };
  return null;
}
