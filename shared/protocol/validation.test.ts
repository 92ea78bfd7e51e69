import { describe, expect, it } from 'vitest';
import { encodeFrame } from './frames.ts';
import { roundConfig } from './testDoubles.ts';
import { parseServerData, type ParsedServerData } from './validation.ts';

/** Every server message goes through the schemas of messages.ts; the errors name the type and the field. */


/** One valid example of each server text message, and one malformation of it with the field the error must name. */
const TEXT: { valid: Record<string, unknown>; bad: Record<string, unknown>; field: string }[] = [
  {
    valid: { type: 'welcome', protocol: 3, hospital: 'h1', clientId: 'c1', fingerprint: 'f', rounds: 3, round: 0, phase: 'waiting', limits: { maxFrameBytes: 1e6, heartbeatSeconds: 15, maxConcurrentUploads: 1, uploadGrantSeconds: 120, reconnectGraceSeconds: 60 } },
    bad: { type: 'welcome', protocol: 3, hospital: 'h1', clientId: 'c1', fingerprint: 'f', rounds: 3, round: 0, phase: 'napping', limits: { maxFrameBytes: 1e6, heartbeatSeconds: 15, maxConcurrentUploads: 1, uploadGrantSeconds: 120, reconnectGraceSeconds: 60 } },
    field: 'phase',
  },
  {
    valid: { type: 'status', phase: 'training', round: 1, rounds: 3, connected: 2, minAvailable: 2, sampled: true },
    bad: { type: 'status', phase: 'training', round: 1, rounds: 3, connected: 2, minAvailable: 2, sampled: 'yes' },
    field: 'sampled',
  },
  { valid: { type: 'upload-grant', round: 2, attempt: 1 }, bad: { type: 'upload-grant', round: 2 }, field: 'attempt' },
  { valid: { type: 'accepted', round: 2, attempt: 1 }, bad: { type: 'accepted', round: -2, attempt: 1 }, field: 'round' },
  { valid: { type: 'round-closed', round: 2, attempt: 1, reason: 'deadline' }, bad: { type: 'round-closed', round: 2, attempt: 1, reason: 'bored' }, field: 'reason' },
  {
    valid: { type: 'round-complete', round: 2, participants: 2, examples: 20, dLoss: 0.5, gLoss: 1.5, seconds: 3 },
    bad: { type: 'round-complete', round: 2, participants: 2, examples: 20, dLoss: null, gLoss: 1.5, seconds: 3 },
    field: 'dLoss',
  },
  {
    valid: { type: 'round-failed', round: 2, attempt: 1, received: 1, needed: 2, reason: 'unreachable', nextAttemptInSeconds: 4 },
    bad: { type: 'round-failed', round: 2, attempt: 1, received: 1.5, needed: 2, reason: 'unreachable', nextAttemptInSeconds: 4 },
    field: 'received',
  },
  {
    valid: { type: 'round-failed', round: 2, attempt: 1, received: 1, needed: 2, reason: 'deadline', nextAttemptInSeconds: null },
    bad: { type: 'round-failed', round: 2, attempt: 1, received: 1, needed: 2, reason: 'slow', nextAttemptInSeconds: null },
    field: 'reason',
  },
  { valid: { type: 'finished', rounds: 3 }, bad: { type: 'finished', rounds: '3' }, field: 'rounds' },
  { valid: { type: 'error', code: 'late', message: 'too late', round: 2, attempt: 1 }, bad: { type: 'error', code: 'oops', message: 'x' }, field: 'code' },
];

function invalidOf(p: ParsedServerData) {
  if (p.kind !== 'invalid') throw new Error(`expected an invalid message, got ${JSON.stringify(p)}`);
  return p.invalid;
}

describe('server message validation', () => {
  it('accepts a valid example of every server text message, as is', () => {
    for (const { valid } of TEXT) expect(parseServerData(JSON.stringify(valid))).toEqual({ kind: 'text', message: valid });
  });

  it('refuses each malformed server text message, naming its type and the field', () => {
    for (const { bad, field } of TEXT) {
      const inv = invalidOf(parseServerData(JSON.stringify(bad)));
      expect(inv.kind).toBe('text');
      expect(inv.messageType).toBe(bad.type);
      expect(inv.error).toMatch(new RegExp(`^invalid ${bad.type} message from the server: ${field}: `));
    }
  });

  it('drops unknown fields and ignores unknown message types (forward compatibility)', () => {
    expect(parseServerData(JSON.stringify({ type: 'accepted', round: 2, attempt: 1, note: 'new field' }))).toEqual({ kind: 'text', message: { type: 'accepted', round: 2, attempt: 1 } });
    expect(parseServerData(JSON.stringify({ type: 'weather', sunny: true }))).toEqual({ kind: 'unknown', messageType: 'weather' });
    expect(parseServerData(encodeFrame({ type: 'telemetry' }, new Uint8Array(4)))).toEqual({ kind: 'unknown', messageType: 'telemetry' });
  });

  it('reports unreadable text and binary messages', () => {
    expect(invalidOf(parseServerData('not json'))).toEqual({ kind: 'text', messageType: null, error: 'unreadable text message from the server: text frame is not JSON' });
    expect(invalidOf(parseServerData('[1,2]')).error).toContain('string "type"');
    expect(invalidOf(parseServerData(new Uint8Array([1, 2, 3]).buffer)).error).toMatch(/^unreadable binary frame from the server: .*shorter than the 8-byte prefix/);
    expect(invalidOf(parseServerData({ size: 3 })).error).toContain('binaryType must be "arraybuffer"');
  });

  it('accepts a valid round frame header with its RoundConfig, and the payload as a view', () => {
    const payload = new Uint8Array([9, 8, 7, 6]);
    const p = parseServerData(encodeFrame({ type: 'round', round: 2, attempt: 1, config: roundConfig }, payload));
    if (p.kind !== 'binary' || p.frame.header.type !== 'round') throw new Error(JSON.stringify(p));
    expect(p.frame.header.config).toEqual(roundConfig);
    expect([...p.frame.payload]).toEqual([9, 8, 7, 6]);
  });

  it('refuses an invalid round frame header naming the field, with the task when round and attempt are valid', () => {
    const cases: [Record<string, unknown>, RegExp, { round: number; attempt: number } | undefined][] = [
      [{ config: { ...roundConfig, batchNorm: 'sometimes' } }, /config\.batchNorm: /, { round: 2, attempt: 1 }],
      [{ config: { ...roundConfig, examples: { min: 5, max: 2 } } }, /config\.examples\.min: must be at most examples\.max/, { round: 2, attempt: 1 }],
      [{ config: { ...roundConfig, learningRate: { generator: 0, discriminator: 1e-4 } } }, /config\.learningRate\.generator: /, { round: 2, attempt: 1 }],
      [{ config: { ...roundConfig, ganType: 'vae' } }, /config\.ganType: /, { round: 2, attempt: 1 }],
      [{ config: { ...roundConfig, model: 'big' } }, /config\.model: /, { round: 2, attempt: 1 }],
      [{ config: { ...roundConfig, attempt: 2 } }, /config\.attempt: must equal the header's attempt \(1\)/, { round: 2, attempt: 1 }],
      [{ config: undefined }, /config: /, { round: 2, attempt: 1 }],
      [{ round: 'two' }, /round: /, undefined],
      [{ attempt: -1 }, /attempt: /, undefined],
    ];
    for (const [change, error, task] of cases) {
      const header = { type: 'round', round: 2, attempt: 1, config: roundConfig, ...change };
      const inv = invalidOf(parseServerData(encodeFrame(header, new Uint8Array(4))));
      expect(inv.kind).toBe('binary');
      expect(inv.messageType).toBe('round');
      expect(inv.error).toMatch(/^invalid round frame header from the server: /);
      expect(inv.error).toMatch(error);
      expect(inv.task).toEqual(task);
    }
  });

  it('validates the global frame header', () => {
    const ok = parseServerData(encodeFrame({ type: 'global', round: 3 }, new Uint8Array(0)));
    expect(ok.kind === 'binary' && ok.frame.header).toEqual({ type: 'global', round: 3 });
    const inv = invalidOf(parseServerData(encodeFrame({ type: 'global' }, new Uint8Array(0))));
    expect(inv).toMatchObject({ kind: 'binary', messageType: 'global', error: expect.stringMatching(/^invalid global frame header from the server: round: /) });
    expect(inv.task).toBeUndefined();
  });
});
