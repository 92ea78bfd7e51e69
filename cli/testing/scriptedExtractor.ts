import type { FeatureExtractor } from '../../shared/features/types.ts';
import { features } from '../../shared/metrics/features.ts';
import { Rng } from '../../shared/rng.ts';

/**
 * A scripted feature network for the quality-curve tests: its first call (the fixed real reference) returns
 * fixed random features; the k-th call after it (the k-th probe) returns other fixed random features shifted
 * by shifts[k] in every dimension (the last shift repeats), so the k-th KID grows with |shifts[k]| and two
 * probes with the same shift score the same KID, whatever the generator.
 */
export function scripted(shifts: number[]): FeatureExtractor {
  const dim = 8;
  let calls = 0;
  const random = (rows: number, seed: number, shift: number) => {
    const rng = new Rng(seed);
    return features(Float32Array.from({ length: rows * dim }, () => rng.normal() + shift), rows, dim);
  };
  return {
    name: 'scripted',
    description: 'scripted KIDs (test)',
    dim,
    async extract(t) {
      const k = calls++;
      if (k === 0) return random(t.length, 1, 0);
      return random(t.length, 2, shifts[Math.min(k - 1, shifts.length - 1)]);
    },
    dispose() {},
  };
}
