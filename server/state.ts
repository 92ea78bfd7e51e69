import { mkdirSync } from 'node:fs';
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeWeights, encodeWeights, WeightsCodecError } from '../shared/codec/weightsCodec.ts';
import type { WeightSet } from '../shared/weights.ts';
import { writeFileAtomic } from './atomicFile.ts';
import { serverCrc32 } from './nativeCrc32.ts';

/**
 * Persistence of the federation: after every completed round, one checkpoint file holding the global
 * weights AND the round state + history, written atomically (temp file, fsync, rename, fsync dir).
 *
 * A checkpoint is one weights-codec file (shared/codec/weightsCodec.ts) whose `meta` holds the state, so
 * the codec's CRC-32 covers both: a torn or bit-flipped file is detected, reported and skipped.
 * Files: STATE_DIR/checkpoints/round-000042.fgw; the newest K are kept.
 */

export interface HistoryEntry {
  /** 1-based round number. */
  round: number;
  /** Updates aggregated. */
  participants: number;
  /** Names of the hospitals whose updates were aggregated. */
  hospitals: string[];
  /** Sum of the example counts of the aggregated updates. */
  examples: number;
  /** Example-weighted means of the losses the hospitals reported. */
  dLoss: number;
  gLoss: number;
  /** Wall-clock seconds from sending the round to the aggregate (the checkpoint write excluded). */
  seconds: number;
  /** Attempts it took (1 unless rounds were repeated for lack of updates). */
  attempts: number;
  /** ISO time the round completed. */
  completedAt: string;
}

export interface FederationState {
  /** Rounds completed. */
  round: number;
  history: HistoryEntry[];
}

export interface Checkpoint {
  state: FederationState;
  weights: WeightSet;
  /** The encoded weights file (reused to serve the global model without re-encoding). */
  bytes: Uint8Array;
  file: string;
}

const CHECKPOINT_KIND = 'fedgan-checkpoint';
const CHECKPOINT_VERSION = 1;
const FILE_RE = /^round-(\d{6,})\.fgw$/;

export interface CorruptCheckpoint {
  file: string;
  reason: string;
}

export class CheckpointStore {
  readonly dir: string;

  constructor(
    stateDir: string,
    private readonly keep: number,
    private readonly onCorrupt: (c: CorruptCheckpoint) => void = () => {},
  ) {
    this.dir = join(stateDir, 'checkpoints');
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

  /** Encode a checkpoint (the weights file with the state in its meta). */
  static encode(state: FederationState, weights: WeightSet): Uint8Array {
    return encodeWeights(weights, { kind: CHECKPOINT_KIND, version: CHECKPOINT_VERSION, state, savedAt: new Date().toISOString() }, { crc32: serverCrc32 });
  }

  /** Encode and atomically write the checkpoint of `state.round`; see write(). */
  async save(state: FederationState, weights: WeightSet): Promise<string> {
    return this.write(state.round, CheckpointStore.encode(state, weights));
  }

  /** Atomically write encoded checkpoint bytes (CheckpointStore.encode) of `round`, then delete all but the newest `keep`. */
  async write(round: number, bytes: Uint8Array): Promise<string> {
    const file = join(this.dir, CheckpointStore.fileName(round));
    await writeFileAtomic(file, bytes);
    const all = await this.list();
    for (const old of all.slice(this.keep)) await unlink(old.file).catch(() => {});
    return file;
  }

  /**
   * The newest valid checkpoint, or null when there is none. Corrupt files are reported through
   * `onCorrupt` and skipped. A checkpoint of another architecture is an error (it is not corrupt: the
   * configured model changed), since silently starting over would later delete the old history.
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
        decoded = decodeWeights(bytes, { requireFinite: true, copy: false, crc32: serverCrc32 });
      } catch (e) {
        this.onCorrupt({ file, reason: e instanceof WeightsCodecError ? `${e.code}: ${e.message}` : String(e) });
        continue;
      }
      const meta = decoded.meta as { kind?: unknown; version?: unknown; state?: FederationState };
      const problem = checkMeta(meta, round);
      if (problem) {
        this.onCorrupt({ file, reason: problem });
        continue;
      }
      if (decoded.weights.fingerprint !== expectedFingerprint) {
        throw new Error(
          `checkpoint ${file} holds weights of another model (fingerprint ${decoded.weights.fingerprint}, the configured model has ${expectedFingerprint}); ` +
            `move ${this.dir} away or use another STATE_DIR to start over`,
        );
      }
      return { state: meta.state!, weights: decoded.weights, bytes, file };
    }
    return null;
  }
}

function checkMeta(meta: { kind?: unknown; version?: unknown; state?: FederationState }, round: number): string | null {
  if (meta.kind !== CHECKPOINT_KIND) return `not a checkpoint (meta.kind is ${JSON.stringify(meta.kind)})`;
  if (meta.version !== CHECKPOINT_VERSION) return `unsupported checkpoint version ${JSON.stringify(meta.version)}`;
  const s = meta.state;
  if (!s || typeof s !== 'object' || !Number.isInteger(s.round) || !Array.isArray(s.history)) return 'checkpoint state is malformed';
  if (s.round !== round) return `file name says round ${round} but the state says ${s.round}`;
  if (s.history.length !== s.round) return `history has ${s.history.length} entries for ${s.round} rounds`;
  return null;
}
