import { architectureFingerprint } from '../shared/codec/fingerprint.ts';
import type { WeightSet } from '../shared/weights.ts';

/** A GAN-like layout of `params` float32 values: six large kernels and a few batch-norm-sized tensors. */
export function benchLayout(params: number): { name: string; shape: number[] }[] {
  const layout: { name: string; shape: number[] }[] = [];
  let left = params;
  for (let i = 0; left > 0; i++) {
    const bn = i % 4 === 3;
    const size = Math.min(left, bn ? 256 : Math.ceil(params / 6));
    layout.push({ name: bn ? `g/bn${i}/gamma` : `g/conv${i}/kernel`, shape: [size] });
    left -= size;
  }
  return layout;
}

/** Deterministic weights: value = base + small pattern (cheap to generate, not all equal). */
export function benchWeights(params: number, base: number): WeightSet {
  const layout = benchLayout(params);
  return {
    fingerprint: architectureFingerprint(layout, 'bench'),
    tensors: layout.map(({ name, shape }) => {
      const data = new Float32Array(shape[0]);
      for (let i = 0; i < data.length; i++) data[i] = base + ((i % 97) - 48) * 1e-4;
      return { name, shape, data };
    }),
  };
}
