import { lstat, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Write a file atomically: a temp file in the same directory, fsync, rename over the target, fsync the
 * directory. After a crash at any moment the target holds either the old or the new content, never a mix;
 * what a crash can leave is a temp file (tempNameFor), which sweepTempFiles removes at the next start.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array | readonly Uint8Array[], mode = 0o644): Promise<void> {
  const dir = dirname(path);
  const tmp = tempNameFor(path);
  const fh = await open(tmp, 'wx', mode);
  try {
    const parts = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
    for (const p of parts) {
      let off = 0;
      while (off < p.length) {
        const { bytesWritten } = await fh.write(p, off, p.length - off);
        off += bytesWritten;
      }
    }
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  try {
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fsyncDir(dir);
}

/**
 * The temp file a write of `path` goes through: `.NAME.PID.TIME.RANDOM.tmp` in the same directory (e.g.
 * `.round-000042.fgw.4711.m3x9k2.a8f3kd.tmp`). Every temp file this module's writers create has this form,
 * and only such names are swept (isTempName).
 */
export function tempNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8).padEnd(6, '0')}.tmp`);
}

const TEMP_RE = /^\..+\.\d+\.[0-9a-z]+\.[0-9a-z]+\.tmp$/;

/** Whether a file name (no directory) is a temp file of writeFileAtomic or probeWritable. */
export function isTempName(name: string): boolean {
  return TEMP_RE.test(name);
}

export interface SweepResult {
  files: number;
  bytes: number;
  /** Temp files that could not be removed, with the reason. */
  failed: { file: string; reason: string }[];
}

/**
 * Remove the temp files (isTempName) in `dir` that an interrupted write left behind: a crash between the
 * temp file's creation and its rename. Call it at start, before anything in this process writes to `dir`
 * (one server per STATE_DIR: a second process writing there at the same time would lose its temp file).
 * A missing `dir` sweeps nothing.
 */
export async function sweepTempFiles(dir: string): Promise<SweepResult> {
  const out: SweepResult = { files: 0, bytes: 0, failed: [] };
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw e;
  }
  for (const name of names) {
    if (!isTempName(name)) continue;
    const file = join(dir, name);
    try {
      const st = await lstat(file);
      if (!st.isFile()) continue;
      await unlink(file);
      out.files++;
      out.bytes += st.size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') out.failed.push({ file, reason: (e as Error).message });
    }
  }
  return out;
}

/** Writes a probe file's bytes (create exclusively, write, fsync, close); injectable to simulate a failing disk in tests. */
export type ProbeWriter = (path: string, bytes: Uint8Array) => Promise<void>;

async function writeProbeFile(path: string, bytes: Uint8Array): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    let off = 0;
    while (off < bytes.length) off += (await fh.write(bytes, off, bytes.length - off)).bytesWritten;
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A directory that cannot be created or written; the message names the directory and the system's reason (EROFS, ENOSPC, EACCES…). */
export class NotWritableError extends Error {
  constructor(
    readonly dir: string,
    readonly code: string | undefined,
    /** The system's reason, e.g. "EROFS: read-only file system, mkdir '/x/checkpoints'". */
    readonly reason: string,
  ) {
    super(`${dir} is not writable: ${reason}`);
    this.name = 'NotWritableError';
  }
}

const PROBE_BYTES = 4096;

/**
 * Create `dir` if needed and prove that files can be written there: write PROBE_BYTES (one disk block, so a
 * full disk fails too), fsync and remove a probe file. Throws NotWritableError with the real reason.
 *
 * The directories are created one level at a time: a recursive mkdir on a read-only file system reports
 * ENOENT instead of EROFS (Node stats the path after the failure), which named the wrong problem.
 */
export async function probeWritable(dir: string, writer: ProbeWriter = writeProbeFile): Promise<void> {
  await makeDirs(dir);
  const probe = join(dir, basename(tempNameFor(join(dir, 'write-probe'))));
  try {
    await writer(probe, new Uint8Array(PROBE_BYTES));
  } catch (e) {
    await unlink(probe).catch(() => {});
    const err = e as NodeJS.ErrnoException;
    throw new NotWritableError(dir, err.code, err.message);
  }
  try {
    await unlink(probe);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new NotWritableError(dir, err.code, `cannot remove the probe file ${probe}: ${err.message}`);
  }
}

/** mkdir -p, one level at a time, so that each failure keeps its own reason. */
async function makeDirs(dir: string): Promise<void> {
  const missing: string[] = [];
  let p = dir;
  for (;;) {
    try {
      const st = await stat(p);
      if (!st.isDirectory()) throw new NotWritableError(dir, 'ENOTDIR', `${p} exists and is not a directory`);
      break;
    } catch (e) {
      if (e instanceof NotWritableError) throw e;
      const err = e as NodeJS.ErrnoException;
      if (err.code !== 'ENOENT') throw new NotWritableError(dir, err.code, err.message);
      missing.unshift(p);
      const up = dirname(p);
      if (up === p) break;
      p = up;
    }
  }
  for (const d of missing) {
    try {
      await mkdir(d);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EEXIST') continue;
      throw new NotWritableError(dir, err.code, err.message);
    }
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic.
  } finally {
    await fh?.close().catch(() => {});
  }
}
