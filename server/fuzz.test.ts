import { afterEach, describe, expect, it } from 'vitest';
import { encodeWeights } from '../shared/codec/weightsCodec.ts';
import { encodeFrame } from '../shared/protocol/frames.ts';
import { Rng } from '../shared/rng.ts';
import { constantTrainer, getMetrics, nodeClient, RawPeer, startTestServer, tinyWeights, type TestServer } from './testing/federation.ts';

/**
 * 1,000 fuzzed frames (random bytes, random JSON, mutated valid frames, broken binary headers) from an
 * authenticated hospital, plus garbage hellos from anonymous connections: every one is refused to its
 * sender, counted, and the server keeps serving a full round to the other hospitals.
 */

let server: TestServer | undefined;
afterEach(async () => {
  await server?.cleanup();
  server = undefined;
});

const TYPES = ['hello', 'upload-request', 'progress', 'decline', 'get-global', 'update', 'round', 'status', '', 'x'.repeat(300)];

function randomValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 2 ? 5 : 8)) {
    case 0:
      return rng.int(2 ** 31) - 2 ** 30;
    case 1:
      return rng.next() * 1e6;
    case 2:
      return ['', 'a', '∞', '\u0000', 'NaN', '-1'][rng.int(6)];
    case 3:
      return rng.int(2) === 0;
    case 4:
      return null;
    case 5:
      return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(5); i > 0; i--) o[['round', 'attempt', 'type', 'fraction', 'token', 'examples', 'protocols', 'z'][rng.int(8)]] = randomValue(rng, depth + 1);
      return o;
    }
  }
}

function randomBytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

function fuzzFrame(rng: Rng, valid: Uint8Array): string | Uint8Array {
  switch (rng.int(7)) {
    case 0:
      return randomBytes(rng, rng.int(300));
    case 1:
      return String.fromCharCode(...Array.from({ length: rng.int(200) }, () => rng.int(0xd7ff) + 1));
    case 2: {
      const m = randomValue(rng) as Record<string, unknown>;
      if (m && typeof m === 'object' && !Array.isArray(m) && rng.int(3) > 0) m.type = TYPES[rng.int(TYPES.length)];
      return JSON.stringify(m) ?? 'null';
    }
    case 3: {
      // a valid update frame with a few bytes flipped
      const f = valid.slice();
      for (let i = 1 + rng.int(8); i > 0; i--) f[rng.int(f.length)] ^= 1 << rng.int(8);
      return f;
    }
    case 4:
      // a valid update frame, truncated
      return valid.slice(0, rng.int(valid.length));
    case 5: {
      // the right magic with a nonsense header length or header
      const f = randomBytes(rng, 8 + rng.int(64));
      f.set([0x46, 0x47, 0x46, 0x31]);
      if (rng.int(2)) new DataView(f.buffer).setUint32(4, rng.int(2) ? 0xffffffff : f.length - 8, true);
      return f;
    }
    default:
      return encodeFrame({ type: TYPES[rng.int(TYPES.length)], round: rng.int(5), attempt: rng.int(3), examples: rng.int(100) - 10, dLoss: 1, gLoss: 1 }, rng.int(2) ? encodeWeights(tinyWeights(rng.next())) : randomBytes(rng, 40));
  }
}

describe('fuzzing', () => {
  it('survives 1,000 fuzzed frames: each refused to its sender only, counted, and the round still completes', async () => {
    server = await startTestServer({ rounds: 1, minFit: 2, minAvailable: 3, fraction: 0.5, minCompletion: 2, roundDeadlineSeconds: 30, limits: { frameMarginBytes: 1024 } });
    const rng = new Rng(20240601);
    const valid = encodeFrame({ type: 'update', round: 1, attempt: 1, examples: 10, dLoss: 1, gLoss: 1 }, encodeWeights(tinyWeights(1)));

    // The fuzzer is an authenticated hospital that is never sampled (3 hospitals are needed to start,
    // the sample is h1 and h2 once the fuzzer has finished; see below).
    const fuzzer = new RawPeer(server.wsUrl);
    await fuzzer.hello('h3');
    const bystander = new RawPeer(server.wsUrl);
    await bystander.hello('h5');
    const N = 1000;
    for (let i = 0; i < N; i++) fuzzer.send(fuzzFrame(rng, valid));
    // Anonymous connections sending garbage instead of a hello are closed, one by one.
    const anon: RawPeer[] = [];
    for (let i = 0; i < 20; i++) {
      const p = new RawPeer(server.wsUrl);
      await p.opened;
      p.send(fuzzFrame(rng, valid));
      anon.push(p);
    }
    for (const p of anon) expect([4000, 4001, 4002]).toContain((await p.waitClose()).code);
    // Wait until the server has answered the fuzzer's frames.
    await fuzzer.waitFor(() => (fuzzer.messages.filter((m) => m.text?.type === 'error').length >= N * 0.9 ? true : undefined), 20_000);
    expect(fuzzer.closed).toBeUndefined();
    // Nobody else heard about it.
    expect(bystander.messages.filter((x) => x.text?.type === 'error')).toEqual([]);
    expect(bystander.closed).toBeUndefined();
    bystander.close();

    const m = await getMetrics(`${server.url}/metrics`);
    const refusals = [...m].filter(([k]) => k.startsWith('fedgan_refusals_total')).reduce((s, [, v]) => s + v, 0);
    const errors = fuzzer.messages.filter((x) => x.text?.type === 'error').length;
    expect(refusals).toBeGreaterThanOrEqual(errors + anon.length);
    // Frames that happen to be valid (a get-global, a progress report) were answered normally, not refused.
    expect(errors).toBeLessThanOrEqual(N);

    // The server still serves: a full round with two well-behaved hospitals (the fuzzer declines if sampled).
    fuzzer.close();
    const results = await Promise.all([
      nodeClient(server, 'h1', constantTrainer(1, 10)).run(),
      nodeClient(server, 'h2', constantTrainer(3, 10)).run(),
      nodeClient(server, 'h3', async () => {
        throw new Error('fuzzer does not train');
      }).run(),
    ]);
    expect(results.map((r) => r.rounds)).toEqual([1, 1, 1]);
    expect(server.federation.state.history[0].participants).toBe(2);
    expect([...server.federation.globalWeights.tensors[0].data]).toEqual([2, 2, 2, 2, 2, 2]);
  });
});
