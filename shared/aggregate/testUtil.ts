/** Small builders shared by the aggregation specs (test-only helper). */
import type { WeightSet } from '../weights.ts';
import type { ClientUpdate } from './types.ts';

export const FP = '0123456789abcdef';

/** A two-tensor weight set: `a` of shape [2, 2] and `b/bn1/gamma` of shape [3]. */
export function ws(a: number[], b: number[], fingerprint = FP): WeightSet {
  return {
    fingerprint,
    tensors: [
      { name: 'a', shape: [2, 2], data: new Float32Array(a) },
      { name: 'b/bn1/gamma', shape: [3], data: new Float32Array(b) },
    ],
  };
}

export function upd(a: number[], b: number[], examples = 1): ClientUpdate {
  return { weights: ws(a, b), examples };
}

export function values(w: WeightSet): number[][] {
  return w.tensors.map((t) => Array.from(t.data));
}
