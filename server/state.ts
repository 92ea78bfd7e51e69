import { mkdirSync } from 'node:fs';
import { lstat, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CheckpointError, decodeCheckpoint, encodeCheckpoint, type CheckpointMeta, type FederationState } from '../shared/checkpoint.ts';
import { WeightsCodecError } from '../shared/codec/weightsCodec.ts';
import type { GanConfig } from '../shared/config/ganConfig.ts';
import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import type { WeightSet } from '../shared/weights.ts';
import { NotWritableError, probeWritable, sweepTempFiles, writeFileAtomic, type ProbeWriter, type SweepResult } from './atomicFile.ts';
import { ENV } from './config.ts';
import { serverCrc32 } from './nativeCrc32.ts';

/**
 * Persistence of the federation: after every completed round, one checkpoint file holding the global
 * weights AND the round state + history, written atomically (temp file, fsync, rename, fsync dir).
 *
 * A checkpoint is the project's one checkpoint format (shared/checkpoint.ts): a weights-codec file whose
 * `meta` holds the configured GAN config, the round, the batch-norm policy and the federation state, so
 * the codec's CRC-32 covers all of it and `npm run evaluate` reads it as it is. Version-1 files (written
 * before the config was recorded) are still resumed from, with the configured model and policy standing in
 * for what they lack.
 *
 * Files: STATE_DIR/checkpoints/round-000042.fgw. Checkpoints are ordered by what the verified file holds,
 * never by its name alone:
 * - At load every file is verified (checksum, checkpoint meta, the round in it equal to the one in its name).
 *   The newest valid one is resumed from. A corrupt file (torn, bit-flipped, not a server checkpoint) is
 *   reported and moved aside to `NAME.corrupt` (kept as evidence, never loaded, never deleted by the server),
 *   so that it can neither hide newer checkpoints from rotation nor be overwritten by a later round.
 * - If checkpoint files exist but none is valid, loading refuses (StateDirError naming each file and what is
 *   wrong with it) instead of starting over from round 0, unless `startFresh` (START_FRESH=1) is set: then the
 *   files are moved aside and the federation starts from the initial weights.
 * - After each write, of the VALID checkpoints the newest `keep` are kept and, besides them, the rounds the
 *   write names in `keep` (the round machine names the best-quality model's round: see
 *   shared/fed/qualitySchedule.ts); older valid ones are deleted. A file this store has not verified yet is
 *   verified first (and moved aside if corrupt); files it cannot judge (another model, a newer format) are
 *   left where they are and not counted.
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

/** Suffix of a corrupt checkpoint moved aside (`round-000042.fgw.corrupt`, then `.corrupt.1`, …). */
export const CORRUPT_SUFFIX = '.corrupt';

export interface CorruptCheckpoint {
  file: string;
  reason: string;
}

/**
 * The server cannot start on this STATE_DIR: it is not writable, it holds checkpoint files of which none is
 * valid, or its newest intact checkpoint is of another model or a newer format. The message says what is
 * wrong and what the operator can do; server/main.ts prints it as it is (no stack trace) and exits 1.
 */
export class StateDirError extends Error {
  constructor(
    /**
     * not-writable: cannot write; no-valid-checkpoint: only corrupt files; unusable-checkpoint: another model or a
     * newer format; audit-log-tampered: the console's audit log does not verify (server/console/auditLog.ts);
     * console-state: a console file (operator token, hospitals, settings) cannot be read.
     */
    readonly code: 'not-writable' | 'no-valid-checkpoint' | 'unusable-checkpoint' | 'audit-log-tampered' | 'console-state',
    message: string,
  ) {
    super(message);
    this.name = 'StateDirError';
  }
}

/** Writes a file atomically (default writeFileAtomic); tests inject a failing one to simulate a full disk. */
export type CheckpointWriter = (path: string, bytes: Uint8Array) => Promise<void>;

export interface CheckpointStoreOptions {
  stateDir: string;
  /** Valid checkpoints kept (the newest). */
  keep: number;
  /** The configured model: recorded in every checkpoint, and assumed for version-1 files that lack it. */
  model: GanConfig;
  /** The federation's batch-norm policy, recorded likewise. */
  batchNorm: BatchNormPolicy;
  /**
   * When checkpoint files exist but none is valid: move them aside and start from the initial weights
   * (true), or refuse to load (false, the default). Has no effect while a valid checkpoint exists.
   */
  startFresh?: boolean;
  /** A corrupt checkpoint was found (at load or before a rotation); it is moved aside afterwards. */
  onCorrupt?: (c: CorruptCheckpoint) => void;
  /** Warnings for the operator: files moved aside, files left alone, a rotation that failed. */
  warn?: (message: string) => void;
  writeFile?: CheckpointWriter;
}

type Inspection =
  | { kind: 'valid'; round: number; decoded: ReturnType<typeof decodeCheckpoint> & { meta: { state: FederationState } }; bytes: Uint8Array }
  | { kind: 'corrupt'; reason: string }
  /** Intact, but this build cannot use it: another model, a newer format, a config it cannot parse. */
  | { kind: 'foreign'; reason: string };

/** What the store knows about a file it verified: valid, of `round`, unchanged while size and mtime are. */
interface Verified {
  round: number;
  size: number;
  mtimeMs: number;
}

export class CheckpointStore {
  readonly dir: string;
  readonly model: GanConfig;
  readonly batchNorm: BatchNormPolicy;
  private readonly keep: number;
  private readonly startFresh: boolean;
  private readonly onCorrupt: (c: CorruptCheckpoint) => void;
  private readonly warn: (message: string) => void;
  private readonly writeFile: CheckpointWriter;
  /** The architecture checkpoints must hold (set by loadLatest). */
  private fingerprint?: string;
  /** Files verified valid, by name. */
  private readonly verified = new Map<string, Verified>();
  /** Files left alone (foreign), by name, so that each is reported once while unchanged. */
  private readonly ignored = new Map<string, Omit<Verified, 'round'>>();

  constructor(opts: CheckpointStoreOptions) {
    this.dir = join(opts.stateDir, 'checkpoints');
    this.keep = opts.keep;
    this.model = opts.model;
    this.batchNorm = opts.batchNorm;
    this.startFresh = opts.startFresh ?? false;
    this.onCorrupt = opts.onCorrupt ?? (() => {});
    this.warn = opts.warn ?? (() => {});
    this.writeFile = opts.writeFile ?? ((path, bytes) => writeFileAtomic(path, bytes));
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch {
      // Reported with its real reason by prepareStateDir (at start) or by the first write.
    }
  }

  static fileName(round: number): string {
    return `round-${String(round).padStart(6, '0')}.fgw`;
  }

  /** Checkpoint files by name (round in the name), newest name first; their content is not checked here. */
  async list(): Promise<{ round: number; file: string }[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
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
   * Atomically write encoded checkpoint bytes (store.encode) of `round` (rejects when that fails: nothing is
   * deleted then), then rotate: of the valid checkpoints, all but the newest `keep` (the store's option) and
   * the rounds in `opts.keep` (the best-quality model) are deleted. A failed rotation is a warning, not a
   * failed write.
   */
  async write(round: number, bytes: Uint8Array, opts: { keep?: readonly number[] } = {}): Promise<string> {
    const name = CheckpointStore.fileName(round);
    const file = join(this.dir, name);
    await this.writeFile(file, bytes);
    this.ignored.delete(name);
    try {
      const st = await stat(file);
      this.verified.set(name, { round, size: st.size, mtimeMs: st.mtimeMs });
    } catch {
      this.verified.delete(name); // verified again at the next rotation
    }
    try {
      await this.rotate(new Set(opts.keep ?? []));
    } catch (e) {
      this.warn(`could not rotate old checkpoints in ${this.dir}: ${(e as Error).message}`);
    }
    return file;
  }

  /** Delete all but the newest `keep` valid checkpoints (and the protected rounds); corrupt files are moved aside. */
  private async rotate(protectedRounds: ReadonlySet<number>): Promise<void> {
    const valid: { round: number; file: string; name: string }[] = [];
    for (const { file } of await this.list()) {
      const name = basename(file);
      const st = await stat(file).catch(() => null);
      if (!st) continue;
      const known = this.verified.get(name);
      if (known && known.size === st.size && known.mtimeMs === st.mtimeMs) {
        valid.push({ round: known.round, file, name });
        continue;
      }
      const left = this.ignored.get(name);
      if (left && left.size === st.size && left.mtimeMs === st.mtimeMs) continue;
      const r = await this.inspect(file);
      if (r.kind === 'valid') {
        this.verified.set(name, { round: r.round, size: st.size, mtimeMs: st.mtimeMs });
        valid.push({ round: r.round, file, name });
      } else if (r.kind === 'corrupt') {
        this.verified.delete(name);
        this.onCorrupt({ file, reason: r.reason });
        await this.moveAside(file, r.reason);
      } else {
        this.verified.delete(name);
        this.ignored.set(name, { size: st.size, mtimeMs: st.mtimeMs });
        this.warn(`checkpoint ${file} is left where it is and not counted among the kept checkpoints: ${r.reason}`);
      }
    }
    valid.sort((a, b) => b.round - a.round);
    for (const old of valid.slice(this.keep)) {
      if (protectedRounds.has(old.round)) continue;
      await unlink(old.file).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') this.warn(`could not delete old checkpoint ${old.file}: ${e.message}`);
      });
      this.verified.delete(old.name);
    }
  }

  /** Read and verify one checkpoint file. */
  private async inspect(file: string): Promise<Inspection> {
    const m = FILE_RE.exec(basename(file));
    const nameRound = m ? Number(m[1]) : undefined;
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(file));
    } catch (e) {
      return { kind: 'corrupt', reason: `unreadable: ${(e as Error).message}` };
    }
    let decoded;
    try {
      decoded = decodeCheckpoint(bytes, {
        requireFinite: true,
        copy: false,
        crc32: serverCrc32,
        expectedRound: nameRound,
        legacy: { config: this.model, batchNorm: this.batchNorm },
        name: file,
      });
    } catch (e) {
      // Intact bytes this build cannot read (a newer version, a config it cannot parse) are not corrupt:
      // moving them aside and starting over would lose the history they hold.
      if (e instanceof CheckpointError && (e.code === 'unsupported-version' || e.code === 'bad-config')) return { kind: 'foreign', reason: e.message };
      const reason = e instanceof WeightsCodecError || e instanceof CheckpointError ? `${e.code}: ${e.message}` : String(e);
      return { kind: 'corrupt', reason };
    }
    if (!decoded.meta.state) {
      return { kind: 'corrupt', reason: `no federation state in its meta (a checkpoint written by ${decoded.meta.source}, not by the server)` };
    }
    if (this.fingerprint !== undefined && decoded.weights.fingerprint !== this.fingerprint) {
      return {
        kind: 'foreign',
        reason: `checkpoint ${file} holds weights of another model (fingerprint ${decoded.weights.fingerprint}, the configured model has ${this.fingerprint})`,
      };
    }
    return { kind: 'valid', round: decoded.meta.round, decoded: decoded as Extract<Inspection, { kind: 'valid' }>['decoded'], bytes };
  }

  /** Rename a corrupt file to NAME.corrupt (or NAME.corrupt.N when that exists): kept as evidence, out of the way. */
  private async moveAside(file: string, reason: string): Promise<void> {
    let target = file + CORRUPT_SUFFIX;
    for (let i = 1; await exists(target); i++) target = `${file}${CORRUPT_SUFFIX}.${i}`;
    try {
      await rename(file, target);
      this.warn(`corrupt checkpoint ${file} moved aside to ${basename(target)} (${reason}); it is kept for inspection and never loaded; delete it when it is no longer needed`);
    } catch (e) {
      this.warn(`corrupt checkpoint ${file} could not be moved aside (${(e as Error).message}); it is ignored`);
    }
  }

  /**
   * The newest valid checkpoint, or null when there is none (nothing in the folder, or, with `startFresh`,
   * only corrupt files, which are then moved aside). Every file is verified: corrupt ones are reported through
   * `onCorrupt` and moved aside. Throws StateDirError when files exist but none is valid and `startFresh` is
   * not set. A checkpoint of another architecture, of a newer format version or with a GAN config this build
   * cannot parse, met before any valid one, is an error (it is not corrupt: the configured model or the
   * build changed), since silently starting over would later delete the old history.
   */
  async loadLatest(expectedFingerprint: string): Promise<Checkpoint | null> {
    this.fingerprint = expectedFingerprint;
    let best: Checkpoint | null = null;
    const corrupt: CorruptCheckpoint[] = [];
    for (const { file } of await this.list()) {
      const name = basename(file);
      const r = await this.inspect(file);
      if (r.kind === 'foreign') {
        if (!best) throw new StateDirError('unusable-checkpoint', `${r.reason}; move ${this.dir} away or use another STATE_DIR to start over`);
        const st = await stat(file).catch(() => null);
        if (st) this.ignored.set(name, { size: st.size, mtimeMs: st.mtimeMs });
        this.warn(`checkpoint ${file} is left where it is and not counted among the kept checkpoints: ${r.reason}`);
        continue;
      }
      if (r.kind === 'corrupt') {
        corrupt.push({ file, reason: r.reason });
        this.onCorrupt({ file, reason: r.reason });
        continue;
      }
      const st = await stat(file).catch(() => null);
      if (st) this.verified.set(name, { round: r.round, size: st.size, mtimeMs: st.mtimeMs });
      if (!best || r.round > best.state.round) {
        const d = r.decoded;
        best = { state: d.meta.state, weights: d.weights, bytes: r.bytes, file, meta: d.meta, fileVersion: d.fileVersion };
      }
    }
    if (!best && corrupt.length && !this.startFresh) {
      throw new StateDirError(
        'no-valid-checkpoint',
        `${this.dir} holds ${corrupt.length} checkpoint file(s) and none of them is valid:\n` +
          corrupt.map((c) => `  ${basename(c.file)}: ${c.reason}`).join('\n') +
          `\nThe server does not start over from round 0 on its own: the rounds these files held would be lost without anyone noticing. ` +
          `Restore a good copy of ${this.dir} (docs/deploy.md, "Back up STATE_DIR"), or start from the initial weights with ${ENV.START_FRESH}=1 ` +
          `(or npm start -- --start-fresh): the files are then renamed to *${CORRUPT_SUFFIX} and kept.`,
      );
    }
    if (!best && corrupt.length) this.warn(`${ENV.START_FRESH} is set and no checkpoint in ${this.dir} is valid: starting from the initial weights`);
    for (const c of corrupt) await this.moveAside(c.file, c.reason);
    return best;
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Before the server uses STATE_DIR: prove that it and its checkpoints folder can be written (a 4 KiB probe
 * file written, fsynced and removed: a read-only or full volume fails here, at start, with the system's
 * reason), then remove the temp files interrupted writes left there (sweepTempFiles). Throws StateDirError
 * ('not-writable').
 */
export async function prepareStateDir(stateDir: string, opts: { probeWriter?: ProbeWriter } = {}): Promise<SweepResult> {
  const dirs = [stateDir, join(stateDir, 'checkpoints')];
  for (const dir of dirs) {
    try {
      await probeWritable(dir, opts.probeWriter);
    } catch (e) {
      if (!(e instanceof NotWritableError)) throw e;
      const hint =
        e.code === 'ENOSPC' || e.code === 'EDQUOT'
          ? 'free space on that volume or give it more'
          : 'mount a writable volume there or set STATE_DIR to a writable directory';
      throw new StateDirError(
        'not-writable',
        `${ENV.STATE_DIR} ${stateDir} is not writable: ${e.reason}. The server writes a checkpoint there after every round; ${hint}.`,
      );
    }
  }
  const total: SweepResult = { files: 0, bytes: 0, failed: [] };
  for (const dir of dirs) {
    const r = await sweepTempFiles(dir);
    total.files += r.files;
    total.bytes += r.bytes;
    total.failed.push(...r.failed);
  }
  return total;
}
