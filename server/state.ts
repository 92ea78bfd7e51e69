import { mkdirSync } from 'node:fs';
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError, decodeCheckpoint, encodeCheckpoint, type CheckpointMeta, type FederationState } from '../shared/checkpoint.ts';
import { WeightsCodecError } from '../shared/codec/weightsCodec.ts';
import type { GanConfig } from '../shared/config/ganConfig.ts';
import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import type { WeightSet } from '../shared/weights.ts';
import { writeFileAtomic } from './atomicFile.ts';
import { serverCrc32 } from './nativeCrc32.ts';

/**
 * Persistence of the federation: after every completed round, one checkpoint file holding the global
 * weights AND the round state + history, written atomically (temp file, fsync, rename, fsync dir).
 *
 * A checkpoint is the project's one checkpoint format (shared/checkpoint.ts): a weights-codec file whose
 * `meta` holds the configured GAN config, the round, the batch-norm policy and the federation state, so
 * the codec's CRC-32 covers all of it and `npm run evaluate` reads it as it is. A torn or bit-flipped file
 * is detected, reported and skipped. Version-1 files (written before the config was recorded) are still
 * resumed from, with the configured model and policy standing in for what they lack.
 * Files: STATE_DIR/checkpoints/round-000042.fgw; the newest K are kept, and besides them the rounds a write
 * names in `keep` (the round machine names the best-quality model's round: see shared/fed/qualitySchedule.ts).
 */

// The state types live with the format; re-exported for the server's modules.
export type { FederationState, HistoryEntry } from '../shared/checkpoint.ts';

export interface Checkpoint {
  state: FederationState;
  weights: WeightSet;
  /** The encoded weights file (reused to serve the global model without re-encoding). */
  bytes: Uint8Array;
  file: string;
  meta: CheckpointMeta;
  /** The layout version the file was written in (1: from before the config was recorded). */
  fileVersion: number;
}

const FILE_RE = /^round-(\d{6,})\.fgw$/;

export interface CorruptCheckpoint {
  file: string;
  reason: string;
}

export interface CheckpointStoreOptions {
  stateDir: string;
  /** Checkpoints kept (the newest). */
  keep: number;
  /** The configured model: recorded in every checkpoint, and assumed for version-1 files that lack it. */
  model: GanConfig;
  /** The federation's batch-norm policy, recorded likewise. */
  batchNorm: BatchNormPolicy;
  onCorrupt?: (c: CorruptCheckpoint) => void;
}

export class CheckpointStore {
  readonly dir: string;
  readonly model: GanConfig;
  readonly batchNorm: BatchNormPolicy;
  private readonly keep: number;
  private readonly onCorrupt: (c: CorruptCheckpoint) => void;

  constructor(opts: CheckpointStoreOptions) {
    this.dir = join(opts.stateDir, 'checkpoints');
    this.keep = opts.keep;
    this.model = opts.model;
    this.batchNorm = opts.batchNorm;
    this.onCorrupt = opts.onCorrupt ?? (() => {});
    mkdirSync(this.dir, { recursive: true });
  }

  static fileName(round: number): string {
    return `round-${String(round).padStart(6, '0')}.fgw`;
  }

  /** Checkpoint files, newest round first. */
  async list(): Promise<{ round: number; file: string }[]> {
    const names = await readdir(this.dir);
    return names
      .map((n) => ({ m: FILE_RE.exec(n), n }))
      .filter((x) => x.m)
      .map((x) => ({ round: Number(x.m![1]), file: join(this.dir, x.n) }))
      .sort((a, b) => b.round - a.round);
  }

  /** Encode a checkpoint of `state.round`: the weights with the configured model, the policy and the state in its meta. */
  encode(state: FederationState, weights: WeightSet): Uint8Array {
    return encodeCheckpoint(weights, { config: this.model, round: state.round, batchNorm: this.batchNorm, source: 'server', state }, { crc32: serverCrc32 });
  }

  /** Encode and atomically write the checkpoint of `state.round`; see write(). */
  async save(state: FederationState, weights: WeightSet): Promise<string> {
    return this.write(state.round, this.encode(state, weights));
  }

  /**
   * Atomically write encoded checkpoint bytes (store.encode) of `round`, then delete all but the newest
   * `keep` (the store's option) and the rounds in `opts.keep` (the best-quality model), which are never deleted.
   */
  async write(round: number, bytes: Uint8Array, opts: { keep?: readonly number[] } = {}): Promise<string> {
    const file = join(this.dir, CheckpointStore.fileName(round));
    await writeFileAtomic(file, bytes);
    const protectedRounds = new Set(opts.keep ?? []);
    const all = await this.list();
    for (const old of all.slice(this.keep)) if (!protectedRounds.has(old.round)) await unlink(old.file).catch(() => {});
    return file;
  }

  /**
   * The newest valid checkpoint, or null when there is none. Corrupt files are reported through
   * `onCorrupt` and skipped. A checkpoint of another architecture, of a newer format version or with a GAN
   * config this build cannot parse is an error (it is not corrupt: the configured model or the build
   * changed), since silently starting over would later delete the old history.
   */
  async loadLatest(expectedFingerprint: string): Promise<Checkpoint | null> {
    for (const { round, file } of await this.list()) {
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await readFile(file));
      } catch (e) {
        this.onCorrupt({ file, reason: `unreadable: ${(e as Error).message}` });
        continue;
      }
      let decoded;
      try {
        decoded = decodeCheckpoint(bytes, {
          requireFinite: true,
          copy: false,
          crc32: serverCrc32,
          expectedRound: round,
          legacy: { config: this.model, batchNorm: this.batchNorm },
          name: file,
        });
      } catch (e) {
        // Intact bytes this build cannot read (a newer version, a config it cannot parse) are not corrupt:
        // skipping them would start over and later delete the history they hold.
        if (e instanceof CheckpointError && (e.code === 'unsupported-version' || e.code === 'bad-config')) {
          throw new Error(`${e.message}; move ${this.dir} away or use another STATE_DIR to start over`);
        }
        const reason = e instanceof WeightsCodecError || e instanceof CheckpointError ? `${e.code}: ${e.message}` : String(e);
        this.onCorrupt({ file, reason });
        continue;
      }
      if (!decoded.meta.state) {
        this.onCorrupt({ file, reason: `no federation state in its meta (a checkpoint written by ${decoded.meta.source}, not by the server)` });
        continue;
      }
      if (decoded.weights.fingerprint !== expectedFingerprint) {
        throw new Error(
          `checkpoint ${file} holds weights of another model (fingerprint ${decoded.weights.fingerprint}, the configured model has ${expectedFingerprint}); ` +
            `move ${this.dir} away or use another STATE_DIR to start over`,
        );
      }
      return { state: decoded.meta.state, weights: decoded.weights, bytes, file, meta: decoded.meta, fileVersion: decoded.fileVersion };
    }
    return null;
  }
}
