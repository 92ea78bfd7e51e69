import { describe, expect, it } from 'vitest';
import { CHECKPOINT_VERSION, CheckpointError, decodeCheckpoint, encodeCheckpoint, type CheckpointInput, type FederationState } from './checkpoint.ts';
import { encodeWeights, WeightsCodecError } from './codec/weightsCodec.ts';
import { parseGanConfig } from './config/ganConfig.ts';
import type { WeightSet } from './weights.ts';

const config = parseGanConfig({ imageSize: 16, latentDim: 8, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 } });

function weights(): WeightSet {
  return {
    fingerprint: 'fp-test',
    tensors: [
      { name: 'g/dense/kernel', shape: [2, 3], data: new Float32Array([1, -0, 2.5, 1e-40, -3, 7]) },
      { name: 'g/bn1/movingMean', shape: [2], data: new Float32Array([0.25, -1]) },
    ],
  };
}

function state(round: number): FederationState {
  return {
    round,
    history: Array.from({ length: round }, (_, i) => ({
      round: i + 1,
      participants: 2,
      hospitals: ['h1', 'h2'],
      examples: 20,
      dLoss: 1,
      gLoss: 2,
      seconds: 0.5,
      attempts: 1,
      completedAt: '2025-01-01T00:00:00.000Z',
    })),
  };
}

const input = (over: Partial<CheckpointInput> = {}): CheckpointInput => ({
  config,
  round: 2,
  batchNorm: 'local',
  source: 'server',
  createdAt: '2025-02-03T04:05:06.000Z',
  state: state(2),
  ...over,
});

/** A weights file with any meta (for layouts encodeCheckpoint refuses to write). */
const raw = (meta: Record<string, unknown>) => encodeWeights(weights(), meta);

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return `${(e as CheckpointError).code}: ${(e as Error).message}`;
  }
  return 'no error';
}

describe('encodeCheckpoint / decodeCheckpoint', () => {
  it('round-trips weights bit-exactly and the meta with config, round, policy, source, time and state', () => {
    const bytes = encodeCheckpoint(weights(), input());
    const d = decodeCheckpoint(bytes);
    expect(d.fileVersion).toBe(CHECKPOINT_VERSION);
    expect(d.meta).toEqual({
      kind: 'fedgan-checkpoint',
      version: 2,
      config,
      round: 2,
      batchNorm: 'local',
      source: 'server',
      createdAt: '2025-02-03T04:05:06.000Z',
      state: state(2),
    });
    expect(d.weights.fingerprint).toBe('fp-test');
    expect(d.weights.tensors.map((t) => [t.name, t.shape])).toEqual([
      ['g/dense/kernel', [2, 3]],
      ['g/bn1/movingMean', [2]],
    ]);
    expect(new Uint8Array(d.weights.tensors[0].data.buffer, d.weights.tensors[0].data.byteOffset, 24)).toEqual(new Uint8Array(weights().tensors[0].data.buffer));
    expect(Object.is(d.weights.tensors[0].data[1], -0)).toBe(true);
    // Without state (the simulation's checkpoints), and the default time is now.
    const sim = decodeCheckpoint(encodeCheckpoint(weights(), { config, round: 3, batchNorm: 'average', source: 'simulation' }), { expectedRound: 3 });
    expect(sim.meta).not.toHaveProperty('state');
    expect(sim.meta).toMatchObject({ round: 3, batchNorm: 'average', source: 'simulation' });
    expect(Math.abs(Date.parse(sim.meta.createdAt) - Date.now())).toBeLessThan(60_000);
  });

  it('stores the completed config: a partial one is filled with the defaults before writing', () => {
    const d = decodeCheckpoint(encodeCheckpoint(weights(), input({ config: { imageSize: 32 } as never })));
    expect(d.meta.config).toEqual(parseGanConfig({ imageSize: 32 }));
  });

  it('refuses to write inconsistent meta, naming the problem', () => {
    expect(codeOf(() => encodeCheckpoint(weights(), input({ round: -1, state: undefined })))).toBe('bad-meta: cannot write checkpoint: round must be an integer ≥ 0, got -1');
    expect(codeOf(() => encodeCheckpoint(weights(), input({ round: 3 })))).toBe("round-mismatch: cannot write checkpoint: the federation state says round 2 but the checkpoint's round is 3");
    expect(codeOf(() => encodeCheckpoint(weights(), input({ state: { round: 2, history: [] } })))).toBe("bad-meta: cannot write checkpoint: the federation state's history has 0 entries for 2 rounds");
    expect(codeOf(() => encodeCheckpoint(weights(), input({ batchNorm: 'median' as never })))).toBe('bad-meta: cannot write checkpoint: batchNorm must be "average" or "local", got "median"');
    expect(codeOf(() => encodeCheckpoint(weights(), input({ source: '' })))).toBe('bad-meta: cannot write checkpoint: source must be a non-empty string');
    expect(codeOf(() => encodeCheckpoint(weights(), input({ config: { ...config, imageSize: 20 } })))).toMatch(/^bad-config: cannot write checkpoint: .*imageSize: must be a multiple of 8/);
  });

  it('names what is wrong with a file that is not a valid checkpoint', () => {
    expect(codeOf(() => decodeCheckpoint(raw({}), { name: 'x.fgw' }))).toBe('not-checkpoint: x.fgw: not a fedgan checkpoint (meta.kind is undefined, expected "fedgan-checkpoint")');
    expect(codeOf(() => decodeCheckpoint(raw({ kind: 'global' })))).toMatch(/^not-checkpoint: checkpoint: not a fedgan checkpoint \(meta\.kind is "global"/);
    expect(codeOf(() => decodeCheckpoint(raw({ kind: 'fedgan-checkpoint', version: 3 })))).toMatch(/^unsupported-version: checkpoint: unsupported checkpoint version 3 \(this build reads versions 1 and 2/);
    const good = { kind: 'fedgan-checkpoint', version: 2, config, round: 1, batchNorm: 'average', source: 'simulation', createdAt: 't' };
    expect(decodeCheckpoint(raw(good)).meta.round).toBe(1);
    const { config: _omit, ...noConfig } = good;
    expect(codeOf(() => decodeCheckpoint(raw(noConfig), { name: 'c.fgw' }))).toBe('bad-config: c.fgw: meta.config (the GAN config) is missing');
    expect(codeOf(() => decodeCheckpoint(raw({ ...good, config: { ...config, imageSize: 20 } }), { name: 'c.fgw' }))).toMatch(/^bad-config: invalid GAN config \(meta\.config\) of c\.fgw: imageSize: must be a multiple of 8/);
    expect(codeOf(() => decodeCheckpoint(raw({ ...good, config: { ...config, colour: 'blue' } })))).toMatch(/^bad-config: .*unknown field\(s\) "colour"/);
    expect(codeOf(() => decodeCheckpoint(raw({ ...good, round: 1.5 })))).toBe('bad-meta: checkpoint: meta.round round must be an integer ≥ 0, got 1.5');
    expect(codeOf(() => decodeCheckpoint(raw({ ...good, batchNorm: undefined })))).toBe('bad-meta: checkpoint: meta.batchNorm must be "average" or "local", got undefined');
    expect(codeOf(() => decodeCheckpoint(raw({ ...good, source: 7 })))).toBe('bad-meta: checkpoint: meta.source must be a non-empty string, got 7');
    expect(codeOf(() => decodeCheckpoint(raw({ ...good, createdAt: null })))).toBe('bad-meta: checkpoint: meta.createdAt must be a string, got null');
    expect(codeOf(() => decodeCheckpoint(raw({ ...good, state: state(2) })))).toBe("round-mismatch: checkpoint: the federation state says round 2 but the checkpoint's round is 1");
    expect(codeOf(() => decodeCheckpoint(raw({ ...good, state: { round: 1 } })))).toBe('bad-meta: checkpoint: meta.state history must be an array');
    expect(codeOf(() => decodeCheckpoint(raw(good), { expectedRound: 4, name: 'round-000004.fgw' }))).toBe('round-mismatch: round-000004.fgw should hold round 4 but its meta says round 1');
    // Damaged bytes are the codec's business, with its own codes.
    const bytes = encodeCheckpoint(weights(), input());
    expect(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 9))).toThrow(WeightsCodecError);
    const flipped = bytes.slice();
    flipped[40] ^= 1;
    expect(codeOf(() => decodeCheckpoint(flipped))).toMatch(/^checksum: /);
  });

  it('reads a version-1 server checkpoint (no config) only with the config and policy supplied, and says how otherwise', () => {
    const v1 = raw({ kind: 'fedgan-checkpoint', version: 1, state: state(2), savedAt: '2024-12-01T00:00:00.000Z' });
    const msg = codeOf(() => decodeCheckpoint(v1, { name: 'round-000002.fgw' }));
    expect(msg).toMatch(/^needs-config: round-000002\.fgw: a version-1 server checkpoint, which does not record the GAN config \(meta\.config\); pass the server's FED_CONFIG file \(npm run evaluate -- --fed-config FILE\)/);
    const d = decodeCheckpoint(v1, { legacy: { config: { imageSize: 16 } as never, batchNorm: 'local' }, expectedRound: 2 });
    expect(d.fileVersion).toBe(1);
    expect(d.meta).toEqual({
      kind: 'fedgan-checkpoint',
      version: 1,
      config: parseGanConfig({ imageSize: 16 }),
      round: 2,
      batchNorm: 'local',
      source: 'server',
      createdAt: '2024-12-01T00:00:00.000Z',
      state: state(2),
    });
    expect(codeOf(() => decodeCheckpoint(v1, { legacy: { config, batchNorm: 'local' }, expectedRound: 3 }))).toBe('round-mismatch: checkpoint should hold round 3 but its meta says round 2');
    const torn = raw({ kind: 'fedgan-checkpoint', version: 1, state: { round: 2, history: [] }, savedAt: 'x' });
    expect(codeOf(() => decodeCheckpoint(torn, { legacy: { config, batchNorm: 'average' } }))).toBe("bad-meta: checkpoint: the federation state's history has 0 entries for 2 rounds");
    expect(codeOf(() => decodeCheckpoint(raw({ kind: 'fedgan-checkpoint', version: 1 }), { legacy: { config, batchNorm: 'average' } }))).toBe('bad-meta: checkpoint: version-1 checkpoint without meta.state');
  });

  it("reads the simulation's files from before version 2 (config, no version, no policy) as policy 'average'", () => {
    const old = raw({ kind: 'fedgan-checkpoint', config, round: 4, createdAt: '2024-11-01T00:00:00.000Z', source: 'simulation' });
    const d = decodeCheckpoint(old);
    expect(d.fileVersion).toBe(1);
    expect(d.meta).toEqual({ kind: 'fedgan-checkpoint', version: 1, config, round: 4, batchNorm: 'average', source: 'simulation', createdAt: '2024-11-01T00:00:00.000Z' });
  });
});
