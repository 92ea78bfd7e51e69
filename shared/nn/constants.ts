import * as tf from '@tensorflow/tfjs-core';

/**
 * Constant tensors a layer needs at every step (index ramps, shift and interpolation matrices), made once
 * per backend and key and kept: every step then reuses the same tensor (on a GPU, uploaded once, rather than
 * built on the host and uploaded at every step). A constant whose tensor was disposed is made again.
 */
const constants = new Map<string, tf.Tensor>();

export function cachedConstant<T extends tf.Tensor>(key: string, make: () => T): T {
  const k = `${tf.getBackend()}:${key}`;
  const hit = constants.get(k);
  if (hit && !hit.isDisposed) return hit as T;
  const t = tf.keep(tf.tidy(make));
  constants.set(k, t);
  return t;
}
