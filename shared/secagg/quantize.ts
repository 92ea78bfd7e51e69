/**
 * Fixed-point encoding of a hospital's update for secure aggregation, and decoding of the sum.
 *
 * A hospital with n examples (capped at `maxExamples`) sends, for each coordinate i of the tensors that are
 * aggregated (all of them, or under FedBN all but the batch-norm ones), the integer
 *
 *     q_i = round(n · clamp(w_i − g_i, −clip, clip) · scale)            (w: trained, g: global weights)
 *
 * stored mod 2^32. With `scale` = (2^31 − 1) / (K · maxExamples · clip) for at most K hospitals (quantScale),
 * |q_i| ≤ (2^31 − 1) / K, so the sum S_i of up to K of them is a signed 32-bit integer and survives the
 * mod-2^32 arithmetic of the masks exactly. The server decodes the sum of N = Σ n examples as
 *
 *     g_i + S_i / (scale · N)
 *
 * which is FedAvg, Σ n·w_i / N, up to (a) the clip: exact when every |w_i − g_i| ≤ clip; (b) the rounding:
 * each q_i is off by at most ½, so the decoded weight is off by at most K / (2 · scale · N) (quantError),
 * e.g. 10 hospitals, maxExamples 100000, clip 0.5, N = 10000 examples: 1.2e-7, below float32 resolution of
 * weights near 1; (c) the final rounding to float32 that FedAvg has too.
 */
import { isBatchNormWeight, type WeightSet } from '../weights.ts';

export interface QuantParams {
  /** Each coordinate of weights − global is clipped to ±clip. */
  clip: number;
  /** Fixed-point scale (quantScale). */
  scale: number;
  /** The example count an update is weighted by is capped at this. */
  maxExamples: number;
}

/**
 * The largest scale that keeps the sum of `hospitals` updates inside a signed 32-bit integer. Below 1 the
 * sum is still exact mod 2^32, but coarse (quantError grows): the config refuses clip × maxExamples above
 * 2^31 − 1 (shared/secagg/config.ts), where even one hospital's update would be coarser than one unit.
 */
export function quantScale(clip: number, maxExamples: number, hospitals: number): number {
  if (!(clip > 0) || !Number.isFinite(clip)) throw new Error(`secure aggregation: clip must be a positive number, got ${clip}`);
  if (!Number.isSafeInteger(maxExamples) || maxExamples < 1) throw new Error(`secure aggregation: maxExamples must be a positive integer, got ${maxExamples}`);
  if (!Number.isSafeInteger(hospitals) || hospitals < 1) throw new Error(`secure aggregation: the number of hospitals must be a positive integer, got ${hospitals}`);
  return (2 ** 31 - 1) / (hospitals * maxExamples * clip);
}

/** Bound on |decoded − FedAvg| of each weight (before float32 rounding, updates within the clip). */
export function quantError(scale: number, hospitals: number, totalExamples: number): number {
  return hospitals / (2 * scale * totalExamples);
}

/** Indices of the tensors that are aggregated: all, or under FedBN (`local`) all but the batch-norm ones. */
export function aggregatedTensors(global: WeightSet, batchNorm: 'average' | 'local'): number[] {
  const out: number[] = [];
  global.tensors.forEach((t, i) => {
    if (batchNorm !== 'local' || !isBatchNormWeight(t.name)) out.push(i);
  });
  return out;
}

/** Number of 32-bit words of an encoded update. */
export function vectorLength(global: WeightSet, batchNorm: 'average' | 'local'): number {
  return aggregatedTensors(global, batchNorm).reduce((n, i) => n + global.tensors[i].data.length, 0);
}

export interface EncodedUpdate {
  words: Uint32Array;
  /** The example count the update is weighted by: min(examples, maxExamples). */
  examples: number;
  /** Coordinates whose |w − g| exceeded the clip. */
  clipped: number;
}

/**
 * Encode `trained` (same layout as `global`) weighted by `examples`. Batch-norm tensors are not encoded
 * under FedBN: they never leave the hospital. Throws on another layout, a non-finite weight, or a count
 * that is not a positive integer.
 */
export function encodeUpdate(trained: WeightSet, global: WeightSet, batchNorm: 'average' | 'local', examples: number, p: QuantParams): EncodedUpdate {
  if (!Number.isSafeInteger(examples) || examples < 1) throw new Error(`secure aggregation: the example count must be a positive integer, got ${examples}`);
  if (trained.tensors.length !== global.tensors.length) throw new Error(`secure aggregation: the update has ${trained.tensors.length} tensors, the global model ${global.tensors.length}`);
  const n = Math.min(examples, p.maxExamples);
  const words = new Uint32Array(vectorLength(global, batchNorm));
  const f = n * p.scale;
  let clipped = 0;
  let o = 0;
  for (const k of aggregatedTensors(global, batchNorm)) {
    const w = trained.tensors[k];
    const g = global.tensors[k];
    if (w.name !== g.name || w.data.length !== g.data.length) throw new Error(`secure aggregation: tensor ${k} is ${w.name} (${w.data.length}), the global model's ${g.name} (${g.data.length})`);
    const wd = w.data;
    const gd = g.data;
    for (let i = 0; i < wd.length; i++) {
      let d = wd[i] - gd[i];
      if (!Number.isFinite(d)) throw new Error(`secure aggregation: ${w.name}[${i}] is not finite`);
      if (d > p.clip) {
        d = p.clip;
        clipped++;
      } else if (d < -p.clip) {
        d = -p.clip;
        clipped++;
      }
      words[o++] = Math.round(d * f); // a negative integer wraps mod 2^32
    }
  }
  return { words, examples: n, clipped };
}

/**
 * The new global weights from the unmasked sum of the encoded updates of `totalExamples` examples: each
 * aggregated coordinate g + S / (scale · N) (S read as a signed 32-bit integer); tensors that are not
 * aggregated (batch-norm under FedBN) are copies of the global's.
 */
export function decodeSum(sum: Uint32Array, global: WeightSet, batchNorm: 'average' | 'local', totalExamples: number, scale: number): WeightSet {
  if (sum.length !== vectorLength(global, batchNorm)) throw new Error(`secure aggregation: the sum has ${sum.length} words, the model needs ${vectorLength(global, batchNorm)}`);
  if (!(totalExamples > 0)) throw new Error(`secure aggregation: the total example count must be positive, got ${totalExamples}`);
  const signed = new Int32Array(sum.buffer, sum.byteOffset, sum.length);
  const inv = 1 / (scale * totalExamples);
  const included = new Set(aggregatedTensors(global, batchNorm));
  let o = 0;
  const tensors = global.tensors.map((g, k) => {
    const data = g.data.slice();
    if (included.has(k)) for (let i = 0; i < data.length; i++) data[i] = g.data[i] + signed[o++] * inv;
    return { name: g.name, shape: [...g.shape], data };
  });
  return { fingerprint: global.fingerprint, tensors };
}
