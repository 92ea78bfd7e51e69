import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { datasetFromTiles, type Dataset } from '../data/dataset.ts';
import { planLocalTraining, progressAt, stepsPerEpoch, trainLocal, type LocalProgress } from './localTraining.ts';
import type { GanTrainer } from './trainer.ts';

/** `n` 2×2 tiles whose label is their index (so a batch's labels say which tiles it holds). */
function indexedData(n: number): Dataset {
  return datasetFromTiles(
    Array.from({ length: n }, (_, i) => ({ pixels: new Uint8Array(12).fill(i), label: i })),
    2,
    n,
  );
}

/** A trainer that records each batch's tiles; its step k (1-based) returns dLoss k and gLoss 10k. */
function recordingTrainer() {
  const batches: number[][] = [];
  const trainer = {
    step: (b: { images: tf.Tensor4D; labels: tf.Tensor1D }) => {
      batches.push(Array.from(b.labels.dataSync()));
      const k = batches.length;
      return { dLoss: tf.scalar(k), gLoss: tf.scalar(10 * k) };
    },
    resetOptimizers() {},
    dispose() {},
  } as unknown as GanTrainer;
  return { trainer, batches };
}

describe('stepsPerEpoch: the one definition of an epoch', () => {
  it.each([
    // [examples, batch size, steps]: floor(examples / min(batch, examples))
    [16, 4, 4],
    [17, 4, 4],
    [19, 4, 4],
    [20, 4, 5],
    [3, 8, 1],
    [8, 8, 1],
    [9, 8, 1],
    [1, 64, 1],
    [1200, 64, 18],
  ])('%i tiles in batches of %i: %i steps', (examples, batch, steps) => {
    expect(stepsPerEpoch(examples, batch)).toBe(steps);
  });

  it('refuses no data and bad batch sizes', () => {
    expect(() => stepsPerEpoch(0, 4)).toThrow(/at least one example, got 0/);
    expect(() => stepsPerEpoch(10, 0)).toThrow(/batch size must be a whole number ≥ 1, got 0/);
    expect(() => planLocalTraining(10, 4, { steps: 0 })).toThrow(/local steps must be a whole number ≥ 1, got 0/);
    expect(() => planLocalTraining(10, 4, { steps: 2.5 })).toThrow(/local steps must be a whole number ≥ 1, got 2.5/);
  });

  it('plans the budget of steps in as many passes as it needs, with the batch capped by the tiles', () => {
    expect(planLocalTraining(10, 4, { steps: 6 })).toEqual({ examples: 10, batch: 4, stepsPerEpoch: 2, epochs: 3, totalSteps: 6 });
    expect(planLocalTraining(10, 4, { steps: 5 })).toEqual({ examples: 10, batch: 4, stepsPerEpoch: 2, epochs: 3, totalSteps: 5 });
    expect(planLocalTraining(10, 4, { steps: 1 })).toEqual({ examples: 10, batch: 4, stepsPerEpoch: 2, epochs: 1, totalSteps: 1 });
    expect(planLocalTraining(3, 8, { steps: 4 })).toEqual({ examples: 3, batch: 3, stepsPerEpoch: 1, epochs: 4, totalSteps: 4 });
    // 1,200 tiles in batches of 64: 18 steps a pass; 200 steps = 11 whole passes and 2 steps of a 12th.
    expect(planLocalTraining(1200, 64, { steps: 200 })).toEqual({ examples: 1200, batch: 64, stepsPerEpoch: 18, epochs: 12, totalSteps: 200 });
  });

  it('maps steps done to pass, step in pass and fraction, the last pass partial', () => {
    const plan = planLocalTraining(10, 4, { steps: 5 }); // 2 steps a pass, 5 in all
    const at = (d: number) => {
      const p = progressAt(d, plan);
      return [p.epoch, p.step, p.fraction];
    };
    expect([0, 1, 2, 3, 4, 5, 9].map(at)).toEqual([
      [0, 0, 0],
      [0, 1, 1 / 5],
      [0, 2, 2 / 5],
      [1, 1, 3 / 5],
      [1, 2, 4 / 5],
      [2, 1, 1],
      [2, 1, 1], // clamped to the plan
    ]);
    expect(progressAt(3, plan)).toMatchObject({ done: 3, total: 5, epochs: 3, stepsPerEpoch: 2 });
  });
});

describe('trainLocal', () => {
  it('runs the plan: full batches of distinct tiles, a fresh shuffle each pass, the seed decides the order', async () => {
    const data = indexedData(10);
    const run = async (seed: number) => {
      const { trainer, batches } = recordingTrainer();
      const r = await trainLocal(trainer, data, { plan: planLocalTraining(10, 4, { steps: 4 }), seed });
      return { r, batches };
    };
    const a = await run(5);
    expect(a.r.steps).toBe(4);
    expect(a.batches.map((b) => b.length)).toEqual([4, 4, 4, 4]);
    for (const epoch of [a.batches.slice(0, 2).flat(), a.batches.slice(2).flat()]) {
      expect(new Set(epoch).size).toBe(8); // no tile twice in an epoch
      expect(epoch.every((i) => i >= 0 && i < 10)).toBe(true);
    }
    expect(a.batches.slice(0, 2)).not.toEqual(a.batches.slice(2));
    expect((await run(5)).batches).toEqual(a.batches);
    expect((await run(6)).batches).not.toEqual(a.batches);
    data.dispose();
  });

  it('trains exactly the budget when it is more than one pass and the tiles fewer than a batch: every step all tiles, reshuffled each pass', async () => {
    const data = indexedData(3);
    const run = async (seed: number) => {
      const { trainer, batches } = recordingTrainer();
      const r = await trainLocal(trainer, data, { plan: planLocalTraining(3, 8, { steps: 7 }), seed });
      return { r, batches };
    };
    const a = await run(11);
    expect(a.r.steps).toBe(7);
    expect(a.batches).toHaveLength(7);
    for (const b of a.batches) expect([...b].sort()).toEqual([0, 1, 2]);
    // A new shuffle each pass: 7 passes of 3 tiles cannot all come out in one order (3! = 6 orders).
    expect(new Set(a.batches.map((b) => b.join())).size).toBeGreaterThan(1);
    expect((await run(11)).batches).toEqual(a.batches);
    expect((await run(12)).batches).not.toEqual(a.batches);
    data.dispose();
  });

  it('trains exactly the budget when it ends part-way through a pass; each pass holds distinct tiles', async () => {
    const data = indexedData(10);
    const { trainer, batches } = recordingTrainer();
    const r = await trainLocal(trainer, data, { plan: planLocalTraining(10, 4, { steps: 5 }), seed: 3 });
    expect(r.steps).toBe(5);
    expect(batches.map((b) => b.length)).toEqual([4, 4, 4, 4, 4]);
    for (const pass of [batches.slice(0, 2).flat(), batches.slice(2, 4).flat()]) expect(new Set(pass).size).toBe(8);
    // Losses: the last complete pass (steps 3, 4), not the lone step 5 of the partial third pass.
    expect([r.dLoss, r.gLoss]).toEqual([3.5, 35]);
    data.dispose();
  });

  it('reports progress after each step and each pass with the mean losses of the last complete pass, and leaks no tensors', async () => {
    const data = indexedData(10);
    const before = tf.memory().numTensors;
    const { trainer } = recordingTrainer();
    const seen: LocalProgress[] = [];
    const stepLosses: number[][] = [];
    const r = await trainLocal(trainer, data, {
      plan: planLocalTraining(10, 4, { steps: 4 }),
      seed: 1,
      onProgress: (p) => seen.push(p),
      onStep: (done, l) => stepLosses.push([done, l.dLoss.dataSync()[0], l.gLoss.dataSync()[0]]),
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(stepLosses).toEqual([
      [1, 1, 10],
      [2, 2, 20],
      [3, 3, 30],
      [4, 4, 40],
    ]);
    expect(seen.map((p) => [p.done, p.epoch, p.step, p.dLoss ?? null])).toEqual([
      [0, 0, 0, null],
      [1, 0, 1, null],
      [2, 0, 2, null],
      [2, 0, 2, 1.5], // end of epoch 1: mean of steps 1, 2
      [3, 1, 1, 1.5],
      [4, 1, 2, 1.5],
      [4, 1, 2, 3.5], // end of epoch 2: mean of steps 3, 4
    ]);
    expect([r.dLoss, r.gLoss]).toEqual([3.5, 35]);
    data.dispose();
  });

  it('stops between steps when asked; the losses are those of the last complete pass, or of the steps done when none completed', async () => {
    const data = indexedData(10);
    const stopAt = async (n: number) => {
      const { trainer, batches } = recordingTrainer();
      return trainLocal(trainer, data, { plan: planLocalTraining(10, 4, { steps: 4 }), seed: 1, shouldStop: () => batches.length >= n });
    };
    const three = await stopAt(3);
    expect([three.steps, three.dLoss]).toEqual([3, 1.5]); // pass 1 (steps 1, 2) complete; step 3 alone does not count
    const one = await stopAt(1);
    expect([one.steps, one.dLoss, one.gLoss]).toEqual([1, 1, 10]); // no pass completed: the steps done
    data.dispose();
  });

  it('awaits beforeStep before each step', async () => {
    const data = indexedData(10);
    const { trainer, batches } = recordingTrainer();
    const order: string[] = [];
    await trainLocal(trainer, data, {
      plan: planLocalTraining(10, 4, { steps: 2 }),
      seed: 1,
      beforeStep: async () => {
        await new Promise((r) => setTimeout(r, 1));
        order.push(`before ${batches.length + 1}`);
      },
      onStep: (done) => order.push(`step ${done}`),
    });
    expect(order).toEqual(['before 1', 'step 1', 'before 2', 'step 2']);
    data.dispose();
  });
});
