import * as tf from '@tensorflow/tfjs-core';
import type { ParamStore, WeightTransform } from './params.ts';
import { perExampleWeight } from './perExample.ts';

/** Power iterations run when a weight is created, so that σ is a good estimate from the first step. */
export const SPECTRAL_INIT_ITERATIONS = 30;

interface Entry {
  name: string;
  /** The weight as a matrix M [fanIn, out]: a conv kernel [k, k, in, out] as [k·k·in, out]. */
  shape: [number, number];
  weight: tf.Variable;
  /** Estimate of M's top right singular vector [out], unit norm. */
  u: tf.Variable;
  /** Estimate of M's top left singular vector [fanIn], unit norm. */
  v: tf.Variable;
}

/**
 * Spectral normalisation (Miyato et al. 2018): a layer computes with W / σ(W), σ the largest singular value
 * of W as a matrix [fanIn, out], so that every layer of the discriminator is 1-Lipschitz and the
 * discriminator cannot sharpen without bound around a few real tiles.
 *
 * σ is estimated by power iteration on two unit vectors kept with the weight, u [out] and v [fanIn]:
 * v ← M·u / ‖M·u‖, u ← Mᵀ·v / ‖Mᵀ·v‖, then σ = vᵀ·M·u. The layer's forward pass uses σ = vᵀ·M·u with u and
 * v held constant, so the gradient with respect to W carries the term −(W/σ²)·(v·uᵀ) as in the paper
 * (u and v are non-trainable variables: the optimizers never see them). `powerIteration()` advances every
 * estimate one iteration; the trainer calls it once per training step, before the discriminator's
 * update(s) (shared/gan/trainer.ts). Creation runs SPECTRAL_INIT_ITERATIONS iterations from a seeded
 * random u.
 *
 * u and v are weights like any other (`<weight>/sn_u`, `<weight>/sn_v`): they travel, are averaged by
 * FedAvg and are checkpointed, so a hospital's round starts from the federation's estimate. An average of
 * unit vectors is not a unit vector, but the next power iteration normalises it, and σ = vᵀMu only needs
 * u and v close to the singular vectors.
 *
 * Inside a per-example pass (differential privacy) the layer would compute with each example's raw copy
 * of W: refused, with the reason in the config check (dpRefusal, shared/config/ganConfig.ts).
 */
export class SpectralNorm implements WeightTransform {
  private readonly entries: Entry[] = [];

  wrap(p: ParamStore, name: string, weight: tf.Variable): () => tf.Tensor {
    const fanIn = weight.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const out = weight.shape[weight.shape.length - 1];
    const u = p.create(`${name}/sn_u`, [out], { normal: 1 }, false);
    const v = p.create(`${name}/sn_v`, [fanIn], 'zeros', false);
    const entry: Entry = { name: `${p.prefix}/${name}`, shape: [fanIn, out], weight, u, v };
    this.entries.push(entry);
    for (let i = 0; i < SPECTRAL_INIT_ITERATIONS; i++) iterate(entry);
    return () => {
      if (perExampleWeight(weight)) {
        throw new Error(`${entry.name} is spectrally normalised and cannot run in a per-example pass (differential privacy): turn discriminator.spectralNorm off`);
      }
      return tf.div(weight, sigmaOf(entry));
    };
  }

  /** One power iteration for every weight (no gradient: u and v are state). */
  powerIteration(): void {
    for (const e of this.entries) iterate(e);
  }

  /** The current estimates σ = vᵀ·M·u, by weight name (for tests and diagnostics). */
  sigmas(): Map<string, number> {
    return new Map(this.entries.map((e) => [e.name, tf.tidy(() => sigmaOf(e).dataSync()[0])]));
  }

  get size(): number {
    return this.entries.length;
  }
}

/** σ = vᵀ·M·u, differentiable with respect to the weight (u, v constant). */
function sigmaOf(e: Entry): tf.Scalar {
  const m = tf.reshape(e.weight, e.shape) as tf.Tensor2D;
  return tf.sum(tf.mul(tf.matMul(m, tf.reshape(e.u, [-1, 1]) as tf.Tensor2D), tf.reshape(e.v, [-1, 1]))) as tf.Scalar;
}

function unit(x: tf.Tensor): tf.Tensor {
  // ε keeps an all-zero weight (or average) from dividing by zero, as torch.nn.utils.spectral_norm does.
  return tf.div(x, tf.add(tf.norm(x), 1e-12));
}

function iterate(e: Entry): void {
  const [nu, nv] = tf.tidy(() => {
    const m = tf.reshape(e.weight, e.shape) as tf.Tensor2D;
    const v = unit(tf.reshape(tf.matMul(m, tf.reshape(e.u, [-1, 1]) as tf.Tensor2D), [-1]));
    const u = unit(tf.reshape(tf.matMul(tf.reshape(v, [1, -1]) as tf.Tensor2D, m), [-1]));
    return [tf.keep(u), tf.keep(v)];
  });
  e.u.assign(nu);
  e.v.assign(nv);
  nu.dispose();
  nv.dispose();
}
