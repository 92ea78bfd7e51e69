import { describe, expect, it } from 'vitest';
import { fedAvg } from '../aggregate/fedavg.ts';
import type { WeightSet } from '../weights.ts';
import { fromBase64 } from './bytes.ts';
import { maskLabel, SecAggClient, SecAggError, type RevealedShare } from './client.ts';
import { agreeKey, importPrivateScalar } from './keys.ts';
import { applyMask } from './prg.ts';
import { combineShares } from './shamir.ts';
import { roundThreshold, secureAggregationOf } from './config.ts';
import { SecAggCoordinator, SecAggFailure, SecAggRefusal, type SecAggPhase } from './coordinator.ts';
import { decodeSum, encodeUpdate, quantError, quantScale, vectorLength } from './quantize.ts';

/**
 * Whole SecAgg rounds in process: five hospitals, threshold 3, each phase's dropouts. A hospital "drops
 * before P" when it sends nothing from phase P on.
 */
const HOSPITALS = ['ha', 'hb', 'hc', 'hd', 'he'];
const global: WeightSet = {
  fingerprint: 'fp',
  tensors: [
    { name: 'g/dense/kernel', shape: [300], data: Float32Array.from({ length: 300 }, (_, i) => Math.cos(i)) },
    { name: 'd/bn1/gamma', shape: [8], data: new Float32Array(8).fill(1) },
    { name: 'd/out/bias', shape: [5], data: new Float32Array(5) },
  ],
};
const trained = (k: number): WeightSet => ({
  fingerprint: 'fp',
  tensors: global.tensors.map((t) => ({ ...t, data: Float32Array.from(t.data, (v, i) => v + 0.01 * Math.sin(k * 13 + i) * (k + 1)) })),
});
const EXAMPLES = [100, 250, 40, 900, 333];

type Drop = Partial<Record<string, SecAggPhase>>;

async function round(drop: Drop, opts: { threshold?: number; batchNorm?: 'average' | 'local' } = {}) {
  const batchNorm = opts.batchNorm ?? 'average';
  const cfg = { ...secureAggregationOf({}), threshold: opts.threshold ?? null };
  const params = { clip: cfg.clip, maxExamples: cfg.maxExamples, scale: quantScale(cfg.clip, cfg.maxExamples, HOSPITALS.length) };
  const length = vectorLength(global, batchNorm);
  const co = new SecAggCoordinator({ round: 3, attempt: 1, sampled: HOSPITALS, threshold: (n) => roundThreshold(cfg, n, 2), length });
  const clients = new Map(await Promise.all(HOSPITALS.map(async (h) => [h, await SecAggClient.create(h, 3, 1)] as const)));
  const active = (p: SecAggPhase) => HOSPITALS.filter((h) => {
    const d = drop[h];
    const order: SecAggPhase[] = ['keys', 'shares', 'masked', 'unmask'];
    return d === undefined || order.indexOf(d) > order.indexOf(p);
  });
  for (const h of active('keys')) await co.addKeys(h, clients.get(h)!.advertise());
  const roster = co.closeKeys();
  for (const h of active('shares')) if (roster.members.some((m) => m.hospital === h)) co.addShares(h, await clients.get(h)!.shareKeys(roster));
  // Hospitals that drop before sending shares still got the roster (and made shares they never sent).
  const { members, forHospital } = co.closeShares();
  const examples = new Map<string, number>();
  const lateMasked = new Map<string, Uint32Array>();
  for (const h of members) {
    await clients.get(h)!.receiveShares(members, forHospital.get(h)!);
    const k = HOSPITALS.indexOf(h);
    const enc = encodeUpdate(trained(k), global, batchNorm, EXAMPLES[k], params);
    const y = await clients.get(h)!.mask(enc.words);
    if (active('masked').includes(h)) {
      co.addMasked(h, y);
      examples.set(h, enc.examples);
    } else lateMasked.set(h, y);
  }
  const { survivors } = co.closeMasked();
  const reveals = new Map<string, RevealedShare[]>();
  for (const h of survivors) {
    if (!active('unmask').includes(h)) continue;
    reveals.set(h, clients.get(h)!.reveal(survivors));
    co.addReveal(h, reveals.get(h)!);
  }
  const { sum } = await co.unmask();
  const N = survivors.reduce((n, h) => n + examples.get(h)!, 0);
  const got = decodeSum(sum, global, batchNorm, N, params.scale);
  return { got, survivors, N, scale: params.scale, co, clients, lateMasked, reveals, roster, members, params };
}

function expectFedAvgOf(got: WeightSet, survivors: string[], N: number, scale: number, batchNorm: 'average' | 'local' = 'average') {
  const want = fedAvg(survivors.map((h) => ({ weights: trained(HOSPITALS.indexOf(h)), examples: EXAMPLES[HOSPITALS.indexOf(h)] })));
  const bound = quantError(scale, HOSPITALS.length, N);
  got.tensors.forEach((t, k) => {
    const bn = batchNorm === 'local' && t.name.includes('/bn');
    for (let i = 0; i < t.data.length; i++) {
      const w = bn ? global.tensors[k].data[i] : want.tensors[k].data[i];
      expect(Math.abs(t.data[i] - w), `${t.name}[${i}]`).toBeLessThanOrEqual(bound + Math.abs(w) * 2 ** -22);
    }
  });
}

describe('secure aggregation rounds (in process, 5 hospitals, threshold 3)', () => {
  it('without dropouts the unmasked sum is FedAvg within the quantisation bound', async () => {
    const r = await round({});
    expect(r.survivors).toEqual(HOSPITALS);
    expect(r.co.threshold).toBe(3);
    expectFedAvgOf(r.got, r.survivors, r.N, r.scale);
  });

  it('under FedBN the batch-norm tensors never enter the vector and keep the global values', async () => {
    const r = await round({}, { batchNorm: 'local' });
    expectFedAvgOf(r.got, r.survivors, r.N, r.scale, 'local');
  });

  it.each([
    ['before advertising keys', { hd: 'keys', he: 'keys' }, ['ha', 'hb', 'hc']],
    ['after keys, before sending shares', { hb: 'shares', he: 'shares' }, ['ha', 'hc', 'hd']],
    ['after shares, before the masked update (pairwise masks rebuilt from key shares)', { ha: 'masked', hc: 'masked' }, ['hb', 'hd', 'he']],
    ['after the masked update, before unmasking (their seeds rebuilt)', { hb: 'unmask', hd: 'unmask' }, HOSPITALS],
    ['one at each phase', { ha: 'shares', hb: 'masked' }, ['hc', 'hd', 'he']],
  ] as [string, Drop, string[]][])('dropouts %s up to the threshold still give the right sum', async (_, drop, survivors) => {
    const r = await round(drop);
    expect(r.survivors).toEqual(survivors);
    expectFedAvgOf(r.got, r.survivors, r.N, r.scale);
  });

  it.each([
    ['keys', { hc: 'keys', hd: 'keys', he: 'keys' }, /needs 3 hospitals, but only 2 advertised their keys/],
    ['shares', { hc: 'shares', hd: 'shares', he: 'shares' }, /needs 3 hospitals, but only 2 sent their key shares/],
    ['masked', { hc: 'masked', hd: 'masked', he: 'masked' }, /needs 3 hospitals, but only 2 sent their masked update/],
    ['unmask', { hc: 'unmask', hd: 'unmask', he: 'unmask' }, /needs 3 hospitals, but only 2 answered the unmasking request/],
  ] as [SecAggPhase, Drop, RegExp][])('beyond the threshold at %s the round fails cleanly with the reason', async (phase, drop, message) => {
    // With a threshold fixed at 3 (the default for 2 advertisers would be 2).
    const err = await round(drop, { threshold: 3 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SecAggFailure);
    expect((err as SecAggFailure).phase).toBe(phase);
    expect((err as SecAggFailure).message).toMatch(message);
  });

  it('a dropped hospital\'s late masked update is refused, and no survivor reveals its seed (it stays masked)', async () => {
    const r = await round({ ha: 'masked' });
    expect(r.lateMasked.has('ha')).toBe(true);
    expect(() => r.co.addMasked('ha', r.lateMasked.get('ha')!)).toThrow(SecAggRefusal);
    // A server that now claims ha survived gets nothing more: each client answers once.
    expect(() => r.clients.get('hb')!.reveal(['ha', 'hb', 'hc', 'hd', 'he'])).toThrow(/asked twice/);
    // Everything the server learnt about ha (its mask key, rebuilt from the survivors' key shares) removes
    // ha's pairwise masks from its late update, but its self mask stays: the words are still noise, not
    // the fixed-point update (whose words are all near 0 mod 2^32).
    const shares = [...r.reveals.values()].map((rs) => fromBase64(rs.find((x) => x.of === 'ha' && x.kind === 'key')!.data));
    expect([...r.reveals.values()].every((rs) => !rs.some((x) => x.of === 'ha' && x.kind === 'seed'))).toBe(true);
    const members = new Map(r.roster.members.map((m) => [m.hospital, m]));
    const key = await importPrivateScalar(combineShares(shares), fromBase64(members.get('ha')!.sPk));
    const y = r.lateMasked.get('ha')!.slice();
    for (const v of r.members.filter((h) => h !== 'ha')) {
      const seed = await agreeKey(key, fromBase64(members.get(v)!.sPk), maskLabel(3, 1));
      await applyMask(y, seed, members.get('ha')!.index < members.get(v)!.index ? -1 : 1);
    }
    const plain = encodeUpdate(trained(0), global, 'average', EXAMPLES[0], r.params).words;
    const nearZero = (w: Uint32Array) => w.reduce((n, x) => n + (x < 2 ** 24 || x > 2 ** 32 - 2 ** 24 ? 1 : 0), 0) / w.length;
    expect(nearZero(plain)).toBe(1);
    expect(nearZero(y)).toBeLessThan(0.05);
  });

  it('keys sent again before the roster replace the earlier ones (a hospital that reconnected); after it they are refused', async () => {
    const co = new SecAggCoordinator({ round: 1, attempt: 1, sampled: ['ha', 'hb'], threshold: () => 2, length: 4 });
    const [old, fresh, b] = await Promise.all([SecAggClient.create('ha', 1, 1), SecAggClient.create('ha', 1, 1), SecAggClient.create('hb', 1, 1)]);
    await co.addKeys('ha', old.advertise());
    await co.addKeys('ha', fresh.advertise());
    await co.addKeys('hb', b.advertise());
    const roster = co.closeKeys();
    expect(roster.members.find((m) => m.hospital === 'ha')).toMatchObject(fresh.advertise());
    await expect(fresh.shareKeys(roster)).resolves.toHaveLength(1);
    await expect(old.shareKeys(roster)).rejects.toThrow(/does not list ha with the keys it advertised/);
    await expect(co.addKeys('ha', old.advertise())).rejects.toThrow(/keys arrived in the shares phase/);
  });

  it('a client refuses what an honest server never sends', async () => {
    const [a, b, c] = await Promise.all(['ha', 'hb', 'hc'].map((h) => SecAggClient.create(h, 1, 1)));
    const roster = { threshold: 2, members: [a, b, c].map((x, i) => ({ hospital: x.hospital, index: i + 1, ...x.advertise() })) };
    await expect(a.shareKeys({ ...roster, threshold: 1 })).rejects.toThrow(/threshold must be in 2…3/);
    await expect(a.shareKeys({ ...roster, members: roster.members.filter((m) => m.hospital !== 'ha').map((m, i) => ({ ...m, index: i + 1 })) })).rejects.toThrow(/does not list ha/);
    await expect(a.shareKeys({ ...roster, members: roster.members.map((m) => (m.hospital === 'hc' ? { ...m, sPk: roster.members[1].sPk } : m)) })).rejects.toThrow(/repeats a public key/);
    const fromA = await a.shareKeys(roster);
    const fromB = await b.shareKeys(roster);
    await c.shareKeys(roster);
    // A share addressed to hb, relayed to hc, does not open.
    await expect(c.receiveShares(['ha', 'hc'], [{ peer: 'ha', data: fromA.find((s) => s.peer === 'hb')!.data }])).rejects.toThrow(/failed authentication/);
    await b.receiveShares(['ha', 'hb'], [{ peer: 'ha', data: fromA.find((s) => s.peer === 'hb')!.data }]);
    expect(() => b.reveal(['ha', 'hb'])).toThrow(/before this hospital sent its masked update/);
    await b.mask(new Uint32Array(4));
    expect(() => b.reveal(['hb'])).toThrow(/fewer than the threshold 2/);
    expect(() => b.reveal(['ha', 'hc'])).toThrow(SecAggError);
    expect(fromB).toHaveLength(2);
  });
});
