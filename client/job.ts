/**
 * Long jobs of the web app (the export, the quality check): how a job is cancelled, and how fast it runs.
 * Pure (clock readings are inputs); the worker and the page both use it.
 */

/** The name a cancelled job's error carries (comlink keeps an Error's name across the worker boundary). */
export const CANCELLED = 'JobCancelled';

export class JobCancelled extends Error {
  constructor(what: string) {
    super(`${what} was cancelled`);
    this.name = CANCELLED;
  }
}

/** Whether an error (possibly from the worker) says the job was cancelled. */
export function isCancelled(e: unknown): boolean {
  return e instanceof Error && e.name === CANCELLED;
}

/** Throw JobCancelled when the signal has been aborted. */
export function throwIfCancelled(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new JobCancelled(what);
}

/** Let other messages (a Cancel) reach the worker between pieces of work. */
export function yieldToEvents(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

export interface JobRate {
  /** Items per second, measured. */
  perSecond: number;
  /** Seconds left at that rate. */
  secondsLeft: number;
}

/**
 * Measures a job's rate from readings "`done` of `total` items had finished at `atMs`". The first reading
 * of a stage is its start (it may include loading a network or compiling GPU programs, so the rate counts
 * from it); a new stage restarts the measurement, since each stage has its own speed. The ETA is for the
 * stage in progress: `rate` is undefined until at least `minItems` items and `minMs` have passed.
 */
export class JobMeter {
  private stage?: string;
  private start?: { done: number; atMs: number };
  private latest?: { done: number; total: number; atMs: number };

  constructor(
    private readonly minItems = 1,
    private readonly minMs = 500,
  ) {}

  record(done: number, total: number, stage: string, atMs: number): void {
    if (!Number.isFinite(done) || !Number.isFinite(total) || !Number.isFinite(atMs)) throw new RangeError(`job progress must be finite numbers (got ${done} of ${total} at ${atMs} ms)`);
    if (stage !== this.stage || !this.start || done < this.start.done) {
      this.stage = stage;
      this.start = { done, atMs };
    }
    this.latest = { done, total, atMs };
  }

  get rate(): JobRate | undefined {
    const s = this.start;
    const l = this.latest;
    if (!s || !l) return undefined;
    const items = l.done - s.done;
    const ms = l.atMs - s.atMs;
    if (items < this.minItems || ms < this.minMs || ms <= 0) return undefined;
    const perSecond = (items * 1000) / ms;
    return { perSecond, secondsLeft: Math.max(0, l.total - l.done) / perSecond };
  }
}
