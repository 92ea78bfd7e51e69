import { describe, expect, it } from 'vitest';
import { encodeWeights } from '../codec/weightsCodec.ts';
import type { WeightSet } from '../weights.ts';
import { decodeFrame } from './frames.ts';
import type { RoundHeader } from './messages.ts';
import { RoundParticipation, type ParticipationEvent, type ParticipationLink, type TrainFn } from './participation.ts';
import { roundConfig } from './testDoubles.ts';

/** Participation alone (no socket): the task, its checks, training, the upload slot and the task's end. */

const W: WeightSet = { fingerprint: 'f', tensors: [{ name: 'a', shape: [2], data: new Float32Array([1, 2]) }] };
const header: RoundHeader = { type: 'round', round: 2, attempt: 1, config: roundConfig };
const tick = () => new Promise((r) => setTimeout(r, 0));

function harness(train: TrainFn, fingerprint: string | undefined = 'f') {
  const sent: Record<string, unknown>[] = [];
  const binary: Uint8Array[] = [];
  const events: ParticipationEvent[] = [];
  let clock = 1000;
  const link: ParticipationLink = {
    send: (m) => (sent.push(m), true),
    sendBinary: (f) => (binary.push(f), true),
    fingerprint: () => fingerprint,
  };
  const p = new RoundParticipation({ train, progressIntervalMs: 100, now: () => clock }, link, (e) => events.push(e));
  const advance = (ms: number) => (clock += ms);
  return { p, sent, binary, events, advance };
}

const neverCalled: TrainFn = () => {
  throw new Error('train must not be called');
};

describe('RoundParticipation: rounds it cannot use are declined at once', () => {
  const cases: [string, Uint8Array, string, RegExp][] = [
    ['a payload that fails its CRC', corrupt(encodeWeights(W)), 'f', /^the round's weights are unusable: .*checksum/i],
    ['a truncated payload', encodeWeights(W).subarray(0, 20), 'f', /^the round's weights are unusable: /],
    ['weights of another architecture than the welcome announced', encodeWeights(W), 'other', /^the round's weights are unusable: weights fingerprint f does not match this model's other/],
    ['weights with a NaN', encodeWeights({ ...W, tensors: [{ ...W.tensors[0], data: new Float32Array([1, NaN]) }] }), 'f', /^the round's weights are unusable: .*(NaN|non-finite)/i],
  ];
  for (const [what, payload, fingerprint, reason] of cases) {
    it(`declines ${what}`, () => {
      const { p, sent, events } = harness(neverCalled, fingerprint);
      p.onRound(header, payload);
      expect(sent).toEqual([{ type: 'decline', round: 2, attempt: 1, reason: expect.stringMatching(reason) }]);
      expect(events).toEqual([{ type: 'round-declined', round: 2, attempt: 1, reason: sent[0].reason }]);
      expect(p.phase).toBe('waiting');
    });
  }

  it('declines a round whose model config is invalid, naming the field', () => {
    const { p, sent } = harness(neverCalled);
    p.onRound({ ...header, config: { ...roundConfig, model: { imageSize: 30 } } }, encodeWeights(W));
    expect(sent).toEqual([{ type: 'decline', round: 2, attempt: 1, reason: 'invalid round 2 model config: imageSize: must be a multiple of 8 (the generator upsamples 3 times from size/8)' }]);
  });

  it('declines a round frame whose header was invalid, replacing the task in progress', async () => {
    let signal: AbortSignal | undefined;
    const { p, sent, events } = harness((_g, _c, _p, s) => ((signal = s), new Promise(() => {})));
    p.onRound(header, encodeWeights(W));
    expect(p.phase).toBe('training');
    p.onInvalidRound(3, 1, 'invalid round frame header from the server: config.batchNorm: bad');
    expect(signal?.aborted).toBe(true);
    expect(p.phase).toBe('waiting');
    expect(sent).toEqual([{ type: 'decline', round: 3, attempt: 1, reason: 'invalid round frame header from the server: config.batchNorm: bad' }]);
    expect(events.at(-1)).toEqual({ type: 'round-declined', round: 3, attempt: 1, reason: sent[0].reason });
    await tick();
    expect(sent).toHaveLength(1);
  });

  it('cuts a decline reason to the 500 characters the protocol allows', () => {
    const { p, sent } = harness(neverCalled);
    p.onInvalidRound(2, 1, 'x'.repeat(900));
    expect((sent[0].reason as string).length).toBe(500);
  });
});

describe('RoundParticipation: a round it can use', () => {
  it('trains on the decoded weights, throttles progress, requests a slot, uploads on its grant, ends on accepted', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { p, sent, binary, events, advance } = harness(async (global, config, progress) => {
      expect([...global.tensors[0].data]).toEqual([1, 2]);
      expect(config).toEqual(roundConfig);
      progress(0.1);
      advance(50);
      progress(0.2); // within 100 ms of the last one sent: not sent
      advance(60);
      progress(0.3);
      await gate;
      advance(2000);
      return { weights: { ...W, tensors: [{ ...W.tensors[0], data: new Float32Array([5, 6]) }] }, examples: 7, dLoss: 0.25, gLoss: 0.5 };
    });
    p.onRound(header, encodeWeights(W));
    expect(p.phase).toBe('training');
    expect(sent.map((m) => m.fraction)).toEqual([0.1, 0.3]);
    expect(events.filter((e) => e.type === 'progress').map((e) => (e as { fraction: number }).fraction)).toEqual([0.1, 0.2, 0.3]);
    p.onUploadGrant({ type: 'upload-grant', round: 2, attempt: 1 }); // not requested yet: ignored
    expect(binary).toHaveLength(0);
    release();
    await tick();
    expect(p.phase).toBe('uploading');
    expect(sent.at(-1)).toEqual({ type: 'upload-request', round: 2, attempt: 1 });
    p.onUploadGrant({ type: 'upload-grant', round: 2, attempt: 2 }); // another attempt's grant: ignored
    expect(binary).toHaveLength(0);
    p.onUploadGrant({ type: 'upload-grant', round: 2, attempt: 1 });
    expect(binary).toHaveLength(1);
    const up = decodeFrame(binary[0]);
    expect(up.header).toEqual({ type: 'update', round: 2, attempt: 1, examples: 7, dLoss: 0.25, gLoss: 0.5, trainSeconds: 2.11 });
    expect(events).toContainEqual({ type: 'uploading', round: 2, attempt: 1, bytes: binary[0].byteLength });
    p.onAccepted({ type: 'accepted', round: 2, attempt: 1 });
    expect(p.phase).toBe('waiting');
    expect(events.at(-1)).toEqual({ type: 'accepted', round: 2, attempt: 1 });
  });

  it('a refusal of its request ends the task; an error about another task or during training does not', async () => {
    const { p, sent } = harness(async () => ({ weights: W, examples: 1, dLoss: 0, gLoss: 0 }));
    p.onRound(header, encodeWeights(W));
    p.onServerError({ type: 'error', code: 'late', message: 'x', round: 2, attempt: 1 }); // still training
    expect(p.phase).toBe('training');
    await tick();
    expect(p.phase).toBe('uploading');
    p.onServerError({ type: 'error', code: 'late', message: 'x', round: 1, attempt: 1 });
    expect(p.phase).toBe('uploading');
    p.onServerError({ type: 'error', code: 'no-upload-slot', message: 'x', round: 2, attempt: 1 });
    expect(p.phase).toBe('waiting');
    p.onUploadGrant({ type: 'upload-grant', round: 2, attempt: 1 });
    expect(sent.map((m) => m.type)).toEqual(['upload-request']);
  });

  it('round-closed for its task aborts training and nothing is sent', async () => {
    let signal: AbortSignal | undefined;
    const { p, sent } = harness((_g, _c, _p, s) => {
      signal = s;
      return new Promise((_, rej) => s.addEventListener('abort', () => rej(s.reason)));
    });
    p.onRound(header, encodeWeights(W));
    p.onRoundClosed({ type: 'round-closed', round: 2, attempt: 0, reason: 'deadline' }); // not ours
    expect(signal?.aborted).toBe(false);
    p.onRoundClosed({ type: 'round-closed', round: 2, attempt: 1, reason: 'deadline' });
    expect(signal?.aborted).toBe(true);
    expect((signal?.reason as Error).message).toBe('round closed (deadline)');
    await tick();
    expect(sent).toEqual([]);
    expect(p.phase).toBe('waiting');
  });

  it('declines when training throws, with the error as the reason', async () => {
    const { p, sent, events } = harness(async () => {
      throw new Error('out of GPU memory');
    });
    p.onRound(header, encodeWeights(W));
    await tick();
    expect(sent).toEqual([{ type: 'decline', round: 2, attempt: 1, reason: 'out of GPU memory' }]);
    expect(events).toContainEqual({ type: 'train-error', round: 2, attempt: 1, error: 'out of GPU memory' });
  });
});

function corrupt(b: Uint8Array): Uint8Array {
  const c = b.slice();
  c[c.length - 6] ^= 0xff; // a data byte: the CRC no longer matches
  return c;
}

describe('RoundParticipation: a round sent again after a reconnect', () => {
  it('trains it from the start and marks its round-start as resumed (a plain round is not)', async () => {
    const trained: number[] = [];
    const { p, events } = harness(async (_g, c) => (trained.push(c.deadlineSeconds), { weights: W, examples: 3, dLoss: 1, gLoss: 1 }));
    p.onRound(header, encodeWeights(W));
    await tick();
    expect(events.find((e) => e.type === 'round-start')).toEqual({ type: 'round-start', config: roundConfig });
    const resumed: RoundHeader = { ...header, resumed: true, config: { ...roundConfig, deadlineSeconds: 42 } };
    p.onRound(resumed, encodeWeights(W));
    await tick();
    expect(events.filter((e) => e.type === 'round-start').at(-1)).toEqual({ type: 'round-start', config: resumed.config, resumed: true });
    expect(trained).toEqual([roundConfig.deadlineSeconds, 42]);
  });
});
