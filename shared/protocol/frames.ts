/**
 * Binary frames: how weights travel. One WebSocket binary message =
 *
 *   offset 0   4 bytes   magic, ASCII "FGF1" (0x46 0x47 0x46 0x31)
 *   offset 4   u32 LE    H, byte length of the JSON header (1 ≤ H ≤ MAX_HEADER_BYTES)
 *   offset 8   H bytes   UTF-8 JSON object with a string `type` ("round", "global", "update")
 *   offset 8+H …         payload: one weight set in the weights codec (shared/codec/weightsCodec.ts)
 *
 * Senders pad the JSON header with trailing spaces (valid JSON whitespace) so the payload starts at a
 * multiple of 8 bytes: receivers can then view the float32 data in place, without copying.
 *
 * Isomorphic: Uint8Array / DataView only.
 */
export const FRAME_MAGIC = new Uint8Array([0x46, 0x47, 0x46, 0x31]); // "FGF1"
export const FRAME_PREFIX_BYTES = 8;
export const MAX_HEADER_BYTES = 64 * 1024;

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * The first 8 + H bytes of a frame (magic, header length, padded JSON header). A frame is this head
 * followed by the payload; `encodeFrame` concatenates them, or a sender can send the two as fragments of
 * one WebSocket message and avoid copying a large payload.
 */
export function encodeFrameHead(header: { type: string } & Record<string, unknown>): Uint8Array<ArrayBuffer> {
  const json = JSON.stringify(header);
  const raw = encoder.encode(json);
  const padded = (FRAME_PREFIX_BYTES + raw.length + 7) & ~7;
  const h = padded - FRAME_PREFIX_BYTES === raw.length ? raw : encoder.encode(json + ' '.repeat(padded - FRAME_PREFIX_BYTES - raw.length));
  if (h.length > MAX_HEADER_BYTES) throw new FrameError(`frame header of ${h.length} bytes exceeds ${MAX_HEADER_BYTES}`);
  const out = new Uint8Array(FRAME_PREFIX_BYTES + h.length);
  out.set(FRAME_MAGIC, 0);
  new DataView(out.buffer).setUint32(4, h.length, true);
  out.set(h, FRAME_PREFIX_BYTES);
  return out;
}

/** Build a binary frame (head + payload, the payload copied once). */
export function encodeFrame(header: { type: string } & Record<string, unknown>, payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = encodeFrameHead(header);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

export interface DecodedFrame {
  header: { type: string } & Record<string, unknown>;
  /** A view into the frame bytes (not a copy). */
  payload: Uint8Array;
}

/** Parse a binary frame; throws FrameError on any malformation. */
export function decodeFrame(bytes: Uint8Array | ArrayBuffer): DecodedFrame {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (b.length < FRAME_PREFIX_BYTES) throw new FrameError(`binary frame of ${b.length} bytes is shorter than the ${FRAME_PREFIX_BYTES}-byte prefix`);
  for (let i = 0; i < 4; i++) {
    if (b[i] !== FRAME_MAGIC[i]) throw new FrameError('binary frame does not start with the magic "FGF1"');
  }
  const hLen = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(4, true);
  if (hLen === 0 || hLen > MAX_HEADER_BYTES) throw new FrameError(`header length ${hLen} is outside 1…${MAX_HEADER_BYTES}`);
  if (FRAME_PREFIX_BYTES + hLen > b.length) throw new FrameError(`header length ${hLen} runs past the end of the ${b.length}-byte frame`);
  let header: unknown;
  try {
    header = JSON.parse(decoder.decode(b.subarray(FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + hLen)));
  } catch (e) {
    throw new FrameError(`frame header is not UTF-8 JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header) || typeof (header as { type?: unknown }).type !== 'string') {
    throw new FrameError('frame header must be a JSON object with a string "type"');
  }
  return { header: header as DecodedFrame['header'], payload: b.subarray(FRAME_PREFIX_BYTES + hLen) };
}

/** Parse a text frame into a JSON object with a string `type`; throws FrameError otherwise. */
export function decodeText(text: string): { type: string } & Record<string, unknown> {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new FrameError('text frame is not JSON');
  }
  if (!m || typeof m !== 'object' || Array.isArray(m) || typeof (m as { type?: unknown }).type !== 'string') {
    throw new FrameError('a text frame must hold a JSON object with a string "type"');
  }
  return m as { type: string } & Record<string, unknown>;
}
