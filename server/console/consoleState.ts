import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../atomicFile.ts';
import { StateDirError } from '../state.ts';

/**
 * What the operator console changed, kept in STATE_DIR/console/console.json and written atomically
 * (temp file, fsync, rename, fsync dir: server/atomicFile.ts) after every change, so a restart keeps it:
 *
 * - `operator`: the SHA-256 of the operator token the server created on its first start (never the token);
 * - `hospitals`: hospitals added in the console (their token's SHA-256), tokens rotated (the new SHA-256,
 *   which replaces the tokens file's), revocations (a revoked hospital stays revoked, even when the tokens
 *   file lists it);
 * - `federation`: the number of rounds and the round settings the operator set (they win over FED_CONFIG's
 *   for those fields), and whether it is paused or stopped.
 */

export const CONSOLE_DIR = 'console';
export const CONSOLE_STATE_FILE = 'console.json';

const sha = z.string().regex(/^[0-9a-f]{64}$/);
const hospitalSchema = z.object({
  /** Where the hospital came from: the tokens file (or demo tokens), or the console. */
  source: z.enum(['tokens-file', 'demo', 'console']),
  /** The token's SHA-256 when the console set it (added or rotated); the file's otherwise. */
  sha256: sha.optional(),
  addedAt: z.string().optional(),
  rotatedAt: z.string().optional(),
  revokedAt: z.string().optional(),
});
export type ConsoleHospital = z.infer<typeof hospitalSchema>;

const stateSchema = z.object({
  version: z.literal(1),
  operator: z.object({ sha256: sha, createdAt: z.string() }).nullable().default(null),
  hospitals: z.record(z.string(), hospitalSchema).default({}),
  federation: z
    .object({
      rounds: z.number().int().min(1).optional(),
      /** The round settings the operator changed (only those fields), merged over FED_CONFIG at start. */
      settings: z.record(z.string(), z.unknown()).optional(),
      paused: z.boolean().default(false),
      stopped: z.boolean().default(false),
    })
    .default({ paused: false, stopped: false }),
});
export type ConsoleStateData = z.infer<typeof stateSchema>;

export class ConsoleState {
  readonly dir: string;
  readonly file: string;
  data: ConsoleStateData;
  private writing: Promise<void> = Promise.resolve();

  private constructor(dir: string, data: ConsoleStateData) {
    this.dir = dir;
    this.file = join(dir, CONSOLE_STATE_FILE);
    this.data = data;
  }

  /** Read STATE_DIR/console/console.json (empty state when absent); throws StateDirError when it cannot be read. */
  static load(stateDir: string): ConsoleState {
    const dir = join(stateDir, CONSOLE_DIR);
    const file = join(dir, CONSOLE_STATE_FILE);
    if (!existsSync(file)) return new ConsoleState(dir, stateSchema.parse({ version: 1 }));
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new StateDirError('console-state', `${file} cannot be read (${(e as Error).message}): restore it from a backup, or move it aside to start without the console's hospitals and settings`);
    }
    const parsed = stateSchema.safeParse(raw);
    if (!parsed.success) {
      throw new StateDirError(
        'console-state',
        `${file} is not a console state this server understands (${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}): restore it from a backup, or move it aside`,
      );
    }
    return new ConsoleState(dir, parsed.data);
  }

  /** Write the state atomically; writes are serialised, each writes the state as it is then. Rejects when the write fails. */
  save(): Promise<void> {
    const next = this.writing.then(() => writeFileAtomic(this.file, JSON.stringify(this.data, null, 2) + '\n', 0o600));
    this.writing = next.catch(() => {});
    return next;
  }
}
