import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomicFile.ts';
import { StateDirError } from '../state.ts';

/**
 * The operator's audit log: STATE_DIR/console/audit.jsonl, append-only, one JSON object per line, each
 * line hash-chained to the one before it:
 *
 *     hash = SHA-256 hex of ( prev + "\n" + the line's JSON without its "hash" field )
 *
 * where `prev` is the previous line's hash (64 zeros for the first line) and the JSON is the object with
 * its fields in the order seq, at, type, actor, hospital?, details?, prev. Besides the chain, the hash and
 * sequence number of the last line are kept in `audit.head.json` (written atomically after each append),
 * so that lines cut off the end are detected too.
 *
 * At start-up the whole file is verified (verifyAuditLog): a line that was modified, deleted, inserted or
 * reordered breaks the chain (its hash, its `prev` or its `seq`), and a file shorter than its head lost
 * lines at the end. The server then REFUSES TO START (StateDirError 'audit-log-tampered', exit 1) with a
 * message naming the first bad line: the operator restores the file from a backup, or moves it aside to
 * start a new chain (docs/console-api.md, "Audit log"). A head behind the file (a crash between the
 * append and the head write) is not tampering: the lines after it verify against the chain.
 */

export const AUDIT_FILE = 'audit.jsonl';
/** Events kept in memory for the console's queries (the newest); the export (the file) has them all. */
export const AUDIT_EVENTS_IN_MEMORY = 50_000;
export const AUDIT_HEAD_FILE = 'audit.head.json';
const GENESIS = '0'.repeat(64);

export interface AuditEvent {
  seq: number;
  /** ISO time. */
  at: string;
  /** What happened, e.g. `operator-pause`, `hospital-joined`, `round-aggregated` (docs/console-api.md). */
  type: string;
  /** Who: `operator`, a hospital's name, or `server`. */
  actor: string;
  /** The hospital concerned, when there is one. */
  hospital?: string;
  details?: Record<string, unknown>;
  prev: string;
  hash: string;
}

export type AuditInput = Pick<AuditEvent, 'type' | 'actor'> & Partial<Pick<AuditEvent, 'hospital' | 'details'>>;

/** The hash of a line: over the previous hash and the line's canonical JSON without `hash`. */
export function auditHash(e: Omit<AuditEvent, 'hash'>): string {
  const body = JSON.stringify(canonical(e));
  return createHash('sha256').update(`${e.prev}\n${body}`, 'utf8').digest('hex');
}

function canonical(e: Omit<AuditEvent, 'hash'>): Omit<AuditEvent, 'hash'> {
  return {
    seq: e.seq,
    at: e.at,
    type: e.type,
    actor: e.actor,
    ...(e.hospital !== undefined ? { hospital: e.hospital } : {}),
    ...(e.details !== undefined ? { details: e.details } : {}),
    prev: e.prev,
  };
}

export type AuditVerdict = { ok: true; events: AuditEvent[]; head: string } | { ok: false; line: number; problem: string };

/**
 * Verify the text of an audit log (and, when given, its head record). Returns the events, or the first bad
 * line (1-based) and what is wrong with it.
 */
export function verifyAuditLog(text: string, head?: { seq: number; hash: string } | null): AuditVerdict {
  const lines = text.split('\n');
  // The file ends with a newline; a last line without one was cut mid-write (a crash), or edited.
  if (lines[lines.length - 1] === '') lines.pop();
  const events: AuditEvent[] = [];
  let prev = GENESIS;
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    let e: AuditEvent;
    try {
      e = JSON.parse(lines[i]) as AuditEvent;
    } catch {
      return { ok: false, line: n, problem: 'not valid JSON (edited, or cut off)' };
    }
    if (!e || typeof e !== 'object' || typeof e.hash !== 'string' || typeof e.prev !== 'string' || typeof e.seq !== 'number') {
      return { ok: false, line: n, problem: 'not an audit event (no seq, prev or hash)' };
    }
    if (e.seq !== n) return { ok: false, line: n, problem: `sequence number ${e.seq} where ${n} was expected (a line was deleted, inserted or moved)` };
    if (e.prev !== prev) return { ok: false, line: n, problem: 'its "prev" is not the hash of the line before it (a line before it was deleted, changed or inserted)' };
    const { hash, ...rest } = e;
    if (auditHash(rest) !== hash) return { ok: false, line: n, problem: 'its content does not match its hash (the line was modified)' };
    events.push(e);
    prev = hash;
  }
  if (head) {
    const at = events[head.seq - 1];
    if (!at) return { ok: false, line: events.length + 1, problem: `the log ends at line ${events.length} but ${AUDIT_HEAD_FILE} records ${head.seq} lines (lines were deleted from the end)` };
    if (at.hash !== head.hash) return { ok: false, line: head.seq, problem: `its hash is not the one ${AUDIT_HEAD_FILE} records (the log was rewritten)` };
  }
  return { ok: true, events, head: prev };
}

export interface AuditFilter {
  type?: string;
  hospital?: string;
  /** ISO time: events at or after it. */
  since?: string;
  /** At most this many (the newest). */
  limit?: number;
}

/** The audit log of a server: verified at open, then appended to (in memory too, for the console's queries). */
export class AuditLog {
  readonly file: string;
  private readonly headFile: string;
  private events: AuditEvent[];
  /** Lines in the file (events in memory are the newest of them). */
  private count: number;
  private headHash: string;
  private headWrite: Promise<void> = Promise.resolve();
  private headWriting = false;
  private headAgain = false;
  private readonly keep: number;
  private listeners: ((e: AuditEvent) => void)[] = [];

  private constructor(
    dir: string,
    events: AuditEvent[],
    head: string,
    private readonly now: () => number,
    keep = AUDIT_EVENTS_IN_MEMORY,
  ) {
    this.keep = keep;
    this.file = join(dir, AUDIT_FILE);
    this.headFile = join(dir, AUDIT_HEAD_FILE);
    this.count = events.length;
    this.events = events.slice(-keep);
    this.headHash = head;
  }

  /**
   * Open (and verify) the audit log in `dir` (STATE_DIR/console). Throws StateDirError 'audit-log-tampered'
   * naming the first bad line when the chain does not verify.
   */
  static open(dir: string, opts: { now?: () => number; keepInMemory?: number } = {}): AuditLog {
    const file = join(dir, AUDIT_FILE);
    const headFile = join(dir, AUDIT_HEAD_FILE);
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    let head: { seq: number; hash: string } | null = null;
    if (existsSync(headFile)) {
      try {
        head = JSON.parse(readFileSync(headFile, 'utf8')) as { seq: number; hash: string };
      } catch (e) {
        throw new StateDirError('audit-log-tampered', `${headFile} is not valid JSON (${(e as Error).message}): the audit log cannot be verified. ${AUDIT_REMEDY(file)}`);
      }
      if (!existsSync(file) && head.seq > 0) {
        throw new StateDirError('audit-log-tampered', `the audit log ${file} is missing but ${AUDIT_HEAD_FILE} records ${head.seq} line(s): it was deleted. ${AUDIT_REMEDY(file)}`);
      }
    }
    const v = verifyAuditLog(text, head);
    if (!v.ok) {
      throw new StateDirError('audit-log-tampered', `the audit log ${file} was tampered with: line ${v.line}: ${v.problem}. The server does not start on an audit log it cannot trust. ${AUDIT_REMEDY(file)}`);
    }
    return new AuditLog(dir, v.events, v.head, opts.now ?? Date.now, opts.keepInMemory);
  }

  /** Lines in the log. */
  get size(): number {
    return this.count;
  }

  get head(): string {
    return this.headHash;
  }

  /** Append one event (written and fsynced before this returns; the head record follows atomically). */
  append(input: AuditInput): AuditEvent {
    const base: Omit<AuditEvent, 'hash'> = {
      seq: this.count + 1,
      at: new Date(this.now()).toISOString(),
      type: input.type,
      actor: input.actor,
      ...(input.hospital !== undefined ? { hospital: input.hospital } : {}),
      ...(input.details !== undefined ? { details: input.details } : {}),
      prev: this.headHash,
    };
    const e: AuditEvent = { ...canonical(base), hash: auditHash(base) };
    const fd = openSync(this.file, 'a', 0o600);
    try {
      appendFileSync(fd, JSON.stringify(e) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.events.push(e);
    if (this.events.length > this.keep * 1.2) this.events = this.events.slice(-this.keep);
    this.count++;
    this.headHash = e.hash;
    this.writeHead();
    for (const fn of this.listeners) fn(e);
    return e;
  }

  /** Write the head record (the last line's seq and hash); appends meanwhile are coalesced into one more write. */
  private writeHead(): void {
    if (this.headWriting) {
      this.headAgain = true;
      return;
    }
    this.headWriting = true;
    this.headWrite = (async () => {
      do {
        this.headAgain = false;
        await writeFileAtomic(this.headFile, JSON.stringify({ seq: this.count, hash: this.headHash }), 0o600).catch(() => {});
      } while (this.headAgain);
      this.headWriting = false;
    })();
  }

  /** Wait for the head record of the last append to be written (tests, shutdown). */
  flush(): Promise<void> {
    return this.headWrite;
  }

  onAppend(fn: (e: AuditEvent) => void): void {
    this.listeners.push(fn);
  }

  /** Events matching the filter, oldest first, among the newest kept in memory (AUDIT_EVENTS_IN_MEMORY). */
  query(f: AuditFilter = {}): AuditEvent[] {
    const since = f.since !== undefined ? Date.parse(f.since) : undefined;
    const out = this.events.filter(
      (e) => (f.type === undefined || e.type === f.type) && (f.hospital === undefined || e.hospital === f.hospital) && (since === undefined || Date.parse(e.at) >= since),
    );
    return f.limit !== undefined && out.length > f.limit ? out.slice(out.length - f.limit) : out;
  }

  /** The raw file's text. */
  text(): string {
    return existsSync(this.file) ? readFileSync(this.file, 'utf8') : '';
  }
}

const AUDIT_REMEDY = (file: string) =>
  `Restore ${file} (and ${AUDIT_HEAD_FILE} next to it) from a backup, or, to start a new audit log, move both aside (keep them as evidence); the server then starts a new chain.`;
