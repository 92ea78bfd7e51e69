/**
 * Hospitals receive the global weights without other hospitals' names (issue 15, finding 5): the `round`
 * and `global` frames carry the checkpoint with its meta reduced to what the model is (config, round,
 * policy), while the checkpoint file on disk keeps the full federation history.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkpointForHospitals, decodeCheckpoint, encodeCheckpoint } from '../shared/checkpoint.ts';
import { decodeWeights, encodeWeights, replaceMeta } from '../shared/codec/weightsCodec.ts';
import { parseFedConfig } from '../shared/config/fedConfig.ts';
import { decodeFrame } from '../shared/protocol/frames.ts';
import type { ErrorCode, ServerTextMessage } from '../shared/protocol/messages.ts';
import type { WeightSet } from '../shared/weights.ts';
import { realClock } from './federation.ts';
import { silentLogger } from './log.ts';
import { Metrics } from './metrics.ts';
import { RoundMachine, type RoundPeer } from './roundMachine.ts';
import { CheckpointStore } from './state.ts';

const FP = '0123456789abcdef';
function weights(v: number): WeightSet {
  return {
    fingerprint: FP,
    tensors: [
      { name: 'g/dense/kernel', shape: [2, 3], data: new Float32Array(6).fill(v) },
      { name: 'd/out/bias', shape: [1], data: new Float32Array([v + 0.5]) },
    ],
  };
}
const concat = (parts: Uint8Array[]) => {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (all.set(p, o), (o += p.length));
  return all;
};
const contains = (bytes: Uint8Array, text: string) => Buffer.from(bytes).includes(Buffer.from(text, 'utf8'));

/** A hospital that keeps every binary message it is sent, byte for byte. */
class RecordingPeer implements RoundPeer {
  binary: Uint8Array[] = [];
  texts: ServerTextMessage[] = [];
  errors: ErrorCode[] = [];
  constructor(readonly hospital: string) {}
  send(msg: ServerTextMessage): void {
    this.texts.push(msg);
  }
  sendBinary(...parts: Uint8Array[]): void {
    this.binary.push(concat(parts));
  }
  error(code: ErrorCode): void {
    this.errors.push(code);
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the global weights hospitals receive', () => {
  it('name no hospital: round and global frames carry config and round, not the history; the checkpoint on disk keeps it', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'fedgan-payload-'));
    dirs.push(stateDir);
    const fed = parseFedConfig({ rounds: 3, minAvailable: 2, minFit: 2, minCompletion: 2, maxUpdateNorm: null, model: { imageSize: 16 } });
    const store = new CheckpointStore({ stateDir, keep: 5, model: fed.model, batchNorm: fed.batchNorm });
    const m = new RoundMachine({ fed, store, metrics: new Metrics(), log: silentLogger, clock: realClock });
    await m.load(weights(0));
    const alpha = new RecordingPeer('st-alpha-general');
    const beta = new RecordingPeer('beta-university-clinic');
    m.onJoin(alpha);
    m.onJoin(beta);
    for (const [p, v] of [
      [alpha, 1],
      [beta, 3],
    ] as const) {
      m.onText(p, { type: 'upload-request', round: 1, attempt: 1 });
      const payload = encodeWeights(weights(v));
      m.onUpdate(p, { type: 'update', round: 1, attempt: 1, examples: 10, dLoss: 1, gLoss: 1 }, payload, payload.length);
    }
    for (let i = 0; i < 100 && m.state.round < 1; i++) await new Promise((r) => setTimeout(r, 5));
    expect(m.state.round).toBe(1);
    expect(m.phase).toBe('training'); // round 2 was sent
    m.onText(alpha, { type: 'get-global' });

    // On disk: the full history, both names.
    const file = readFileSync(join(store.dir, CheckpointStore.fileName(1)));
    expect(contains(file, 'st-alpha-general') && contains(file, 'beta-university-clinic')).toBe(true);
    expect(decodeCheckpoint(new Uint8Array(file)).meta.state?.history[0].hospitals).toEqual(['beta-university-clinic', 'st-alpha-general']);

    // What each hospital received: round 1, round 2 and (alpha) the global; never the other's name.
    expect(alpha.binary).toHaveLength(3);
    expect(beta.binary).toHaveLength(2);
    for (const [p, other] of [
      [alpha, 'beta-university-clinic'],
      [beta, 'st-alpha-general'],
    ] as const) {
      for (const bytes of p.binary) expect(contains(bytes, other)).toBe(false);
    }
    // …and still a valid checkpoint of the model: config, round, policy, the aggregated weights (FedAvg of 1 and 3).
    const { header, payload } = decodeFrame(alpha.binary[2]);
    expect(header).toMatchObject({ type: 'global', round: 1 });
    const ck = decodeCheckpoint(payload, { expectedRound: 1 });
    expect(ck.meta).toMatchObject({ round: 1, batchNorm: 'average', source: 'server', config: { imageSize: 16 } });
    expect(ck.meta.state).toBeUndefined();
    expect([...ck.weights.tensors[0].data]).toEqual(new Array(6).fill(2));
    expect(decodeFrame(alpha.binary[1]).header).toMatchObject({ type: 'round', round: 2 });
    m.close();
  });
});

describe('replaceMeta / checkpointForHospitals', () => {
  const model = parseFedConfig({ model: { imageSize: 16 } }).model;
  const history = [{ round: 1, participants: 1, hospitals: ['secret-hospital'], examples: 5, dLoss: 1, gLoss: 2, seconds: 3, attempts: 1, completedAt: '2026-01-01T00:00:00.000Z' }];

  it('keeps the weights bit for bit, shares them with the file (no copy) and writes a valid checksum', () => {
    const w = weights(0.25);
    w.tensors[1].data[0] = Number.NaN; // raw bits survive
    const file = encodeCheckpoint(w, { config: model, round: 1, batchNorm: 'local', source: 'server', state: { round: 1, history } });
    const parts = checkpointForHospitals(file);
    expect(parts).toHaveLength(3);
    expect(parts[1].buffer).toBe(file.buffer); // the weights are a view of the file
    const out = concat(parts);
    expect(contains(file, 'secret-hospital')).toBe(true);
    expect(contains(out, 'secret-hospital')).toBe(false);
    const d = decodeWeights(out); // verifies the new CRC-32
    expect(Object.keys(d.meta).sort()).toEqual(['batchNorm', 'config', 'createdAt', 'kind', 'round', 'source', 'version']);
    expect(new Uint8Array(d.weights.tensors[1].data.buffer, d.weights.tensors[1].data.byteOffset, 4)).toEqual(new Uint8Array(w.tensors[1].data.buffer, 0, 4));
    expect(decodeCheckpoint(out).meta).toMatchObject({ round: 1, batchNorm: 'local' });
  });

  it('pads a header of any length so that the data stays 4-byte aligned', () => {
    for (let n = 0; n < 8; n++) {
      const file = encodeWeights(weights(1), { a: 'x'.repeat(n) });
      const out = concat(replaceMeta(file, () => ({ b: 'y'.repeat(n * 3) })));
      expect(decodeWeights(out).meta).toEqual({ b: 'y'.repeat(n * 3) });
      expect((replaceMeta(file, () => ({}))[0].length) % 4).toBe(0);
    }
  });
});
