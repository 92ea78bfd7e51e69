import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.ts';
import type { WeightSet } from '../weights.ts';
import { fedAvg, FedAvgAccumulator } from './fedavg.ts';
import { AggregationError, layoutOf } from './types.ts';
import { FP, upd, values, ws } from './testUtil.ts';

function bits(w: WeightSet): number[][] {
  return w.tensors.map((t) => Array.from(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length)));
}

describe('FedAvgAccumulator', () => {
  it('equals the hand-computed example-weighted mean', () => {
    const acc = new FedAvgAccumulator();
    acc.add(upd([1, 2, 3, 4], [0, 10, -1], 1));
    acc.add(upd([5, 6, 7, 8], [4, 20, 1], 3));
    // a: (1·[1,2,3,4] + 3·[5,6,7,8]) / 4 = [4, 5, 6, 7]
    // b: (1·[0,10,-1] + 3·[4,20,1]) / 4 = [3, 17.5, 0.5]
    expect(values(acc.result())).toEqual([
      [4, 5, 6, 7],
      [3, 17.5, 0.5],
    ]);
    expect(acc.count()).toBe(2);
    expect(acc.totalExamples()).toBe(4);
  });

  it('rounds the float64 mean once to float32', () => {
    const acc = new FedAvgAccumulator();
    acc.add(upd([0.1, 0, 0, 0], [0, 0, 0], 2));
    acc.add(upd([0.2, 0, 0, 0], [0, 0, 0], 1));
    const expected = Math.fround((2 * Math.fround(0.1) + Math.fround(0.2)) / 3);
    expect(acc.result().tensors[0].data[0]).toBe(expected);
  });

  it('returns exactly the weights of a single client, whatever its example count', () => {
    const rng = new Rng(1);
    const patterns = new Uint32Array([0x80000000, 0x00000001, 0x807fffff, 0x7f7fffff, 0xff7fffff, 0x00800000]);
    for (const examples of [1, 3, 7919, 2 ** 31 + 11]) {
      const w = ws(
        Array.from({ length: 4 }, () => rng.normal() * 1e3),
        [0, 0, 0],
      );
      w.tensors[1].data = new Float32Array(patterns.slice(0, 3).buffer);
      w.tensors[0].data.set(new Float32Array(patterns.slice(2, 6).buffer).subarray(0, 2), 2);
      const acc = new FedAvgAccumulator();
      acc.add({ weights: w, examples });
      expect(bits(acc.result())).toEqual(bits(w));
    }
  });

  it('keeps -0 when every client sends -0', () => {
    const acc = new FedAvgAccumulator();
    acc.add(upd([-0, 0, 0, 0], [0, 0, 0], 2));
    acc.add(upd([-0, 0, 0, 0], [0, 0, 0], 5));
    expect(Object.is(acc.result().tensors[0].data[0], -0)).toBe(true);
  });

  it('streams: the result can be read between updates and does not alias internal state', () => {
    const acc = new FedAvgAccumulator();
    acc.add(upd([2, 2, 2, 2], [2, 2, 2], 1));
    const first = acc.result();
    expect(values(first)[0]).toEqual([2, 2, 2, 2]);
    first.tensors[0].data[0] = 100;
    acc.add(upd([4, 4, 4, 4], [4, 4, 4], 1));
    expect(values(acc.result())).toEqual([
      [3, 3, 3, 3],
      [3, 3, 3],
    ]);
  });

  it('keeps names, shapes and fingerprint', () => {
    const r = fedAvg([upd([1, 2, 3, 4], [5, 6, 7])]);
    expect(layoutOf(r)).toEqual({ fingerprint: FP, tensors: [{ name: 'a', shape: [2, 2] }, { name: 'b/bn1/gamma', shape: [3] }] });
  });

  it('averages many clients accurately (float64 accumulation)', () => {
    const rng = new Rng(2);
    const updates = Array.from({ length: 50 }, () => upd(
      Array.from({ length: 4 }, () => rng.normal()),
      Array.from({ length: 3 }, () => rng.normal()),
      1 + rng.int(500),
    ));
    const result = fedAvg(updates);
    const total = updates.reduce((s, u) => s + u.examples, 0);
    for (let k = 0; k < 2; k++) {
      result.tensors[k].data.forEach((v, i) => {
        const exact = updates.reduce((s, u) => s + u.examples * u.weights.tensors[k].data[i], 0) / total;
        expect(v).toBe(Math.fround(exact));
      });
    }
  });

  it('refuses mismatched updates without changing its state', () => {
    const acc = new FedAvgAccumulator();
    acc.add(upd([1, 1, 1, 1], [1, 1, 1], 2));
    const bad = upd([9, 9, 9, 9], [9, 9, NaN], 5);
    expect(() => acc.add(bad)).toThrow(AggregationError);
    const other = { weights: ws([9, 9, 9, 9], [9, 9, 9], 'feedfeedfeedfeed'), examples: 1 };
    expect(() => acc.add(other)).toThrow(/fingerprint/);
    expect(acc.count()).toBe(1);
    expect(acc.totalExamples()).toBe(2);
    expect(values(acc.result())).toEqual([
      [1, 1, 1, 1],
      [1, 1, 1],
    ]);
  });

  it('checks updates against the reference layout when given', () => {
    const acc = new FedAvgAccumulator({ fingerprint: 'other', tensors: [{ name: 'a', shape: [4] }] });
    try {
      acc.add(upd([1, 1, 1, 1], [1, 1, 1]));
      expect.unreachable();
    } catch (e) {
      expect((e as AggregationError).reason).toBe('fingerprint');
    }
  });

  it('has no result before the first update', () => {
    try {
      new FedAvgAccumulator().result();
      expect.unreachable();
    } catch (e) {
      expect((e as AggregationError).reason).toBe('empty');
    }
    expect(() => fedAvg([])).toThrow(/no update/);
  });
});
