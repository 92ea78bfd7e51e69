/**
 * A weight set: an ordered list of named float32 tensors plus the fingerprint of the architecture that
 * produced them. This is the unit that travels (codec), is aggregated (FedAvg & co) and is checkpointed.
 * Order is significant and stable for a given architecture.
 */
export interface NamedTensor {
  /** Hierarchical name, e.g. `g/conv1/kernel`, `d/bn2/movingMean`. */
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface WeightSet {
  /** Architecture fingerprint (see shared/codec/fingerprint.ts). Weights of another architecture are refused. */
  fingerprint: string;
  tensors: NamedTensor[];
}

/** Batch-norm weights (affine params and running statistics) are named `.../bn<k>/<field>`. FedBN keeps them local. */
export function isBatchNormWeight(name: string): boolean {
  return /(^|\/)bn\d*\//.test(name);
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Total number of scalars in a weight set. */
export function parameterCount(ws: WeightSet): number {
  return ws.tensors.reduce((n, t) => n + t.data.length, 0);
}
