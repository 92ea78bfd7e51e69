import { describe, expect, it } from 'vitest';
import type { WeightSet } from '../weights.ts';
import { applyGlobalWeights, isBatchNormPolicy, weightsToUpload, type BatchNormPolicy } from './batchNormPolicy.ts';

const NAMES = ['g/conv1/kernel', 'g/bn1/gamma', 'g/bn1/movingMean', 'g/dense/bias', 'bn/beta', 'g/bnx/kernel'];

function weights(value: number, fingerprint = 'fp'): WeightSet {
  return { fingerprint, tensors: NAMES.map((name) => ({ name, shape: [2], data: new Float32Array([value, value]) })) };
}

const firstValues = (w: WeightSet) => w.tensors.map((t) => t.data[0]);

describe('applyGlobalWeights', () => {
  it("'local' (FedBN) keeps the local batch-norm tensors and takes everything else from global", () => {
    const merged = applyGlobalWeights(weights(1), weights(2), 'local');
    // bn1/... and a top-level bn/... are batch norm; "bnx" is not.
    expect(firstValues(merged)).toEqual([1, 2, 2, 1, 2, 1]);
    expect(merged.tensors.map((t) => t.name)).toEqual(NAMES);
    expect(merged.fingerprint).toBe('fp');
  });

  it("'average' takes everything from global", () => {
    expect(firstValues(applyGlobalWeights(weights(1), weights(2), 'average'))).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('takes everything from global when there are no local weights yet', () => {
    expect(firstValues(applyGlobalWeights(weights(1), undefined, 'local'))).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('returns copies that alias neither input', () => {
    const global = weights(1);
    const local = weights(2);
    const merged = applyGlobalWeights(global, local, 'local');
    merged.tensors.forEach((t) => (t.data[0] = 99));
    merged.tensors[0].shape[0] = 7;
    expect(firstValues(global)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(firstValues(local)).toEqual([2, 2, 2, 2, 2, 2]);
    expect(global.tensors[0].shape).toEqual([2]);
  });

  it('refuses local weights of another architecture or layout', () => {
    expect(() => applyGlobalWeights(weights(1), weights(2, 'other'), 'local')).toThrow(/different architectures/);
    const reshaped = weights(2);
    reshaped.tensors[1].shape = [1, 2];
    expect(() => applyGlobalWeights(weights(1), reshaped, 'local')).toThrow(/tensor #1 is g\/bn1\/gamma \[1, 2\]/);
    // With 'average' the local weights are ignored.
    expect(() => applyGlobalWeights(weights(1), weights(2, 'other'), 'average')).not.toThrow();
  });

  it('refuses unknown policies', () => {
    expect(() => applyGlobalWeights(weights(1), undefined, 'fedprox' as BatchNormPolicy)).toThrow(/unknown batch-norm policy "fedprox"/);
    expect(isBatchNormPolicy('local')).toBe(true);
    expect(isBatchNormPolicy('Local')).toBe(false);
  });
});

describe('weightsToUpload', () => {
  it("'local' (FedBN) sends the global batch-norm values and the trained rest", () => {
    const up = weightsToUpload(weights(3), weights(1), 'local');
    expect(firstValues(up)).toEqual([3, 1, 1, 3, 1, 3]);
    expect(up.tensors.map((t) => t.name)).toEqual(NAMES);
  });

  it("'average' sends the trained weights as they are", () => {
    const trained = weights(3);
    expect(weightsToUpload(trained, weights(1), 'average')).toBe(trained);
  });

  it('copies the global values (the upload aliases no global tensor)', () => {
    const global = weights(1);
    const up = weightsToUpload(weights(3), global, 'local');
    up.tensors[1].data[0] = 99;
    expect(firstValues(global)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('refuses weights of another architecture or layout', () => {
    expect(() => weightsToUpload(weights(3), weights(1, 'other'), 'local')).toThrow(/different architectures/);
    const reshaped = weights(1);
    reshaped.tensors[2].shape = [1, 2];
    expect(() => weightsToUpload(weights(3), reshaped, 'local')).toThrow(/tensor #2 is g\/bn1\/movingMean \[2\] but g\/bn1\/movingMean \[1, 2\]/);
    expect(() => weightsToUpload(weights(3), weights(1), 'fedprox' as BatchNormPolicy)).toThrow(/unknown batch-norm policy/);
  });
});
