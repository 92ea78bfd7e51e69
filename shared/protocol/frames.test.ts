import { describe, expect, it } from 'vitest';
import { decodeFrame, decodeText, encodeFrame, FrameError, FRAME_PREFIX_BYTES, MAX_HEADER_BYTES } from './frames.ts';

describe('binary frames', () => {
  it('round-trips header and payload, with the payload 8-byte aligned', () => {
    for (const extra of ['', 'a', 'ab', 'abc', 'abcd', 'abcdefg']) {
      const payload = new Uint8Array([1, 2, 3, 4, 5]);
      const f = encodeFrame({ type: 'update', round: 1, note: extra }, payload);
      expect(String.fromCharCode(...f.subarray(0, 4))).toBe('FGF1');
      const h = new DataView(f.buffer).getUint32(4, true);
      expect((FRAME_PREFIX_BYTES + h) % 8).toBe(0);
      const d = decodeFrame(f);
      expect(d.header).toEqual({ type: 'update', round: 1, note: extra });
      expect([...d.payload]).toEqual([1, 2, 3, 4, 5]);
      expect(d.payload.byteOffset).toBe(FRAME_PREFIX_BYTES + h);
    }
  });

  it('refuses malformed frames with a FrameError', () => {
    const good = encodeFrame({ type: 'x' }, new Uint8Array(4));
    const bad: Uint8Array[] = [
      new Uint8Array(3),
      new Uint8Array([0x46, 0x47, 0x46, 0x32, 1, 0, 0, 0, 0x7b]),
      (() => {
        const f = good.slice();
        new DataView(f.buffer).setUint32(4, 0, true);
        return f;
      })(),
      (() => {
        const f = good.slice();
        new DataView(f.buffer).setUint32(4, MAX_HEADER_BYTES + 1, true);
        return f;
      })(),
      good.slice(0, 10),
      (() => {
        const f = encodeFrame({ type: 'x' }, new Uint8Array(0));
        f[8] = 0x5b; // '[' instead of '{'
        return f;
      })(),
    ];
    for (const b of bad) expect(() => decodeFrame(b)).toThrow(FrameError);
  });

  it('parses text frames as objects with a string type only', () => {
    expect(decodeText('{"type":"hello"}')).toEqual({ type: 'hello' });
    for (const t of ['', 'null', '[]', '{"type":1}', '{}', '{"type":"x"']) expect(() => decodeText(t)).toThrow(FrameError);
  });
});
