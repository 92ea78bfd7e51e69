/** Summaries of repeated measurements: mean ± sample sd, and percentiles. */

export interface MeanSd {
  mean: number;
  /** Sample standard deviation (n − 1); 0 for a single value. */
  sd: number;
  n: number;
}

export function meanSd(values: readonly number[]): MeanSd {
  if (values.length === 0) throw new Error('mean ± sd of no values');
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const sd = n > 1 ? Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, n };
}

/** Percentile `p` ∈ [0, 100] with linear interpolation between order statistics (NumPy's default). */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) throw new Error('percentile of no values');
  if (!(p >= 0 && p <= 100)) throw new Error(`percentile must be in [0, 100], got ${p}`);
  const sorted = Float64Array.from(values).sort();
  const pos = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Summarise each numeric field of a list of records (e.g. metrics per seed) as mean ± sd. */
export function summariseRuns<K extends string>(runs: readonly Record<K, number>[], keys: readonly K[]): Record<K, MeanSd> {
  const out = {} as Record<K, MeanSd>;
  for (const k of keys) out[k] = meanSd(runs.map((r) => r[k]));
  return out;
}
