import { AggregationError } from '../shared/aggregate/index.ts';
import { decodeWeights, WeightsCodecError } from '../shared/codec/weightsCodec.ts';
import type { WeightSet } from '../shared/weights.ts';
import { serverCrc32 } from './nativeCrc32.ts';

/** The update payload is not a readable weights file (bad magic, truncated, checksum, …): a `bad-frame`. */
export class UpdatePayloadError extends Error {}

/**
 * Decode and check the weights of a hospital's update against the global model, in one pass over the
 * data: native CRC-32 with the finite check fused in (see decodeWeights), then fingerprint and exact
 * names/shapes. The tensors are views into `payload` (no copy). Refusals are AggregationErrors with the
 * reason of the metrics ('fingerprint', 'shape', 'non-finite'); an unreadable payload is an
 * UpdatePayloadError. The result may go to an aggregator with `finiteChecked: true`.
 */
export function decodeUpdateWeights(payload: Uint8Array, global: WeightSet): WeightSet {
  try {
    return decodeWeights(payload, { expectedFingerprint: global.fingerprint, expectedShapes: global.tensors, requireFinite: true, crc32: serverCrc32 }).weights;
  } catch (e) {
    if (!(e instanceof WeightsCodecError)) throw e;
    const reason = e.code === 'fingerprint-mismatch' ? 'fingerprint' : e.code === 'shape-mismatch' ? 'shape' : e.code === 'non-finite' ? 'non-finite' : null;
    if (reason) throw new AggregationError(reason, e.message);
    throw new UpdatePayloadError(e.message);
  }
}
