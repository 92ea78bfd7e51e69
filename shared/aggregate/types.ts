/**
 * Aggregation contracts: what a client contributes in a round, what every aggregation strategy
 * implements, and the validation every update goes through before it is mixed into the model.
 */
import { findNonFinite } from '../codec/weightsCodec.ts';
import { layoutMismatch, type TensorSpec } from '../codec/layout.ts';
import { sizeOf, type WeightSet } from '../weights.ts';
import { l2Distance } from './updateNorm.ts';

/** One client's contribution to a round: its locally trained weights and how many examples produced them. */
export interface ClientUpdate {
  weights: WeightSet;
  /** Number of training examples behind the update (FedAvg weight). A positive integer. */
  examples: number;
  /**
   * The caller vouches that every value is finite: it has just checked them (e.g. `decodeWeights` with
   * `requireFinite`, which fuses the check with the checksum pass) and not modified them since.
   * Validation then skips its own pass over the values; everything else is still checked.
   */
  finiteChecked?: boolean;
}

/** An aggregation strategy: feed it updates, then read the aggregated weights. */
export interface Aggregator {
  readonly name: string;
  /**
   * Whether the aggregator keeps references to the tensors of the updates it was given (coordinate-wise
   * rules keep them until result()); when false it copies what it needs during add(), so the memory of
   * an update may be reused as soon as add() returns.
   */
  readonly retainsUpdates: boolean;
  /** Validates and adds one update; throws AggregationError when it does not fit. */
  add(update: ClientUpdate): void;
  /** Number of updates added so far. */
  count(): number;
  /** Sum of `examples` over the updates added so far. */
  totalExamples(): number;
  /** Aggregated weights of the updates so far (fresh arrays). Throws AggregationError('empty') before any add. */
  result(): WeightSet;
}

export type AggregationErrorReason = 'fingerprint' | 'shape' | 'non-finite' | 'examples' | 'norm' | 'empty';

/** An update was refused (or nothing can be aggregated); `reason` says why. */
export class AggregationError extends Error {
  constructor(
    readonly reason: AggregationErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'AggregationError';
  }
}

/** The layout updates must match: an architecture fingerprint and the ordered tensor names/shapes. */
export interface WeightLayout {
  fingerprint: string;
  tensors: readonly TensorSpec[];
}

export interface ValidateUpdateOptions {
  /** Weights the update started from (the current global model); required by `maxNorm`. */
  base?: WeightSet;
  /** Refuse updates whose L2 distance from `base` exceeds this bound (reason 'norm'). */
  maxNorm?: number;
  /** Who sent the update, for error messages (e.g. a hospital id). */
  source?: string;
}

/**
 * Checks that an update can be aggregated against `reference`: same fingerprint, same tensor
 * names and shapes in the same order with matching data lengths, only finite values (unless the
 * caller already checked them: `finiteChecked`), a positive
 * integer example count and, when `maxNorm` is given, an update norm within the bound.
 * Throws AggregationError with the matching `reason`.
 */
export function validateUpdate(update: ClientUpdate, reference: WeightLayout, opts: ValidateUpdateOptions = {}): void {
  const from = opts.source ? `update from ${opts.source}` : 'update';
  const { weights, examples } = update;
  if (!Number.isSafeInteger(examples) || examples <= 0) {
    throw new AggregationError('examples', `${from} refused: examples must be a positive integer, got ${examples}`);
  }
  if (weights.fingerprint !== reference.fingerprint) {
    throw new AggregationError(
      'fingerprint',
      `${from} refused: weights fingerprint ${weights.fingerprint} does not match ${reference.fingerprint} (another architecture)`,
    );
  }
  const mismatch = layoutMismatch(weights.tensors, reference.tensors);
  if (mismatch !== null) throw new AggregationError('shape', `${from} refused: ${mismatch}`);
  for (const t of weights.tensors) {
    const expected = sizeOf(t.shape);
    if (t.data.length !== expected) {
      throw new AggregationError(
        'shape',
        `${from} refused: tensor ${t.name} has ${t.data.length} values but shape [${t.shape.join(', ')}] needs ${expected}`,
      );
    }
  }
  const bad = update.finiteChecked === true ? null : findNonFinite(weights);
  if (bad !== null) {
    throw new AggregationError('non-finite', `${from} refused: tensor ${bad.tensor} holds ${bad.value} at index ${bad.index}`);
  }
  if (opts.maxNorm !== undefined) {
    if (opts.base === undefined) throw new TypeError('validateUpdate: maxNorm needs the base weights');
    const norm = l2Distance(weights, opts.base);
    if (!(norm <= opts.maxNorm)) {
      throw new AggregationError('norm', `${from} refused: update norm ${norm.toPrecision(4)} exceeds the bound ${opts.maxNorm}`);
    }
  }
}

/** A detached copy of the layout (fingerprint, names, shapes) of a weight set or of another layout. */
export function layoutOf(source: WeightLayout): WeightLayout {
  return { fingerprint: source.fingerprint, tensors: source.tensors.map((t) => ({ name: t.name, shape: [...t.shape] })) };
}
