/**
 * Size of a model update, used to bound how far one client may move the global model.
 */
import { layoutMismatch } from '../codec/layout.ts';
import type { WeightSet } from '../weights.ts';

/**
 * L2 norm of the update `a − b` over all tensors: sqrt(Σ (a_i − b_i)²), accumulated in float64.
 * Both sets must have the same layout (names, shapes, order); throws otherwise.
 * NaN in either set gives NaN.
 */
export function l2Distance(a: WeightSet, b: WeightSet): number {
  const mismatch = layoutMismatch(a.tensors, b.tensors);
  if (mismatch !== null) throw new RangeError(`l2Distance: weight sets have different layouts: ${mismatch}`);
  let sum = 0;
  for (let k = 0; k < a.tensors.length; k++) {
    const x = a.tensors[k].data;
    const y = b.tensors[k].data;
    if (x.length !== y.length) {
      throw new RangeError(`l2Distance: tensor ${a.tensors[k].name} has ${x.length} values in one set and ${y.length} in the other`);
    }
    for (let i = 0; i < x.length; i++) {
      const d = x[i] - y[i];
      sum += d * d;
    }
  }
  return Math.sqrt(sum);
}
