import { describe, expect, it } from 'vitest';
import { encodeWeights } from '../codec/weightsCodec.ts';
import { SecAggClient } from '../secagg/client.ts';
import type { WeightSet } from '../weights.ts';
import { decodeFrame } from './frames.ts';
import type { RoundHeader } from './messages.ts';
import { RoundParticipation, type ParticipationEvent, type ParticipationLink, type TrainFn } from './participation.ts';
import { roundConfig } from './testDoubles.ts';

/** The hospital's side of secure aggregation in RoundParticipation (no socket; a second hospital in process). */

const G: WeightSet = { fingerprint: 'f', tensors: [{ name: 'a', shape: [4], data: new Float32Array([0, 0, 0, 0]) }] };
const T: WeightSet = { fingerprint: 'f', tensors: [{ name: 'a', shape: [4], data: new Float32Array([0.1, -0.2, 0.3, 0.05]) }] };
const header: RoundHeader = { type: 'round', round: 2, attempt: 1, config: { ...roundConfig, secureAggregation: { clip: 0.5, scale: 1000, maxExamples: 100 } } };
const settle = async () => {
  for (let i = 0; i < 50; i++) await new Promise((r) => setTimeout(r, 1));
};

function harness(train: TrainFn) {
  const sent: Record<string, any>[] = [];
  const binary: Uint8Array[] = [];
  const events: ParticipationEvent[] = [];
  const link: ParticipationLink = { send: (m) => (sent.push(m), true), sendBinary: (f) => (binary.push(f), true), fingerprint: () => 'f', hospital: () => 'ha' };
  const p = new RoundParticipation({ train }, link, (e) => events.push(e));
  return { p, sent, binary, events };
}

const trained: TrainFn = async () => ({ weights: T, examples: 40, dLoss: 1, gLoss: 2 });

describe('RoundParticipation with secure aggregation', () => {
  it('advertises keys, shares them on the roster, sends the update masked after the relay, answers unmasking once accepted', async () => {
    const { p, sent, binary, events } = harness(trained);
    p.onRound(header, encodeWeights(G));
    await settle();
    const keys = sent.find((m) => m.type === 'secagg-keys')!;
    expect(keys).toMatchObject({ round: 2, attempt: 1, cPk: expect.any(String), sPk: expect.any(String) });
    // Training is done, but nothing is requested before the shares are relayed.
    expect(sent.some((m) => m.type === 'upload-request')).toBe(false);
    const hb = await SecAggClient.create('hb', 2, 1);
    const roster = { threshold: 2, members: [{ hospital: 'ha', index: 1, cPk: keys.cPk, sPk: keys.sPk }, { hospital: 'hb', index: 2, ...hb.advertise() }] };
    p.onSecAggRoster({ type: 'secagg-roster', round: 2, attempt: 1, ...roster });
    await settle();
    const shares = sent.find((m) => m.type === 'secagg-shares')!;
    expect(shares.shares.map((s: { peer: string }) => s.peer)).toEqual(['hb']);
    const fromB = await hb.shareKeys(roster);
    p.onSecAggRelay({ type: 'secagg-relay', round: 2, attempt: 1, members: ['ha', 'hb'], shares: fromB.map((s) => ({ ...s, peer: 'hb' })) });
    await settle();
    expect(sent.at(-1)).toEqual({ type: 'upload-request', round: 2, attempt: 1 });
    p.onUploadGrant({ type: 'upload-grant', round: 2, attempt: 1 });
    const f = decodeFrame(binary[0]);
    expect(f.header).toMatchObject({ type: 'update', masked: true, examples: 40, dLoss: 1, gLoss: 2 });
    expect(f.payload.byteLength).toBe(16);
    expect(events.find((e) => e.type === 'secure-aggregation')).toEqual({ type: 'secure-aggregation', round: 2, attempt: 1, step: 'masked', clipped: 0 });
    // The unmasking request comes after `accepted` (the task is over by then): it is still answered.
    p.onAccepted({ type: 'accepted', round: 2, attempt: 1 });
    p.onSecAggUnmask({ type: 'secagg-unmask', round: 2, attempt: 1, survivors: ['ha', 'hb'] });
    await settle();
    const reveal = sent.find((m) => m.type === 'secagg-reveal')!;
    expect(reveal.shares.map((s: { of: string; kind: string }) => `${s.of}:${s.kind}`)).toEqual(['ha:seed', 'hb:seed']);
  });

  it('refuses a roster that does not list it with its keys: declines the round, sends no update', async () => {
    const { p, sent, binary, events } = harness(trained);
    p.onRound(header, encodeWeights(G));
    await settle();
    const [x, y] = await Promise.all([SecAggClient.create('ha', 2, 1), SecAggClient.create('hb', 2, 1)]);
    p.onSecAggRoster({ type: 'secagg-roster', round: 2, attempt: 1, threshold: 2, members: [{ hospital: 'ha', index: 1, ...x.advertise() }, { hospital: 'hb', index: 2, ...y.advertise() }] });
    await settle();
    expect(sent.at(-1)).toEqual({ type: 'decline', round: 2, attempt: 1, reason: 'secure aggregation: the roster does not list ha with the keys it advertised' });
    expect(events.some((e) => e.type === 'secure-aggregation' && e.step === 'refused')).toBe(true);
    expect(binary).toHaveLength(0);
    expect(p.phase).toBe('waiting');
  });
});
