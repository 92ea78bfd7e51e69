/**
 * What every in-page side of the WebGPU tests needs (test/webgpu/page.ts and the files it registers):
 * the comparison of two arrays the tests assert on, and switching the page to the webgpu backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { parseGanConfig, type GanConfigInput } from '../../shared/config/ganConfig.ts';
import { createGan } from '../../shared/gan/gan.ts';
import { gradientPenalty } from '../../shared/gan/losses.ts';
import { enableFastWebGPU, type FastWebGPUOptions } from '../../shared/kernels/webgpu/index.ts';

export interface Diff {
  /** ‖a − b‖ / ‖b‖ */
  rel: number;
  /** max |a − b| / max |b| */
  maxRel: number;
  n: number;
  finite: boolean;
  /** max |b|: a reference of zeros (e.g. a lost device reads back zeros) would make any comparison pass. */
  maxRef: number;
}

/** How far `a` is from the reference `b`. */
export function diff(a: ArrayLike<number>, b: ArrayLike<number>): Diff {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  let maxD = 0;
  let maxB = 0;
  let finite = true;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    if (!Number.isFinite(a[i])) finite = false;
    num += d * d;
    den += b[i] * b[i];
    maxD = Math.max(maxD, Math.abs(d));
    maxB = Math.max(maxB, Math.abs(b[i]));
  }
  return { rel: den > 0 ? Math.sqrt(num / den) : Math.sqrt(num), maxRel: maxB > 0 ? maxD / maxB : maxD, n: a.length, finite, maxRef: maxB };
}

/** Switch to the webgpu backend (throws when it does not initialise) and return it. */
export async function useWebGPU(): Promise<WebGPUBackend> {
  if (tf.getBackend() !== 'webgpu' && !(await tf.setBackend('webgpu'))) throw new Error('webgpu backend did not initialise');
  await tf.ready();
  return tf.backend() as WebGPUBackend;
}

export interface CriticCase {
  imageSize: number;
  batch: number;
  discriminator?: string;
  /** Class of each item (default alternating 0, 1, …). */
  labels?: number[];
}

/**
 * A tiny WGAN-GP critic's loss and its gradient with respect to every critic weight (Wasserstein term plus
 * the gradient penalty, so second order through every layer) on the fast path with options `got`, against
 * the same with options `ref` (same weights, tiles and penalty draws).
 */
export async function wganGpCriticGrads(c: CriticCase, ref: FastWebGPUOptions, got: FastWebGPUOptions): Promise<{ loss: Diff; grads: Diff; n: number }> {
  await useWebGPU();
  const run = async (opts: FastWebGPUOptions) => {
    const fast = enableFastWebGPU({ seed: 5, ...opts });
    try {
      const gan = createGan(parseGanConfig({ gan: 'wgan-gp', imageSize: c.imageSize, nCritic: 1, generator: { baseChannels: 8 }, discriminator: { baseChannels: 8, ...(c.discriminator ? { type: c.discriminator } : {}) }, seed: 11 } as GanConfigInput));
      const images = tf.randomUniform([c.batch, c.imageSize, c.imageSize, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
      const fake = tf.randomUniform([c.batch, c.imageSize, c.imageSize, 3], -1, 1, 'float32', 2) as tf.Tensor4D;
      const labels = tf.tensor1d(c.labels ?? Array.from({ length: c.batch }, (_, i) => i % 2), 'int32');
      const dVars = gan.D.params.trainableVariables();
      const { value, grads } = tf.variableGrads(() => {
        const critic = (x: tf.Tensor4D) => gan.D.apply(x, labels, true).score;
        const w = tf.sub(tf.mean(critic(fake)), tf.mean(critic(images)));
        return tf.add(w, gradientPenalty(critic, images, fake, 10, 123)) as tf.Scalar;
      }, dVars);
      const loss = Array.from(await value.data());
      const flat = (await Promise.all(Object.keys(grads).sort().map((k) => grads[k].data()))).flatMap((d) => Array.from(d));
      tf.dispose([value, images, fake, labels, ...Object.values(grads)]);
      gan.dispose();
      return { loss, flat };
    } finally {
      fast.disable();
    }
  };
  const r = await run(ref);
  const g = await run(got);
  return { loss: diff(g.loss, r.loss), grads: diff(g.flat, r.flat), n: r.flat.length };
}
