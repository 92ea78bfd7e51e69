import { afterEach, describe, expect, it } from 'vitest';
import { architectureFingerprint } from '../shared/codec/fingerprint.ts';
import type { FederationClient, TrainFn } from '../shared/protocol/federationClient.ts';
import type { WeightSet } from '../shared/weights.ts';
import { IN_PLACE_MIN_BYTES } from './receiveInPlace.ts';
import { nodeClient, startTestServer, type TestServer } from './testing/federation.ts';

/**
 * Updates above the in-place threshold (about 1.6 MB here), over real sockets: received into the reused
 * buffer of the server's ReceiveBufferPool (FedAvg) or into fresh ones (median, which keeps its updates).
 * Every update has different values, so a buffer reused too early would show in the aggregate.
 */

const SPEC = [
  { name: 'g/conv1/kernel', shape: [300, 1000] },
  { name: 'g/bn1/gamma', shape: [7] },
  { name: 'd/dense/kernel', shape: [100_001] },
];
const FP = architectureFingerprint(SPEC, 'large-update-test');
const PARAMS = SPEC.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);

/** Weights whose value at (tensor t, index i) is f(t, i). */
function weights(f: (t: number, i: number) => number): WeightSet {
  return {
    fingerprint: FP,
    tensors: SPEC.map((s, t) => {
      const data = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < data.length; i++) data[i] = f(t, i);
      return { name: s.name, shape: [...s.shape], data };
    }),
  };
}
const pattern = (h: number) => (t: number, i: number) => h + 0.5 * t + (i % 5) * 0.25;

let server: TestServer | undefined;
const clients: FederationClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  await server?.cleanup();
  server = undefined;
});

async function round(aggregator: { type: 'fedavg' } | { type: 'median' }, hospitals: number[], examples: (h: number) => number) {
  server = await startTestServer(
    { rounds: 1, minFit: hospitals.length, minAvailable: hospitals.length, minCompletion: hospitals.length, aggregator, roundDeadlineSeconds: 60 },
    { initialWeights: async () => weights(() => 0) },
  );
  const train = (h: number): TrainFn => async () => ({ weights: weights(pattern(h)), examples: examples(h), dLoss: 1, gLoss: 1 });
  await Promise.all(
    hospitals.map((h) => {
      const c = nodeClient(server!, `h${h}`, train(h));
      clients.push(c);
      return c.run();
    }),
  );
  expect(server.federation.state.round).toBe(1);
  return server;
}

describe('large updates (received in place into a reused buffer)', () => {
  it('are above the in-place threshold', () => {
    expect(4 * PARAMS).toBeGreaterThan(IN_PLACE_MIN_BYTES);
  });

  it('FedAvg of 5 updates, each different, through one reused receive buffer, is the exact weighted mean', async () => {
    const hs = [1, 2, 3, 4, 5];
    const s = await round({ type: 'fedavg' }, hs, (h) => 10 * h);
    const total = hs.reduce((n, h) => n + 10 * h, 0);
    const got = s.federation.globalWeights;
    for (let t = 0; t < SPEC.length; t++) {
      const data = got.tensors[t].data;
      for (const i of [0, 1, 2, 3, 4, 5, data.length - 1]) {
        const expected = Math.fround(hs.reduce((acc, h) => acc + 10 * h * Math.fround(pattern(h)(t, i)), 0) / total);
        expect(data[i], `tensor ${t} index ${i}`).toBe(expected);
      }
    }
    // One buffer for all five uploads, given up when the round ended.
    expect(s.transport.receivePool!.allocations).toBe(1);
    expect(s.transport.receivePool!.spareBytes).toBe(0);
  });

  it('the median, which keeps its updates, gets a fresh buffer for each (none is overwritten)', async () => {
    const hs = [1, 2, 3, 4, 5];
    const s = await round({ type: 'median' }, hs, () => 1);
    const got = s.federation.globalWeights;
    for (let t = 0; t < SPEC.length; t++) {
      const data = got.tensors[t].data;
      for (const i of [0, 3, data.length - 1]) expect(data[i]).toBe(Math.fround(pattern(3)(t, i)));
    }
    expect(s.transport.receivePool!.allocations).toBe(5);
  });
});
