import * as tf from '@tensorflow/tfjs-core';
import { fusedLayerOps } from './fusedLayerOps.ts';

/**
 * Per-example weights, for per-example gradients in one backward pass (differential privacy:
 * shared/privacy/dpSgd.ts).
 *
 * While `withPerExampleWeights` runs, every layer of shared/nn that finds its variable in the map uses the
 * copy `[B, ...shape]` instead: example b of the batch is computed with copy b (dense and conv layers as
 * batched matrix products, norms and embeddings by broadcasting). All copies hold the same values, so the
 * forward pass is the model's own; but the gradient of Σ_b ℓ_b with respect to copy b is example b's
 * gradient ∇ℓ_b, for every b at once. Because only ordinary differentiable tfjs ops are used (matMul,
 * slice, pad, concat, reshape, gather), this holds for second-order losses too (WGAN-GP's gradient
 * penalty, R1).
 *
 * Layout: a layer's input has the examples outermost. Its leading axis is B·r (r = 1 for images, r > 1 when
 * a model folds windows or tokens into the batch axis, example-major, as windowPartition and patch merging
 * do); the layer regroups it as [B, r·…]. Outside the context (the usual training step) layers take their
 * ordinary path, fused kernels included: nothing here costs a non-DP step anything.
 */
interface Context {
  readonly batch: number;
  readonly weights: ReadonlyMap<tf.Variable, tf.Tensor>;
  readonly firstOrder: boolean;
}

let active: Context | null = null;

/**
 * Run `fn` with per-example copies of the given variables (each `[batch, ...variable.shape]`).
 *
 * `firstOrder`: the loss is differentiated once only (no gradient penalty, no R1). Dense and conv layers
 * then compute their forward pass with the shared weights through the backend's own (or the fast path's
 * fused) kernels, and a custom gradient gives each example's weight gradient as one batched product of
 * its inputs and output gradients (Σ over positions of input patch ⊗ output gradient): the same numbers,
 * at about the cost of the ordinary weight gradient. Such a custom gradient cannot be differentiated
 * again with respect to the copies, so a second-order loss must leave `firstOrder` false (the default):
 * every op then runs on the copies themselves.
 */
export function withPerExampleWeights<T>(batch: number, weights: ReadonlyMap<tf.Variable, tf.Tensor>, fn: () => T, firstOrder = false): T {
  if (active) throw new Error('per-example weights are already active (nested per-example passes are not supported)');
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`per-example weights need a batch of at least one example, got ${batch}`);
  for (const [v, w] of weights) {
    if (w.rank !== v.rank + 1 || w.shape[0] !== batch || v.shape.some((d, i) => d !== w.shape[i + 1])) {
      throw new Error(`per-example copy of ${v.name} has shape [${w.shape}], expected [${batch},${v.shape}]`);
    }
  }
  active = { batch, weights, firstOrder };
  try {
    return fn();
  } finally {
    active = null;
  }
}

/** The per-example copy of `v` while a per-example pass runs, else null. */
export function perExampleWeight(v: tf.Tensor | null): tf.Tensor | null {
  if (!active || !v) return null;
  return active.weights.get(v as tf.Variable) ?? null;
}

/** Examples of a layer input whose leading axis is `n` = B·r (example-major), B = the copies' count; throws when B does not divide n. */
function groups(n: number, b: number, what: string): number {
  if (n % b !== 0) throw new Error(`${what}: a per-example pass over ${b} examples got a leading axis of ${n}, not a multiple`);
  return b;
}

/** A bias or shift: its per-example copy [B, C] as [B, 1, C], or a shared one [C] as it is (broadcast). */
function perExampleRow(t: tf.Tensor, b: number): tf.Tensor {
  return t.rank === 1 ? t : tf.reshape(t, [b, 1, t.shape[1]!]);
}

/** x [N, in] · kernel_b [in, out] (+ bias) with per-example kernels [B, in, out], the bias [B, out] or shared [out]. */
export function perExampleDense(x: tf.Tensor2D, kernel: tf.Tensor, bias: tf.Tensor | null): tf.Tensor2D {
  const [n, inUnits] = x.shape;
  const b = groups(n, kernel.shape[0], 'dense layer');
  const out = kernel.shape[2]!;
  let y = tf.matMul(tf.reshape(x, [b, n / b, inUnits]) as tf.Tensor3D, kernel as tf.Tensor3D) as tf.Tensor;
  if (bias) y = tf.add(y, perExampleRow(bias, b));
  return tf.reshape(y, [n, out]) as tf.Tensor2D;
}

/**
 * The k×k patches of x as tfjs's 'same' convolution with `stride` sees them: [N, H', W', k·k·C], each
 * patch ordered (row, column, channel) like a filter [k, k, C, O] reshaped to [k·k·C, O]. Built from pad,
 * slice, reshape and concat, which tfjs differentiates to any order.
 */
export function unfoldPatches(x: tf.Tensor4D, k: number, stride: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const s = stride;
  const ho = Math.ceil(h / s);
  const wo = Math.ceil(w / s);
  const padH = Math.max((ho - 1) * s + k - h, 0);
  const padW = Math.max((wo - 1) * s + k - w, 0);
  const top = Math.floor(padH / 2);
  const left = Math.floor(padW / 2);
  // Rows and columns up to a multiple of the stride that covers every window (the extra ones are never read).
  const hp = s * Math.max(Math.ceil((h + padH) / s), ho + Math.ceil((k - 1) / s));
  const wp = s * Math.max(Math.ceil((w + padW) / s), wo + Math.ceil((k - 1) / s));
  const bottom = hp - h - top;
  const right = wp - w - left;
  let xp = top || bottom || left || right ? tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]) : x;
  if (s > 1) {
    // Space to depth: [N, Hp, Wp, C] → [N, Hp/s, Wp/s, s·s·C], channel block (ry·s + rx) holding the pixels
    // at row ≡ ry, column ≡ rx (mod s). Then window offset (dy, dx) is block (dy mod s, dx mod s) shifted by
    // (⌊dy/s⌋, ⌊dx/s⌋): one slice per offset, no strided reads.
    const t = tf.transpose(tf.reshape(xp, [n * (hp / s), s, wp / s, s * c]), [0, 2, 1, 3]);
    xp = tf.reshape(t, [n, hp / s, wp / s, s * s * c]);
  }
  const parts: tf.Tensor4D[] = [];
  for (let dy = 0; dy < k; dy++) {
    for (let dx = 0; dx < k; dx++) {
      const block = ((dy % s) * s + (dx % s)) * c;
      parts.push(tf.slice(xp, [0, Math.floor(dy / s), Math.floor(dx / s), block], [n, ho, wo, c]) as tf.Tensor4D);
    }
  }
  return parts.length === 1 ? parts[0] : (tf.concat(parts, 3) as tf.Tensor4D);
}

/** 'same' conv2d of x [N, H, W, C] with per-example filters [B, k, k, C, O], the bias [B, O] or shared [O], N = B·r. */
export function perExampleConv(x: tf.Tensor4D, filter: tf.Tensor, bias: tf.Tensor | null, stride: number): tf.Tensor4D {
  const [n] = x.shape;
  const [, k, , c, o] = filter.shape;
  const b = groups(n, filter.shape[0], 'conv layer');
  const patches = unfoldPatches(x, k, stride);
  const [, ho, wo] = patches.shape;
  let y = tf.matMul(tf.reshape(patches, [b, (n / b) * ho * wo, k * k * c]) as tf.Tensor3D, tf.reshape(filter, [b, k * k * c, o]) as tf.Tensor3D) as tf.Tensor;
  if (bias) y = tf.add(y, perExampleRow(bias, b));
  return tf.reshape(y, [n, ho, wo, o]) as tf.Tensor4D;
}

/** x [N, …, C] ⊙ γ_b + β_b with per-example γ [B, C] and β [B, C] or shared [C] (a layer norm's affine part), N = B·r. */
export function perExampleScaleShift(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const c = x.shape[x.rank - 1];
  const b = groups(x.shape[0], gamma.shape[0], 'layer norm');
  const y = tf.add(tf.mul(tf.reshape(x, [b, -1, c]), tf.reshape(gamma, [b, 1, c])), perExampleRow(beta, b));
  return tf.reshape(y, x.shape);
}

/** Row labels[b] of example b's copy of a table [B, K, D]: [B, D] (one label per example). */
export function perExampleGather(table: tf.Tensor, labels: tf.Tensor1D): tf.Tensor2D {
  const [b, k] = table.shape;
  if (labels.shape[0] !== b) throw new Error(`embedding: a per-example pass over ${b} examples got ${labels.shape[0]} labels`);
  return tf.sum(tf.mul(tf.expandDims(tf.oneHot(labels, k), 2), table), 1) as tf.Tensor2D;
}

/**
 * A parameter that is added to (or tiled over) every example as it is, e.g. a class token or position
 * embeddings [1, …]: its per-example copy [B, 1, …] reshaped to [B, …] without the leading 1, or null
 * outside a per-example pass.
 */
export function perExampleParam(v: tf.Tensor): tf.Tensor | null {
  const w = perExampleWeight(v);
  if (!w) return null;
  if (v.shape[0] !== 1) throw new Error(`per-example parameter ${v.shape} must have a leading axis of 1`);
  return tf.reshape(w, [w.shape[0], ...v.shape.slice(1)]);
}

/**
 * A dense layer inside a per-example pass: x [N, in] · kernel + bias with example b's copies, N = B·r.
 * Null when the kernel has no copy (outside a pass).
 */
export function perExampleDenseLayer(x: tf.Tensor2D, kernel: tf.Tensor, bias: tf.Tensor | null): tf.Tensor2D | null {
  const k = perExampleWeight(kernel);
  if (!k) return null;
  const bc = perExampleWeight(bias);
  if (!active!.firstOrder) return perExampleDense(x, k, bc ?? bias);
  const [n, inUnits] = x.shape;
  const b = groups(n, k.shape[0], 'dense layer');
  const out = kernel.shape[1]!;
  const forward = (xx: tf.Tensor2D) => fusedLayerOps().dense(xx, kernel as tf.Tensor2D, bias as tf.Tensor1D | null);
  const inputs = bc ? [x, k, bc] : [x, k];
  const f = tf.customGrad((...args: (tf.Tensor | ((ts: tf.Tensor[]) => void))[]) => {
    const [xx] = args as tf.Tensor[];
    const save = args[args.length - 1] as (ts: tf.Tensor[]) => void;
    save([xx]);
    return {
      value: forward(xx as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs] = saved;
        const dy3 = tf.reshape(dy, [b, n / b, out]) as tf.Tensor3D;
        const grads = [tf.matMul(dy as tf.Tensor2D, kernel as tf.Tensor2D, false, true), tf.matMul(tf.reshape(xs, [b, n / b, inUnits]) as tf.Tensor3D, dy3, true, false)];
        if (bc) grads.push(tf.sum(dy3, 1));
        return grads;
      },
    };
  });
  return f(...inputs) as tf.Tensor2D;
}

/**
 * A 'same' conv layer inside a per-example pass: conv(x, filter) + bias with example b's copies, x
 * [N, H, W, C], N = B·r. Null when the filter has no copy (outside a pass).
 */
export function perExampleConvLayer(x: tf.Tensor4D, filter: tf.Tensor, bias: tf.Tensor | null, stride: number): tf.Tensor4D | null {
  const f = perExampleWeight(filter);
  if (!f) return null;
  const bc = perExampleWeight(bias);
  if (!active!.firstOrder) return perExampleConv(x, f, bc ?? bias, stride);
  const [n] = x.shape;
  const [k, , c, o] = filter.shape;
  const b = groups(n, f.shape[0], 'conv layer');
  const inputs = bc ? [x, f, bc] : [x, f];
  const op = tf.customGrad((...args: (tf.Tensor | ((ts: tf.Tensor[]) => void))[]) => {
    const [xx] = args as tf.Tensor[];
    const save = args[args.length - 1] as (ts: tf.Tensor[]) => void;
    save([xx]);
    return {
      value: fusedLayerOps().conv(xx as tf.Tensor4D, filter as tf.Tensor4D, bias as tf.Tensor1D | null, stride, null),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const xs = saved[0] as tf.Tensor4D;
        const [, ho, wo] = dy.shape;
        const rows = (n / b) * ho! * wo!;
        const dy3 = tf.reshape(dy, [b, rows, o]) as tf.Tensor3D;
        const patches = tf.reshape(unfoldPatches(xs, k, stride), [b, rows, k * k * c]) as tf.Tensor3D;
        const grads = [
          tf.conv2dTranspose(dy as tf.Tensor4D, filter as tf.Tensor4D, xs.shape, stride, 'same'),
          tf.reshape(tf.matMul(patches, dy3, true, false), [b, k, k, c, o]),
        ];
        if (bc) grads.push(tf.sum(dy3, 1));
        return grads;
      },
    };
  });
  return op(...inputs) as tf.Tensor4D;
}
