/**
 * What every in-page side of the WebGPU tests needs (test/webgpu/page.ts and the files it registers):
 * the comparison of two arrays the tests assert on, and switching the page to the webgpu backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';

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
