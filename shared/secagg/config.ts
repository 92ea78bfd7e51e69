/**
 * The `privacy.secureAggregation` section of the federation config (docs/configuration.md) and the
 * combinations it refuses. shared/config/fedConfig.ts puts the schema in its `privacy` section and calls
 * secureAggregationProblems in its cross-field checks; secureAggregationOf reads the section of a parsed
 * config (defaults when absent).
 */
import { z } from 'zod';

export const secureAggregationSchema = z
  .object({
    /** Hospitals mask their updates (SecAgg): the server learns only the example-weighted sum. */
    enabled: z.boolean().default(false),
    /** Each coordinate of a hospital's update (trained − global weights) is clipped to ±clip before quantisation. */
    clip: z.number().positive().max(1e6).default(0.5),
    /** The example count an update is weighted by is capped at this (it bounds the 32-bit integer sum). */
    maxExamples: z.number().int().min(1).max(1e9).default(100_000),
    /**
     * Hospitals whose masked updates and unmasking answers the round needs (Shamir threshold t). null: the
     * larger of 2, minCompletion and ⌊n/2⌋ + 1 of the n hospitals that advertised keys. Fewer: the attempt fails.
     */
    threshold: z.number().int().min(2, 'must be at least 2 (one hospital alone would be unmasked)').max(65535).nullable().default(null),
    /** Seconds the server waits for the hospitals' keys, their shares and their unmasking answers (each phase). */
    phaseSeconds: z.number().positive().max(3600).default(60),
  })
  .strict();

export type SecureAggregationConfig = z.output<typeof secureAggregationSchema>;
export const SECURE_AGGREGATION_DEFAULTS: SecureAggregationConfig = secureAggregationSchema.parse({});

/** The secure-aggregation section of a parsed federation config (the defaults, off, when it has none). */
export function secureAggregationOf(fed: unknown): SecureAggregationConfig {
  const section = (fed as { privacy?: { secureAggregation?: unknown } } | undefined)?.privacy?.secureAggregation;
  return section === undefined ? SECURE_AGGREGATION_DEFAULTS : secureAggregationSchema.parse(section);
}

/** What the checks read of the federation config. */
export interface SecureAggregationContext {
  aggregator: { type: string };
  maxUpdateNorm: 'auto' | number | null;
  minCompletion: number;
  privacy?: { secureAggregation?: Partial<SecureAggregationConfig> };
}

/**
 * Combinations the server cannot honour under secure aggregation, as {path, message}: it sees only the
 * sum, so it cannot take a coordinate-wise median or trimmed mean, nor check one update's norm.
 * `maxUpdateNorm: "auto"` (the default) is not refused: it is off under secure aggregation.
 */
export function secureAggregationProblems(fed: SecureAggregationContext): { path: string; message: string }[] {
  const sa = fed.privacy?.secureAggregation;
  if (!sa?.enabled) return [];
  const out: { path: string; message: string }[] = [];
  if (fed.aggregator.type !== 'fedavg') {
    out.push({
      path: 'aggregator.type',
      message: `${fed.aggregator.type} cannot be used with privacy.secureAggregation: the server sees only the sum of the masked updates, never one update; use fedavg (clipping happens at each hospital instead: DP clipping, privacy.dp)`,
    });
  }
  if (typeof fed.maxUpdateNorm === 'number') {
    out.push({
      path: 'maxUpdateNorm',
      message: `a per-update norm bound cannot be checked with privacy.secureAggregation (the server never sees one update): set it to null or "auto" (off under secure aggregation); each hospital clips its own update instead (privacy.secureAggregation.clip, DP clipping)`,
    });
  }
  const clip = sa.clip ?? SECURE_AGGREGATION_DEFAULTS.clip;
  const maxExamples = sa.maxExamples ?? SECURE_AGGREGATION_DEFAULTS.maxExamples;
  if (clip * maxExamples > 2 ** 31 - 1) {
    out.push({
      path: 'privacy.secureAggregation.maxExamples',
      message: `clip × maxExamples (${clip} × ${maxExamples}) must be at most 2147483647: updates are summed as 32-bit integers; lower maxExamples or clip`,
    });
  }
  if (sa.threshold != null && sa.threshold < fed.minCompletion) {
    out.push({ path: 'privacy.secureAggregation.threshold', message: `must be at least minCompletion (${fed.minCompletion})` });
  }
  return out;
}

/** The Shamir threshold of a round whose roster has n hospitals (see `threshold`). */
export function roundThreshold(cfg: SecureAggregationConfig, n: number, minCompletion: number): number {
  return cfg.threshold ?? Math.max(2, minCompletion, Math.floor(n / 2) + 1);
}
