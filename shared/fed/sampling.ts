/**
 * Per-round client sampling: which of the available hospitals take part in a round.
 */
import { Rng } from '../rng.ts';

export interface SamplingOptions {
  /** Fraction of the available clients to select, in [0, 1]. */
  fraction: number;
  /** Select at least this many clients; fewer available clients is an error. */
  minCount: number;
  /** Experiment seed. */
  seed: number;
  /** Round number: each round draws a different sample. */
  round: number;
}

/**
 * How many of `available` clients a round uses: max(minCount, ⌈fraction·available⌉), clamped to
 * `available`. A tiny epsilon keeps float error from rounding up (0.1·30 = 3.0000000000000004 → 3).
 */
export function sampleSize(available: number, fraction: number, minCount: number): number {
  if (!(Number.isFinite(fraction) && fraction >= 0 && fraction <= 1)) {
    throw new RangeError(`client fraction must be in [0, 1], got ${fraction}`);
  }
  if (!Number.isSafeInteger(minCount) || minCount < 0) {
    throw new RangeError(`minimum client count must be a non-negative integer, got ${minCount}`);
  }
  return Math.min(available, Math.max(minCount, Math.ceil(fraction * available - 1e-9)));
}

/**
 * Picks the clients of one round, uniformly without replacement. The result depends only on the
 * set of ids, `seed` and `round` (not on the order of `ids`), differs from round to round, and is
 * returned sorted. Throws when fewer than `minCount` clients are available or ids repeat.
 */
export function sampleClients(ids: readonly string[], opts: SamplingOptions): string[] {
  const { fraction, minCount, seed, round } = opts;
  if (!Number.isSafeInteger(round)) throw new RangeError(`round must be an integer, got ${round}`);
  const pool = [...ids].sort();
  for (let i = 1; i < pool.length; i++) {
    if (pool[i] === pool[i - 1]) throw new RangeError(`client id ${pool[i]} is listed twice`);
  }
  if (pool.length < minCount) {
    throw new RangeError(
      `cannot start round ${round}: it needs at least ${minCount} clients but only ${pool.length} ${pool.length === 1 ? 'is' : 'are'} available`,
    );
  }
  const k = sampleSize(pool.length, fraction, minCount);
  const rng = new Rng(seed).fork('sample-clients').fork(round);
  // Partial Fisher–Yates: after i steps, pool[0..i) is a uniform sample of size i.
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(pool.length - i);
    const tmp = pool[i];
    pool[i] = pool[j];
    pool[j] = tmp;
  }
  return pool.slice(0, k).sort();
}
