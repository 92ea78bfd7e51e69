/**
 * What a client does with batch-norm weights when it receives new global weights.
 *
 * - 'average': batch-norm parameters and running statistics are aggregated like every other
 *   weight; the client takes the global model as is.
 * - 'local' (FedBN, Li et al., 2021): batch-norm weights (`isBatchNormWeight`) never leave the
 *   hospital's model; only the other weights come from the global model. This lets each site keep
 *   normalisation statistics that match its own staining and scanner. The hospital's update carries the
 *   global model's batch-norm values in place of its own (`weightsToUpload`), so nothing of its local
 *   batch norm reaches the server (design decision D1).
 */
import { layoutMismatch } from '../codec/layout.ts';
import { isBatchNormWeight, type WeightSet } from '../weights.ts';

export type BatchNormPolicy = 'average' | 'local';

export const BATCH_NORM_POLICIES: readonly BatchNormPolicy[] = ['average', 'local'];

export function isBatchNormPolicy(value: unknown): value is BatchNormPolicy {
  return value === 'average' || value === 'local';
}

/**
 * The weights a client should load after a round. Returns a new WeightSet whose tensors are copies
 * (neither input is aliased): with 'local', batch-norm tensors come from `local` and everything
 * else from `global`; with 'average', or when the client has no local weights yet (first round),
 * everything comes from `global`. Throws when `local` has another architecture or layout.
 */
export function applyGlobalWeights(global: WeightSet, local: WeightSet | undefined, policy: BatchNormPolicy): WeightSet {
  if (!isBatchNormPolicy(policy)) {
    throw new RangeError(`unknown batch-norm policy ${JSON.stringify(policy)} (expected "average" or "local")`);
  }
  const keepLocal = policy === 'local' && local !== undefined;
  if (keepLocal) {
    if (local.fingerprint !== global.fingerprint) {
      throw new RangeError(
        `cannot merge global weights ${global.fingerprint} into local weights ${local.fingerprint}: they come from different architectures`,
      );
    }
    const mismatch = layoutMismatch(local.tensors, global.tensors);
    if (mismatch !== null) throw new RangeError(`cannot merge global weights into local weights: ${mismatch}`);
  }
  return {
    fingerprint: global.fingerprint,
    tensors: global.tensors.map((t, i) => {
      const source = keepLocal && isBatchNormWeight(t.name) ? local.tensors[i] : t;
      return { name: t.name, shape: [...t.shape], data: source.data.slice() };
    }),
  };
}

/**
 * The weights a hospital uploads after training. With 'average', the trained weights as they are. With
 * 'local' (FedBN), the trained weights with every batch-norm tensor replaced by a copy of the global model's
 * value (the one the round started from), so the update carries no local batch-norm information. Throws
 * when the two weight sets do not have the same architecture and layout.
 */
export function weightsToUpload(trained: WeightSet, global: WeightSet, policy: BatchNormPolicy): WeightSet {
  if (!isBatchNormPolicy(policy)) {
    throw new RangeError(`unknown batch-norm policy ${JSON.stringify(policy)} (expected "average" or "local")`);
  }
  if (policy === 'average') return trained;
  if (trained.fingerprint !== global.fingerprint) {
    throw new RangeError(`cannot upload weights ${trained.fingerprint} for a round of ${global.fingerprint}: they come from different architectures`);
  }
  const mismatch = layoutMismatch(trained.tensors, global.tensors);
  if (mismatch !== null) throw new RangeError(`cannot put the global batch-norm values into the trained weights: ${mismatch}`);
  return {
    fingerprint: trained.fingerprint,
    tensors: trained.tensors.map((t, i) => (isBatchNormWeight(t.name) ? { name: t.name, shape: [...t.shape], data: global.tensors[i].data.slice() } : t)),
  };
}
